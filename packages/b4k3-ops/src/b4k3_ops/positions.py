"""Sinusoidal position tables, the interleaved ("su") rotary position embedding and DeBERTa's
log-bucketed relative positions."""

import keras
from keras import ops

from b4k3_ops.numerics import as_tensor
from b4k3_ops.shapes import align


def sinusoidal_embeddings(pos, dim, base=10000):
    """The `dim`-wide sinusoidal encoding of positions `pos`, sin and cos interleaved:
    `[sin(p w_0), cos(p w_0), sin(p w_1), ...]` with `w_i = base ** (-2i / dim)`."""
    if dim % 2:
        raise ValueError(f"sinusoidal_embeddings: dim must be even, got {dim}")
    pos = ops.cast(pos, "float32")
    frequencies = ops.power(float(base), -2.0 * ops.arange(dim // 2, dtype="float32") / dim)
    angles = ops.expand_dims(pos, -1) * frequencies
    return ops.reshape(ops.stack([ops.sin(angles), ops.cos(angles)], axis=-1), (*ops.shape(angles)[:-1], dim))


def apply_rotary_position_embeddings(sinusoidal, *tensors):
    """Rotates each tensor's feature pairs (x0, x1), (x2, x3), ... by the angles of `sinusoidal`
    (as `sinusoidal_embeddings` gives them): RoFormer's interleaved RoPE.

    `sinusoidal` is `(batch or 1, seq_len, dim)`; each tensor is `(batch, seq_len, ..., dim)`.
    Returns one tensor, or a list for several.
    """
    if not tensors:
        raise ValueError("apply_rotary_position_embeddings needs at least one tensor")
    tensors = [as_tensor(tensor) for tensor in tensors]
    ndim = len(tensors[0].shape)
    sinusoidal = align(as_tensor(sinusoidal), [0, 1, ndim - 1], ndim)
    pairs = ops.reshape(sinusoidal, (*ops.shape(sinusoidal)[:-1], -1, 2))
    sin = ops.repeat(pairs[..., 0], 2, axis=-1)
    cos = ops.repeat(pairs[..., 1], 2, axis=-1)
    outputs = []
    for tensor in tensors:
        if tensor.shape != tensors[0].shape:
            raise ValueError(f"apply_rotary_position_embeddings: shapes differ, {tensor.shape} vs {tensors[0].shape}")
        halves = ops.reshape(tensor, (*ops.shape(tensor)[:-1], -1, 2))
        rotated = ops.reshape(ops.stack([-halves[..., 1], halves[..., 0]], axis=-1), ops.shape(tensor))
        outputs.append(tensor * ops.cast(cos, tensor.dtype) + rotated * ops.cast(sin, tensor.dtype))
    return outputs[0] if len(outputs) == 1 else outputs


def log_bucket_positions(relative, buckets, max_position):
    """DeBERTa's buckets of relative positions: distances under `buckets // 2` kept as they are,
    longer ones spaced logarithmically up to `max_position`, so `buckets` rows cover them all.

    The float32 steps are Hugging Face's `make_log_bucket_position`, so a distance that lands
    on a bucket edge lands on the same side of it. Returns int32 of `relative`'s shape.
    """
    relative = ops.cast(relative, "int32")
    mid = buckets // 2
    near = ops.logical_and(relative < mid, relative > -mid)
    distance = ops.cast(ops.where(near, mid - 1, ops.abs(relative)), "float32")
    scale = ops.log(ops.convert_to_tensor((max_position - 1) / mid, "float32"))
    # The maximum keeps log away from 0 where the distance is kept as it is anyway.
    logarithmic = ops.ceil(ops.log(ops.maximum(distance, 1.0) / mid) / scale * (mid - 1)) + mid
    bucketed = ops.cast(logarithmic, "int32") * ops.sign(relative)
    return ops.where(distance <= mid, relative, bucketed)


@keras.saving.register_keras_serializable(package="b4k3")
class Sinusoidal(keras.initializers.Initializer):
    """Initializer of a `(positions, dim)` table with the sinusoidal encoding of
    `sinusoidal_embeddings` (https://arxiv.org/abs/1706.03762): e.g. a position embedding that
    starts from (or stays at) the fixed encoding."""

    def __call__(self, shape, dtype=None):
        if len(shape) != 2:
            raise ValueError(f"Sinusoidal initializes a (positions, dim) table, got shape {tuple(shape)}")
        size, dim = shape
        table = sinusoidal_embeddings(ops.arange(size, dtype="float32"), dim)
        return ops.cast(table, dtype or keras.backend.floatx())
