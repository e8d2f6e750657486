"""LoRA fine-tuning on Keras' own adapters: `Dense`, `EinsumDense` and `Embedding.enable_lora`."""

import keras

from b4k3_layers.norms import GroupNorm, LayerNormalization, LlamaLayerNorm, RMSNormalization, ScaleOffset

LORA_LAYERS = (keras.layers.Dense, keras.layers.EinsumDense, keras.layers.Embedding)
NORM_LAYERS = (
    ScaleOffset,
    LayerNormalization,
    RMSNormalization,
    LlamaLayerNorm,
    GroupNorm,
    keras.layers.LayerNormalization,
    keras.layers.RMSNormalization,
)


def enable_lora(model, rank, alpha=None, targets=None):
    """Adds rank-`rank` LoRA adapters and makes them, with the normalization layers, the only
    trainable weights (what `ENABLE_LORA=1` asks for).

    The predecessor froze the parent layers after adding adapters, so most adapters never trained;
    here the adapters are trainable and everything else but the norms is frozen.

    Args:
        model: a Keras model or layer; nested layers are reached.
        rank: the adapters' rank.
        alpha: LoRA's alpha (scale alpha / rank); default Keras' (= rank, scale 1).
        targets: names (substrings of layer names, e.g. `["q_dense", "v_dense"]`) of the layers to
            adapt; default every Dense, EinsumDense and Embedding.
    Returns:
        The adapted layers.

    A model saved as `.keras` (or `.weights.h5`) after this reloads with the same trainable
    weights (`trainability.py`). Keras saves each adapter merged into its kernel and reloads it as
    a fresh one; b4k3's layers redraw it so it trains, but Keras' own top-level `Dense`,
    `EinsumDense` and `Embedding` reload theirs as zeros, which no longer train.
    """
    if not isinstance(rank, int) or rank < 1:
        raise ValueError(f"enable_lora: rank must be a positive int, got {rank!r}")
    # Keras has no public walk over nested layers, nor over a layer's own (not its sublayers')
    # variables: `_flatten_layers` and `_trainable_variables` are what its own code uses.
    layers = list(model._flatten_layers(include_self=True))
    adapted = [
        layer
        for layer in layers
        if isinstance(layer, LORA_LAYERS) and (targets is None or any(target in layer.name for target in targets))
    ]
    if targets is not None and not adapted:
        raise ValueError(f"enable_lora: no Dense, EinsumDense or Embedding layer name contains any of {targets}")
    for layer in layers:
        if not isinstance(layer, NORM_LAYERS):
            for weight in layer._trainable_variables:
                weight.trainable = False
    for layer in adapted:
        layer.enable_lora(rank, lora_alpha=alpha)
    # A frozen layer of Keras' own (its config cannot list frozen weights, b4k3's layers' can:
    # `trainability.py`) is marked untrainable as a whole, which its config keeps.
    for layer in layers:
        if layer.weights and not layer.trainable_weights and not layer._flatten_layers(include_self=False):
            layer.trainable = False
    return adapted
