"""Mask-aware global pooling over the sequence axis, as bert4keras3 made Keras' own.

Keras 3's `GlobalAveragePooling1D` already averages over the unmasked steps only, so b4k3 uses it
as it is; `GlobalMaxPooling1D` here ignores masked steps, which Keras' does not.
"""

import keras
from keras.layers import GlobalAveragePooling1D

from b4k3_ops import ops
from b4k3_ops.backend import sequence_masking

__all__ = ["GlobalAveragePooling1D", "GlobalMaxPooling1D"]


@keras.saving.register_keras_serializable(package="b4k3")
class GlobalMaxPooling1D(keras.layers.GlobalMaxPooling1D):
    """The maximum over the sequence axis of the unmasked steps only (a fully masked row gives a
    large negative value, not a padded step's features). Outputs no mask.

    Example:
        >>> x = keras.layers.Embedding(100, 8, mask_zero=True)(tokens)
        >>> pooled = GlobalMaxPooling1D()(x)  # padding (id 0) never wins the max
    """

    def __init__(self, data_format=None, keepdims=False, **kwargs):
        super().__init__(data_format=data_format, keepdims=keepdims, **kwargs)
        self.supports_masking = True

    def call(self, inputs, mask=None):
        steps_axis = 1 if self.data_format == "channels_last" else 2
        inputs = sequence_masking(inputs, mask, "-inf", steps_axis)
        return ops.max(inputs, axis=steps_axis, keepdims=self.keepdims)

    def compute_mask(self, inputs, mask=None):
        return None
