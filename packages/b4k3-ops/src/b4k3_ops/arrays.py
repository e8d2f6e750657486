"""bert4keras3's NumPy helpers for model inputs and outputs."""

import numpy as np


def to_array(*args):
    """Each argument as a NumPy array: one array for one argument, a list for several."""
    arrays = [np.array(a) for a in args]
    return arrays[0] if len(arrays) == 1 else arrays


def softmax(x, axis=-1):
    """NumPy softmax along `axis` (shifted by the maximum, so large logits do not overflow)."""
    x = np.asarray(x)
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)
