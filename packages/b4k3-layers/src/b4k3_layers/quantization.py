"""int8 (and Keras' other modes) for b4k3's own subclasses of Keras' quantizable layers.

Keras' `Model.quantize` quantizes `Dense`, `EinsumDense` and `Embedding` but refuses their
subclasses (it cannot know that a subclass computes what its parent does) with a warning, so a
b4k3 model stayed in float32. b4k3's `Dense` and `EinsumDense` add only what `trainability.py`
keeps across saving, and its `Embedding` a tied LM head (its own quantized form is
`Embedding.quantized_call`): they are quantized as Keras' own.
"""


class QuantizesAsKeras:
    """Mixin (before the Keras layer among the bases): `quantize` as the Keras parent does."""

    def quantize(self, mode=None, type_check=True, config=None):
        super().quantize(mode, type_check=False, config=config)
