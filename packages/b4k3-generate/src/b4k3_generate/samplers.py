"""Choosing the next token from `(batch, vocab)` logits: greedy, top-k, top-p and seeded sampling.

Pure functions of tensors with static shapes, written with keras.ops, usable inside `jax.jit`,
`tf.function` and `keras.ops.while_loop`. Randomness comes from an explicit `(2,)` int32 seed tensor,
never from hidden state, so a compiled decode step is a function of its inputs: derive one seed per
step with `step_seed(seed, step)`.

The search modes are bert4keras3's: 'greedy'; 'topk' with `k` an int; 'topp' with `k` a float `p`,
or `[p, topk]` for top-k first and then top-p inside it (also Hugging Face's order). The filters are
Hugging Face's `TopKLogitsWarper` and `TopPLogitsWarper` (min_tokens_to_keep=1), except that removed
tokens get `-infinity(dtype)` (-1e12, the value `processors.mask_output` uses) instead of -inf.
"""

import numbers

import keras

from b4k3_ops import ops
from b4k3_ops.numerics import as_tensor, infinity

SEARCH_MODES = ("greedy", "topk", "topp")


def _is_int(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_probability(value):
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and 0 < value <= 1


def check_sampling(search_mode, k=None):
    """Check a search mode and its `k`, and return them as `(top_k, top_p)`, None where unused.

    Args:
        search_mode: 'greedy' (`k` is ignored), 'topk' (`k` an int > 0), or 'topp' (`k` a float `p` in
            (0, 1], or `[p, topk]`).
        k: see `search_mode`.

    Raises:
        ValueError: naming the offending value.

    Example:
        >>> check_sampling("topp", [0.9, 40])  # (40, 0.9)
    """
    if search_mode == "greedy":
        return None, None
    if search_mode == "topk":
        if not _is_int(k) or k <= 0:
            raise ValueError(f"search_mode='topk' needs k, an int > 0; received k={k!r}.")
        return int(k), None
    if search_mode == "topp":
        if _is_probability(k):
            return None, float(k)
        if isinstance(k, (list, tuple)) and len(k) == 2 and _is_probability(k[0]) and _is_int(k[1]) and k[1] > 0:
            return int(k[1]), float(k[0])
        raise ValueError(
            "search_mode='topp' needs k, either p (a float in (0, 1]) or [p, topk] (topk an int > 0); "
            f"received k={k!r}."
        )
    raise ValueError(f"Unknown search_mode={search_mode!r}; expected one of {SEARCH_MODES}.")


def _removed(logits):
    return ops.cast(-infinity(logits.dtype), logits.dtype)


def greedy(logits):
    """The most likely token of each row: `(batch,)` int32 (the first one on ties)."""
    return ops.cast(ops.argmax(logits, axis=-1), "int32")


def top_k_filter(logits, k):
    """Keep the `k` largest logits of each row (and any tied with the k-th); the others get -1e12.

    Hugging Face's `TopKLogitsWarper(k)`: `k` larger than the vocabulary keeps everything.
    """
    check_sampling("topk", k)
    logits = as_tensor(logits)
    k = min(k, logits.shape[-1])
    kth_largest = ops.top_k(logits, k, sorted=True)[0][:, -1:]
    return ops.where(ops.less(logits, kth_largest), _removed(logits), logits)


def top_p_filter(logits, p):
    """Keep the smallest set of most likely tokens whose probabilities add up to at least `p`.

    Hugging Face's `TopPLogitsWarper(p)`: sort ascending, remove the tokens where the cumulative softmax
    is `<= 1 - p`, and always keep the most likely token. The removed tokens are a prefix of the sorted
    row, so a row keeps the logits at or above its first kept one: tokens tied with it are all kept,
    where Hugging Face keeps whichever its sort happened to put last.
    """
    if not _is_probability(p):
        raise ValueError(f"top_p_filter needs p, a float in (0, 1]; received p={p!r}.")
    logits = as_tensor(logits)
    sorted_logits = ops.sort(logits, axis=-1)
    cumulative = ops.cumsum(ops.softmax(ops.cast(sorted_logits, "float32"), axis=-1), axis=-1)
    removed = ops.cast(ops.less_equal(cumulative[:, :-1], 1 - p), "int32")
    first_kept = ops.sum(removed, axis=-1, keepdims=True)
    threshold = ops.take_along_axis(sorted_logits, first_kept, axis=-1)
    return ops.where(ops.less(logits, threshold), _removed(logits), logits)


def _as_int32(value):
    """A uint32 bit pattern as the int32 with the same bits (from a Python int, which a compiled
    torch graph takes as a constant)."""
    return ops.convert_to_tensor(value - (1 << 32) if value >= 1 << 31 else value, "int32")


def _shift_right(x, bits):
    """Logical right shift of int32 bits (keras' right_shift is arithmetic on signed ints)."""
    return ops.bitwise_and(ops.right_shift(x, bits), (1 << (32 - bits)) - 1)


def _mix32(x):
    """A bijective 32-bit integer hash ('lowbias32'), on int32 with wrapping multiplication.

    The same bits on every backend, so step seeds are identical on jax, torch and tensorflow.
    """
    x = ops.bitwise_xor(x, _shift_right(x, 16))
    x = ops.multiply(x, _as_int32(0x7FEB352D))
    x = ops.bitwise_xor(x, _shift_right(x, 15))
    x = ops.multiply(x, _as_int32(0x846CA68B))
    return ops.bitwise_xor(x, _shift_right(x, 16))


def _as_seed(seed):
    if seed is None:
        raise ValueError("Sampling needs a seed: a (2,) int32 tensor, e.g. np.array([0, 42], 'int32').")
    seed = ops.convert_to_tensor(seed, dtype="int32")
    if tuple(seed.shape) != (2,):
        raise ValueError(f"A seed is a (2,) int32 tensor; received one of shape {tuple(seed.shape)}.")
    return seed


def step_seed(seed, step):
    """The seed of decode step `step`: `[seed[0], seed[1] + hash(step + 1)]`, like `jax.random.fold_in`.

    The same `(seed, step)` always gives the same seed, and distinct steps give distinct seeds, none of
    them `seed` itself (the hash is bijective and only 0 maps to 0). Hashing the step rather than adding
    it keeps seed `s` at step `t + 1` from being seed `s + 1` at step `t`.

    Args:
        seed: `(2,)` int32 tensor (or anything convertible).
        step: int or int32 scalar tensor, e.g. the loop counter inside `keras.ops.while_loop`.

    Returns:
        `(2,)` int32 tensor.
    """
    seed = _as_seed(seed)
    step = ops.cast(step, "int32")
    return ops.stack([seed[0], seed[1] + _mix32(step + 1)])


_seed_holder = None


def seed_generator():
    """A SeedGenerator whose state `sample` replaces with its seed tensor.

    Keras random ops take an int or a SeedGenerator as seed, not a tensor; inside a
    `keras.StatelessScope` mapping its state to a tensor, a SeedGenerator hands that tensor out. Its
    own state is never read or changed, so one shared instance is enough.
    """
    global _seed_holder
    if _seed_holder is None:
        _seed_holder = keras.random.SeedGenerator(0, name="b4k3_generate_seed")
    return _seed_holder


def sample(logits, seed):
    """One categorical draw per row from `softmax(logits)`: `(batch,)` int32.

    Tokens with logit -1e12 (filtered or banned) have probability 0 and are never drawn. The same
    logits and seed give the same tokens; the draw is made with `keras.random.categorical`, so it
    differs between backends.

    Args:
        logits: `(batch, vocab)` float logits; drawn in float32.
        seed: `(2,)` int32 tensor; use `step_seed(seed, step)` for a different draw at every step.

    Example:
        >>> sample(np.log([[0.1, 0.9]] * 3), np.array([0, 42], "int32"))  # e.g. [1, 1, 0]
    """
    seed = _as_seed(seed)
    # Keras' torch backend seeds with seed[0] + seed[1]: hash the pair so both words matter there too.
    seed = ops.stack([seed[0], _mix32(ops.bitwise_xor(seed[1], _mix32(seed[0])))])
    generator = seed_generator()
    with keras.StatelessScope(state_mapping=[(generator.state, ops.cast(seed, generator.state.dtype))]):
        tokens = keras.random.categorical(ops.cast(logits, "float32"), 1, dtype="int32", seed=generator)
    return tokens[:, 0]


def next_token(logits, search_mode, k=None, seed=None):
    """The next token of each row under a search mode: `(batch,)` int32.

    'greedy' takes the argmax; 'topk' keeps the `k` largest logits and samples; 'topp' keeps the top-p
    nucleus (after the top `topk` when `k=[p, topk]`) and samples.

    Args:
        logits: `(batch, vocab)` float logits, already processed (`processors.process_logits`).
        search_mode: 'greedy', 'topk' or 'topp'; see `check_sampling`.
        k: the mode's setting; see `check_sampling`.
        seed: `(2,)` int32 tensor, needed by 'topk' and 'topp'.

    Example:
        >>> next_token(logits, "topp", [0.9, 40], seed=step_seed(seed, step))
    """
    top_k, top_p = check_sampling(search_mode, k)
    if search_mode == "greedy":
        return greedy(logits)
    seed = _as_seed(seed)
    if top_k is not None:
        logits = top_k_filter(logits, top_k)
    if top_p is not None:
        logits = top_p_filter(logits, top_p)
    return sample(logits, seed)
