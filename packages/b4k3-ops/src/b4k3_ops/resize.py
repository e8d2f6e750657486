"""Resizing a pretrained weight to another shape, the way bert4keras grows a checkpoint into a
wider model (`autoresize_weights`)."""

import numpy as np


def orthogonally_resize(a, new_shape, window=2):
    """Resizes array `a` to `new_shape` the way bert4keras grows a pretrained weight.

    Each axis that grows is lengthened by repeating blocks of `window` consecutive entries (so a
    `(d, d)` kernel grown to `(2d, 2d)` keeps its structure), every axis is then cut to its new
    length, and the result is rescaled to `a`'s Frobenius norm.
    """
    a = np.asarray(a)
    if a.ndim != len(new_shape):
        raise ValueError(f"orthogonally_resize: cannot resize shape {a.shape} to {tuple(new_shape)} (different rank)")
    norm = np.linalg.norm(a)
    for axis, (old, new) in enumerate(zip(a.shape, new_shape, strict=True)):
        repeats = -(-new // old)
        if repeats > 1:
            if old % window:
                raise ValueError(f"orthogonally_resize: axis {axis} (length {old}) is not a multiple of {window=}")
            before, after = a.shape[:axis], a.shape[axis + 1 :]
            blocks = a.reshape((*before, old // window, window, *after))
            a = np.repeat(blocks, repeats, axis=axis).reshape((*before, old * repeats, *after))
    a = a[tuple(slice(None, new) for new in new_shape)]
    return a * (norm / np.linalg.norm(a))
