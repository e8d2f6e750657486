"""Shape helpers of bert4keras3 that keras.ops lacks: flatten a range of axes, reshape axes in
place, align (batched expand_dims), and pad the time axis to a multiple."""

import keras
from keras import ops


def flatten(tensor, start=None, end=None):
    """Merges axes `start` to `end` (exclusive; default: all) into one."""
    shape = list(ops.shape(tensor))
    start = 0 if start is None else start
    end = len(shape) if end is None else end
    start, end = (axis + len(shape) if axis < 0 else axis for axis in (start, end))
    merged = 1
    for size in shape[start:end]:
        merged = None if size is None or merged is None else merged * size
    return _reshaped(tensor, [*shape[:start], merged, *shape[end:]])


def reshape(tensor, *args):
    """`reshape(x, shape)`, or `reshape(x, shape1, axis1, shape2, axis2, ...)`: each axis `axis_i`
    becomes the axes `shape_i` (one -1 allowed per shape), e.g. `reshape(x, (heads, -1), -1)`."""
    if len(args) == 1:
        return ops.reshape(tensor, args[0])
    if len(args) % 2:
        raise ValueError(f"reshape takes a shape, or (shape, axis) pairs; got {args!r}")
    shape = [[size] for size in ops.shape(tensor)]
    for new_shape, axis in zip(args[::2], args[1::2], strict=True):
        new_shape = list(new_shape)
        if new_shape.count(-1) > 1:
            raise ValueError(f"reshape: at most one -1 per shape, got {tuple(new_shape)}")
        if -1 in new_shape and shape[axis][0] is not None:
            known = 1
            for size in new_shape:
                known *= size if size != -1 else 1
            new_shape[new_shape.index(-1)] = shape[axis][0] // known
        elif -1 in new_shape:
            new_shape[new_shape.index(-1)] = None
        shape[axis] = new_shape
    return _reshaped(tensor, [size for sizes in shape for size in sizes])


def _reshaped(tensor, shape):
    """`tensor` reshaped to `shape`, whose sizes are None where unknown while tracing symbolically.
    One unknown size becomes -1; with more (the batch and the length merged with another axis), a
    symbolic tensor is the `KerasTensor` of that shape, which is all a symbolic reshape tells."""
    if shape.count(None) > 1:
        if keras.backend.is_keras_tensor(tensor):
            return keras.KerasTensor(shape, dtype=tensor.dtype)
        raise ValueError(f"reshape: cannot infer more than one unknown size in {shape}")
    return ops.reshape(tensor, [-1 if size is None else size for size in shape])


def align(tensor, axes, ndim=None):
    """Batched expand_dims: the i-th axis of `tensor` becomes axis `axes[i]` of a tensor of `ndim`
    axes (default: max(axes) + 1); the new axes have size 1. `axes` must be increasing."""
    if len(axes) != len(tensor.shape):
        raise ValueError(f"align: {len(axes)} axes given for a tensor of {len(tensor.shape)} axes")
    if ndim is None:
        if min(axes) < 0:
            raise ValueError("align: negative axes need ndim")
        ndim = max(axes) + 1
    axes = [axis + ndim if axis < 0 else axis for axis in axes]
    if sorted(set(axes)) != axes or axes[-1] >= ndim:
        raise ValueError(f"align: axes must be increasing and below ndim={ndim}, got {axes}")
    for position in range(ndim):
        if position not in axes:
            tensor = ops.expand_dims(tensor, position)
    return tensor


def divisible_temporal_padding(x, n):
    """Right-pads axis 1 with zeros to a multiple of `n`."""
    length = ops.shape(x)[1]
    padding = (n - length % n) % n
    return ops.pad(x, [(0, 0), (0, padding)] + [(0, 0)] * (len(x.shape) - 2))


def int_shape(x):
    """The static shape of a tensor as a tuple (None where unknown)."""
    return tuple(x.shape)


def batch_gather(params, indices):
    """tf.batch_gather: `indices` of shape `(*batch, k)` pick `k` entries along axis `len(batch)`
    of `params` `(*batch, n, *rest)`, row by row; the result is `(*batch, k, *rest)`."""
    indices = ops.cast(indices, "int32")
    axis = len(indices.shape) - 1
    rest = tuple(params.shape[axis + 1 :])
    expanded = ops.reshape(indices, (*ops.shape(indices), *([1] * len(rest))))
    expanded = ops.broadcast_to(expanded, (*ops.shape(indices), *rest))
    return ops.take_along_axis(params, expanded, axis=axis)
