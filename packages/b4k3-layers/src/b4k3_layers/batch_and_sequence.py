"""Joining sequences along the time axis with their masks (`Concatenate1D`), and splitting and
joining along the batch axis (`BatchSplit` / `BatchConcat`, bert4keras' hand-made data
parallelism), as bert4keras3 had them."""

import itertools

import keras
import numpy as np

from b4k3_ops import ops


@keras.saving.register_keras_serializable(package="b4k3")
class Concatenate1D(keras.layers.Layer):
    """Concatenates `(batch, steps, features)` sequences along the steps. Unlike Keras'
    `Concatenate`, a masked sequence joins an unmasked one: the unmasked one counts as all real.

    Example:
        >>> joined = Concatenate1D()([prefix, x])  # (batch, prefix_len + x_len, features)
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def call(self, inputs):
        return ops.concatenate(inputs, axis=1)

    def compute_mask(self, inputs, mask=None):
        if mask is None or all(m is None for m in mask):
            return None
        masks = [
            ops.ones_like(x[..., 0], dtype="bool") if m is None else ops.cast(m, "bool")
            for x, m in zip(inputs, mask, strict=True)
        ]
        return ops.concatenate(masks, axis=1)

    def compute_output_shape(self, input_shape):
        lengths = [shape[1] for shape in input_shape]
        steps = None if None in lengths else sum(lengths)
        return (input_shape[0][0], steps, *input_shape[0][2:])


@keras.saving.register_keras_serializable(package="b4k3")
class BatchSplit(keras.layers.Layer):
    """Splits the batch axis into pieces: `parts` equal ones (an int; the last holds the rest), or
    pieces proportional to a list of weights. A list of tensors gives every tensor's pieces, one
    tensor after the other. Masks are split the same way.

    Args:
        parts: the number of pieces, or their relative sizes.
    """

    def __init__(self, parts, **kwargs):
        super().__init__(**kwargs)
        self.parts = list(parts) if isinstance(parts, (list, tuple)) else parts
        self.supports_masking = True

    def _count(self):
        return len(self.parts) if isinstance(self.parts, list) else self.parts

    def _cuts(self, batch_size):
        if isinstance(self.parts, list):
            fractions = np.cumsum(self.parts, dtype="float64") / sum(self.parts)
            return [ops.cast(fraction * ops.cast(batch_size, "float32"), "int32") for fraction in fractions[:-1]]
        stride = ops.cast(ops.ceil(ops.cast(batch_size, "float32") / self.parts), "int32")
        return [stride * (i + 1) for i in range(self.parts - 1)]

    def call(self, inputs):
        if isinstance(inputs, (list, tuple)):
            return [piece for x in inputs for piece in self.call(x)]
        cuts = self._cuts(ops.shape(inputs)[0])
        starts, ends = [0, *cuts], [*cuts, ops.shape(inputs)[0]]
        return [inputs[start:end] for start, end in zip(starts, ends, strict=True)]

    def compute_mask(self, inputs, mask=None):
        if isinstance(inputs, (list, tuple)):
            masks = mask if isinstance(mask, (list, tuple)) else [mask] * len(inputs)
            return [piece for x, m in zip(inputs, masks, strict=True) for piece in self.compute_mask(x, m)]
        return [None] * self._count() if mask is None else self.call(mask)

    def compute_output_shape(self, input_shape):
        if isinstance(input_shape, list) and input_shape and isinstance(input_shape[0], (list, tuple)):
            return [shape for each in input_shape for shape in self.compute_output_shape(each)]
        batch_size = input_shape[0]
        if batch_size is None:
            return [(None, *input_shape[1:])] * self._count()
        cuts = (
            [int(cut) for cut in ops.convert_to_numpy(ops.stack(self._cuts(batch_size)))] if self._count() > 1 else []
        )
        bounds = [0, *[min(cut, batch_size) for cut in cuts], batch_size]
        return [(max(end - start, 0), *input_shape[1:]) for start, end in itertools.pairwise(bounds)]

    def get_config(self):
        return {**super().get_config(), "parts": self.parts}


@keras.saving.register_keras_serializable(package="b4k3")
class BatchConcat(keras.layers.Layer):
    """Concatenates tensors along the batch axis (the inverse of `BatchSplit` for one tensor);
    their masks too when every one has a mask."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def call(self, inputs):
        return ops.concatenate(inputs, axis=0)

    def compute_mask(self, inputs, mask=None):
        if isinstance(mask, (list, tuple)) and all(m is not None for m in mask):
            return ops.concatenate(mask, axis=0)
        return None

    def compute_output_shape(self, input_shape):
        sizes = [shape[0] for shape in input_shape]
        return (None if None in sizes else sum(sizes), *input_shape[0][1:])
