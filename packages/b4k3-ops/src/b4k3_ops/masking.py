"""Sequence masking: replace the padded positions of a tensor along one or more axes."""

from keras import ops

from b4k3_ops.numerics import as_tensor, dtype_name, infinity
from b4k3_ops.shapes import align


def sequence_masking(x, mask=None, value=0, axis=None, bias=None, return_mask=False):
    """Sets the entries of `x` at padded positions to `value`.

    Args:
        x: the tensor to mask, batch first.
        mask: `(batch, seq_len)` mask (bool, or 0/1), True where the position is real.
        value: what masked entries become: a number, or `'-inf'` / `'inf'` (a large finite value,
            so that a fully masked row still gives a finite softmax).
        axis: the axis (or list of axes) of `x` the sequence runs along; default 1.
        bias: an extra additive bias for `x`, or (if bool) an extra mask ANDed into `mask`.
        return_mask: also return the mask, broadcast to `x`'s rank.
    """
    x = as_tensor(x)
    if isinstance(value, str):
        if value not in ("-inf", "inf"):
            raise ValueError(f"sequence_masking: value must be a number, '-inf' or 'inf', got {value!r}")
        value = infinity(x.dtype) * (-1 if value == "-inf" else 1)
    ndim = len(x.shape)
    if mask is not None:
        axes = [1] if axis is None else list(axis) if isinstance(axis, (list, tuple)) else [axis]
        mask = ops.cast(as_tensor(mask), "bool")
        full_mask = None
        for seq_axis in axes:
            seq_axis = seq_axis + ndim if seq_axis < 0 else seq_axis
            aligned = align(mask, [0, seq_axis], ndim)
            full_mask = aligned if full_mask is None else ops.logical_and(full_mask, aligned)
        mask = full_mask
    if bias is not None:
        bias = as_tensor(bias)
        if dtype_name(bias) == "bool":
            mask = bias if mask is None else ops.logical_and(mask, bias)
        else:
            x = x + ops.cast(bias, x.dtype)
    if mask is not None:
        x = ops.where(mask, x, ops.cast(value, x.dtype))
    return (x, mask) if return_mask else x


def get_sequence_masking(x, mask=None, value=0, axis=None, bias=None):
    """The mask `sequence_masking` applies to `x` (its key mask aligned on `axis`, ANDed with a
    bool `bias`), as int32 0/1 broadcastable to `x`; None when there is none."""
    _, full_mask = sequence_masking(x, mask, value, axis, bias, return_mask=True)
    return None if full_mask is None else ops.cast(full_mask, "int32")
