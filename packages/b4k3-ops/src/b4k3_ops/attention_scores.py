"""Turning attention logits into attention weights, with masks, as bert4keras3 does."""

import math

from keras import ops

from b4k3_ops.masking import sequence_masking
from b4k3_ops.numerics import as_tensor

NORMALIZATIONS = ("softmax", "softmax-fp32", "softmax_plus", "squared_relu")


def check_normalization(method):
    """Raises a ValueError naming `normalization` unless `method` is one of NORMALIZATIONS."""
    if method not in NORMALIZATIONS:
        raise ValueError(f"normalization must be one of {NORMALIZATIONS}, got {method!r}")


def attention_normalize(a, mask=None, axis=-1, method="softmax", bias=None):
    """Attention weights from logits `a` (`(batch, heads, q_len, k_len)`), keys masked by `mask`.

    Args:
        a: the logits.
        mask: `(batch, k_len)` key mask, True for real keys.
        axis: the key axis of `a`.
        method: `'softmax'`; `'softmax-fp32'` (softmax computed in float32 whatever the dtype);
            `'squared_relu'` (`relu(a)^2 / n`, n the number of real keys); `'softmax_plus'`
            (softmax of `a * log(max(n, 16)) / log(512)`, entropy-invariant).
        bias: an additive bias for `a`, or a bool mask ANDed with `mask` (e.g. causal).
    """
    check_normalization(method)
    a = as_tensor(a)
    if method in ("softmax", "softmax-fp32"):
        dtype = a.dtype
        if method == "softmax-fp32":
            a = ops.cast(a, "float32")
        a = sequence_masking(a, mask, "-inf", axis, bias)
        return ops.cast(ops.softmax(a, axis=axis), dtype)

    if mask is None:
        length = ops.cast(ops.shape(a)[axis], a.dtype)
    else:
        aligned = ops.cast(sequence_masking(ops.ones_like(a), mask, 0, axis), a.dtype)
        length = ops.sum(aligned, axis=axis, keepdims=True)
    if method == "squared_relu":
        return ops.relu(sequence_masking(a, mask, 0, axis, bias)) ** 2 / length
    scale = ops.log(ops.maximum(length, 16.0)) / math.log(512)
    return ops.softmax(sequence_masking(a, mask, "-inf", axis, bias) * scale, axis=axis)
