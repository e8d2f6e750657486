"""`from b4k3_ops import ops`: Keras 3's `keras.ops` plus the shape helpers bert4keras3 added to it
(`flatten(x, start, end)` and the `(shape, axis)` pairs form of `reshape`). keras.ops itself is
left untouched."""

from keras.ops import *  # noqa: F403

from b4k3_ops.shapes import flatten, reshape  # noqa: F401
