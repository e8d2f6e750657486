"""Keeping what `enable_lora` and `Model.quantize` did to a layer across `.keras` save and load.

Keras saves a layer's config and its weights' values, not its sublayers' configs nor which
weights are frozen: a `MultiHeadAttention` reloaded from a `.keras` file rebuilt its `q_dense`
without the LoRA adapter (or in float32 where it had been quantized to int8) and with every
kernel trainable, so the next `fit` silently trained the whole model. `KeepsTrainability` writes
them into the layer's own config (only when there is something to keep) and applies them again
once the reloaded layer is built, before its weights load. Keras' LoRA layers load with both
adapter matrices zeroed (the saved kernel holds the merged adapter), which gives neither a
gradient; `revive_adapters` redraws the first one as `enable_lora` does, so training goes on (the
output is unchanged: the second one stays 0).
"""

import keras

from b4k3_layers.quantization import QuantizesAsKeras

LORA_A_INITIALIZER = "he_uniform"  # Keras' `enable_lora` default for the first adapter matrix


def revive_adapters(layer):
    """After loading: redraws a zeroed first adapter matrix of `layer` (if it has adapters):
    `lora_kernel_a` of a Dense or EinsumDense, `lora_embeddings_a` of an Embedding."""
    if not getattr(layer, "lora_enabled", False):
        return
    first = layer.lora_embeddings_a if isinstance(layer, keras.layers.Embedding) else layer.lora_kernel_a
    if not keras.ops.convert_to_numpy(first).any():
        first.assign(keras.initializers.get(LORA_A_INITIALIZER)(first.shape, dtype=first.dtype))


class KeepsTrainability:
    """Mixin (first base) of b4k3's layers: their config keeps which of their Dense, EinsumDense
    or Embedding sublayers are quantized or have LoRA adapters, and which of their weights are frozen."""

    def __init__(self, *args, trainability=None, **kwargs):
        super().__init__(*args, **kwargs)
        self._saved_trainability = trainability

    def _relative_path(self, weight):
        return weight.path.removeprefix(self.path + "/")

    def trainability(self):
        """`{'quantized': {sublayer: mode}, 'lora': {sublayer: [rank, alpha]}, 'frozen': [weight
        paths]}`, empty parts left out."""
        state = {}
        quantized = {
            layer.name: layer.quantization_mode
            for layer in self._flatten_layers(include_self=False)
            if getattr(layer, "quantization_mode", None)
        }
        if quantized:
            state["quantized"] = quantized
        lora = {
            layer.name: [layer.lora_rank, layer.lora_alpha]
            for layer in self._flatten_layers(include_self=False)
            if getattr(layer, "lora_enabled", False)
        }
        if lora:
            state["lora"] = lora
        frozen = sorted(self._relative_path(weight) for weight in self.weights if not weight.trainable)
        if frozen:
            state["frozen"] = frozen
        return state

    def get_config(self):
        config = super().get_config()
        state = self.trainability()
        if state:
            config["trainability"] = state
        return config

    def _post_build(self):
        super()._post_build()
        state = self._saved_trainability or {}
        sublayers = {layer.name: layer for layer in self._flatten_layers(include_self=False)}
        for name, mode in state.get("quantized", {}).items():
            sublayers[name].quantize(mode)
        for name, (rank, alpha) in state.get("lora", {}).items():
            if not sublayers[name].lora_enabled:
                sublayers[name].enable_lora(rank, lora_alpha=alpha)
        weights = {self._relative_path(weight): weight for weight in self.weights}
        for path in state.get("frozen", ()):
            weights[path].trainable = False

    def load_own_variables(self, store):
        super().load_own_variables(store)
        revive_adapters(self)


@keras.saving.register_keras_serializable(package="b4k3")
class Dense(KeepsTrainability, QuantizesAsKeras, keras.layers.Dense):
    """`keras.layers.Dense` whose LoRA adapter still trains after loading (the sublayers' Dense)."""


@keras.saving.register_keras_serializable(package="b4k3")
class EinsumDense(KeepsTrainability, QuantizesAsKeras, keras.layers.EinsumDense):
    """`keras.layers.EinsumDense` whose LoRA adapter still trains after loading."""
