"""`K` of bert4keras3: `keras.backend` (`floatx`, `epsilon`, `image_data_format`, ...) plus the
`dtype(x)` bert4keras3 added to it; `keras.backend` itself is left untouched."""

from keras.backend import *  # noqa: F403


def dtype(x):
    """The dtype of `x`, or None when it has none (a Python number)."""
    return getattr(x, "dtype", None)
