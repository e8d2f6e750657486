"""Numeric helpers: the 'infinity' masks use, and the root mean square."""

import keras
from keras import ops

# bert4keras masks with ±1e12 rather than ±inf: finite values keep fully masked rows NaN-free.
INFINITY = 1e12
_FLOAT16_MAX = 65504.0


def as_tensor(x):
    """`x` as a tensor of the backend (NumPy arrays and Python numbers included); symbolic Keras
    tensors pass through."""
    return x if isinstance(x, keras.KerasTensor) else ops.convert_to_tensor(x)


def dtype_name(x):
    """The standard Keras name of a tensor's dtype ('float32', 'bool', ...) on any backend."""
    return keras.backend.standardize_dtype(x.dtype)


def infinity(dtype="float32"):
    """The large finite value masks use for `dtype`: 1e12, or half the largest float16 value."""
    return _FLOAT16_MAX / 2 if keras.backend.standardize_dtype(dtype) == "float16" else INFINITY


def root_mean_square(x, axis=None, keepdims=False):
    """sqrt(mean(x ** 2)) over `axis`."""
    return ops.sqrt(ops.mean(ops.square(x), axis=axis, keepdims=keepdims))
