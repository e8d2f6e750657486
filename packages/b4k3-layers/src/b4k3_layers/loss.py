"""bert4keras' way to write a custom loss as a layer: subclass `Loss`, write `compute_loss`."""

import keras

from b4k3_ops import ops


@keras.saving.register_keras_serializable(package="b4k3")
class Loss(keras.layers.Layer):
    """A layer that adds `compute_loss(inputs, mask)` to the model's losses and passes its inputs
    (or those at `output_axis`) through: a loss that needs several model tensors, e.g. a seq2seq
    loss masked by the target segment. Compile the model with `loss=None`.

    Args:
        output_axis: None (output the inputs), an index into the inputs, or a list of indices.

    Example:
        >>> class CrossEntropy(Loss):
        ...     def compute_loss(self, inputs, mask=None):
        ...         y_true, y_pred = inputs
        ...         return ops.mean(keras.losses.sparse_categorical_crossentropy(y_true, y_pred))
        >>> probas = CrossEntropy(output_axis=1)([token_ids, probas])
    """

    def __init__(self, output_axis=None, **kwargs):
        super().__init__(**kwargs)
        self.output_axis = list(output_axis) if isinstance(output_axis, (list, tuple)) else output_axis
        self.supports_masking = True

    def compute_loss(self, inputs, mask=None):
        raise NotImplementedError(
            f"{type(self).__name__}: subclass Loss and write compute_loss(self, inputs, mask=None) returning the loss"
        )

    def _select(self, values):
        if self.output_axis is None:
            return values
        if isinstance(self.output_axis, list):
            return [values[i] for i in self.output_axis]
        return values[self.output_axis]

    def call(self, inputs, mask=None):
        self.add_loss(ops.convert_to_tensor(self.compute_loss(inputs, mask)))
        return self._select(inputs)

    def compute_output_shape(self, input_shape):
        return self._select(input_shape)

    def compute_mask(self, inputs, mask=None):
        return None if mask is None else self._select(mask)

    def get_config(self):
        return {**super().get_config(), "output_axis": self.output_axis}
