"""LoRA fine-tuning on Keras' own adapters (`Dense`, `EinsumDense` and `Embedding.enable_lora`),
and the adapters on their own: saved to and loaded from a small file, merged into the base weights."""

import h5py
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
    _adapt(layers, {layer: (rank, alpha) for layer in adapted})
    return adapted


def _adapt(layers, adapters):
    """Freezes every weight of `layers` but the norms', then adds the `{layer: (rank, alpha)}` adapters."""
    for layer in layers:
        if not isinstance(layer, NORM_LAYERS):
            for weight in layer._trainable_variables:
                weight.trainable = False
    for layer, (rank, alpha) in adapters.items():
        layer.enable_lora(rank, lora_alpha=alpha)
    # A frozen layer of Keras' own (its config cannot list frozen weights, b4k3's layers' can:
    # `trainability.py`) is marked untrainable as a whole, which its config keeps.
    for layer in layers:
        if layer.weights and not layer.trainable_weights and not layer._flatten_layers(include_self=False):
            layer.trainable = False


def _adapters(layer):
    """The adapter matrices `(a, b)` of a LoRA layer, and the base weight they add to."""
    if isinstance(layer, keras.layers.Embedding):
        return (layer.lora_embeddings_a, layer.lora_embeddings_b), layer._embeddings
    return (layer.lora_kernel_a, layer.lora_kernel_b), layer._kernel


def _lora_layers(model):
    return [layer for layer in model._flatten_layers(include_self=True) if getattr(layer, "lora_enabled", False)]


def save_lora_adapters(model, path):
    """Writes what LoRA fine-tuning changed in `model`, and only that, to the HDF5 file `path` (e.g.
    `adapter.lora.h5`): each adapted layer's two matrices, rank and alpha (under `lora/<layer
    path>`), and the other weights left trainable beside them, the norms and a new head (under
    `weights/<variable path>`). A few percent of the model's size; `load_lora_adapters` puts them
    back on a model of the same architecture and base weights."""
    layers = _lora_layers(model)
    if not layers:
        raise ValueError("save_lora_adapters: the model has no LoRA adapters (enable_lora adds them)")
    adapters = {id(matrix) for layer in layers for matrix in _adapters(layer)[0]}
    with h5py.File(path, "w") as file:
        for layer in layers:
            group = file.create_group(f"lora/{layer.path}")
            group.attrs["rank"], group.attrs["alpha"] = layer.lora_rank, layer.lora_alpha
            for matrix, name in zip(_adapters(layer)[0], ("a", "b"), strict=True):
                group.create_dataset(name, data=keras.ops.convert_to_numpy(matrix))
        for weight in model.trainable_weights:
            if id(weight) not in adapters:
                file.create_dataset(f"weights/{weight.path}", data=keras.ops.convert_to_numpy(weight))


def load_lora_adapters(model, path):
    """Loads what `save_lora_adapters` wrote into `model` (the same architecture and base weights,
    e.g. built from the same checkpoint). Layers without adapters get them, with the file's rank
    and alpha, and the model is frozen as `enable_lora` freezes it. A layer or weight the file
    names that the model lacks, or an adapter of another rank or shape, is an error naming each."""
    layers = {layer.path: layer for layer in model._flatten_layers(include_self=True)}
    variables = {variable.path: variable for variable in model.weights}
    with h5py.File(path, "r") as file:
        saved = {
            name: (group.attrs["rank"].item(), group.attrs["alpha"].item(), group["a"][()], group["b"][()])
            for name, group in _members(file["lora"], h5py.Group)
        }
        weights = dict(_members(file["weights"], h5py.Dataset)) if "weights" in file else {}
    unknown = sorted(set(saved) - set(layers)) + sorted(set(weights) - set(variables))
    if unknown:
        raise ValueError(f"{path}: adapters or weights of layers the model does not have: {unknown}")
    wrong = [
        f"{name} (rank {rank}, the model's {layers[name].lora_rank})"
        for name, (rank, *_) in saved.items()
        if getattr(layers[name], "lora_enabled", False) and layers[name].lora_rank != rank
    ]
    if wrong:
        raise ValueError(f"{path}: adapters of another rank than the model's: {wrong}")
    new = {layers[name]: (rank, alpha) for name, (rank, alpha, *_) in saved.items() if not layers[name].lora_enabled}
    if new:
        _adapt(list(model._flatten_layers(include_self=True)), new)
    values = [(variables[name], value) for name, value in weights.items()]
    for name, (*_, a, b) in saved.items():
        values += zip(_adapters(layers[name])[0], (a, b), strict=True)
    for variable, value in values:
        if tuple(variable.shape) != value.shape:
            raise ValueError(
                f"{path}: {variable.path} has shape {value.shape} in the file, {tuple(variable.shape)} here"
            )
        variable.assign(value)


def _members(group, kind):
    """`(path within group, member)` of the HDF5 members below `group` of `kind`: an adapter's
    group (holding matrices `a` and `b`), or a weight's dataset (then its value)."""
    found = []

    def visit(name, item):
        if kind is h5py.Group and isinstance(item, h5py.Group) and "a" in item:
            found.append((name, item))
        elif kind is h5py.Dataset and isinstance(item, h5py.Dataset):
            found.append((name, item[()]))

    group.visititems(visit)
    return found


def merge_lora_adapters(model):
    """Adds each adapter's product `(alpha / rank) a @ b` into its base kernel (or embeddings) and
    removes the adapter: a plain model with the fine-tuned outputs, no slower than the base one,
    which can then be quantized. The merged weights stay frozen, as `enable_lora` left them.
    Returns the merged layers."""
    layers = _lora_layers(model)
    for layer in layers:
        if layer.quantization_mode is not None:
            raise ValueError(f"merge_lora_adapters: {layer.path} is quantized; merge before model.quantize(...)")
        adapters, base = _adapters(layer)
        merged = layer.embeddings if isinstance(layer, keras.layers.Embedding) else layer.kernel
        base.assign(merged)
        for matrix in adapters:
            layer._untrack_variable(matrix)
        layer._tracker.unlock()
        for name in ("lora_kernel_a", "lora_kernel_b", "lora_embeddings_a", "lora_embeddings_b"):
            if hasattr(layer, name):
                setattr(layer, name, None)
        layer.lora_enabled, layer.lora_rank = False, None
        layer._tracker.lock()
    keras_model = getattr(model, "model", model)  # a Keras model or b4k3's Transformer
    if isinstance(keras_model, keras.Model):
        # A predict / fit / evaluate function compiled before (tf.function on TensorFlow) still adds
        # the adapters' product: the next call compiles again from the merged layers.
        keras_model.predict_function = keras_model.train_function = keras_model.test_function = None
    return layers
