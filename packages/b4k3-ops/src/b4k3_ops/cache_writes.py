"""Writing a decode step's keys and values into a KV cache, and when it may be done in place.

A cache write is functional: it returns a new cache and leaves the one it was given as it was,
which every backend can compile. A generation loop owns its cache, though, and never reads a
step's input cache again once the step has run; on torch (eager or traced, no compiler to reuse
the buffer) the copy of the whole cache at every step and layer was a sixth of a step at batch 8.
Within `caches_donated()` (what JAX calls donating a buffer) a write on torch goes into the cache
it was given; on jax and tensorflow it stays functional, where XLA updates the buffer in place.
"""

import contextlib
import threading

import keras

from b4k3_ops import ops

_state = threading.local()


@contextlib.contextmanager
def caches_donated():
    """Within: a cache given to a step is the caller's no more, and a torch cache write may
    overwrite it. A generation loop enters it around each step."""
    before = getattr(_state, "donated", False)
    _state.donated = True
    try:
        yield
    finally:
        _state.donated = before


def caches_are_donated():
    return getattr(_state, "donated", False)


def write_token_rows(cache, index, new):
    """`cache` `(batch, 2, length, heads, size)` with row `b`'s key and value `new[b, :, 0]`
    (`new`: `(batch, 2, 1, heads, size)`) at position `index[b]`. A row whose index falls outside
    the cache keeps its entries (its old entry at the nearest position is written back). Values are
    copied exactly in any dtype: a scatter, not a select over the whole cache (five times slower on
    torch) nor a gather (slower still)."""
    batch, length = ops.shape(cache)[0], ops.shape(cache)[2]
    position = ops.clip(index, 0, length - 1)
    old = ops.take_along_axis(cache, position[:, None, None, None, None], axis=2)  # (batch, 2, 1, heads, size)
    inside = ops.logical_and(index >= 0, index < length)[:, None, None, None, None]
    updates = ops.reshape(ops.where(inside, ops.cast(new, cache.dtype), old), (-1, *ops.shape(cache)[3:]))
    rows = ops.repeat(ops.arange(batch, dtype="int32"), 2)  # (batch * 2,): b, b for the key and the value
    kinds = ops.tile(ops.arange(2, dtype="int32"), [batch])
    positions = ops.repeat(position, 2)
    if keras.backend.backend() == "torch" and caches_are_donated():
        cache.index_put_((rows.long(), kinds.long(), positions.long()), updates)
        return cache
    return ops.scatter_update(cache, ops.stack([rows, kinds, positions], axis=1), updates)
