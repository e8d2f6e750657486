"""Sharding b4k3 models with Keras' own engine, `keras.distribution` (DESIGN.md, "Beyond one device").

`get_layout_map(model, device_mesh)` gives the `keras.distribution.LayoutMap` that shards a model
the Megatron way: each layer that projects into a wider space and back (attention, feed-forward,
GAU, RWKV's mixes) says which of its Dense sublayers project in and which out
(`projection_roles()`); in-projections are split by output columns (whole heads for attention),
out-projections by input rows, so each device computes its own heads and feed-forward slice and
one all-reduce joins them. The token embeddings are split by vocabulary (or by hidden size when
the vocabulary does not divide), a separate LM head by vocabulary. Norms, biases of
out-projections and small tables are replicated.

Weights are replicated along the data axis: `ModelParallel(layout_map=..., batch_dim_name=...)`
splits each batch along it.

Set the distribution before building the model, so its variables are created sharded:

```python
mesh = keras.distribution.DeviceMesh((2, 4), ("batch", "model"), keras.distribution.list_devices())
layout_map = get_layout_map(build_transformer_model(config_path, model="llama", num_hidden_layers=1), mesh)
keras.distribution.set_distribution(keras.distribution.ModelParallel(layout_map=layout_map, batch_dim_name="batch"))
model = build_transformer_model(config_path, checkpoint_path, model="llama")  # loads into sharded variables
```

The map depends on the layer names and sizes only, not on the depth: its keys match any block
index, so a one-block copy of the config gives the map of the full model.
"""

import re

import keras

from b4k3_layers import MultiHeadAttention

# The LayoutMap key of the KV cache `CachedDecoding.build_cache` creates: `(batch, 2, length,
# kv_heads, head_size)`, split along the heads when the key/value projections are.
KV_CACHE_PATH = "b4k3/kv_cache"
TOKEN_EMBEDDINGS = "Embedding-Token"


def get_layout_map(model, device_mesh, model_parallel_dim_name="model", data_parallel_dim_name="batch"):
    """The `keras.distribution.LayoutMap` that shards `model`'s weights over the mesh axis
    `model_parallel_dim_name`, replicated along `data_parallel_dim_name` (see the module docstring).

    Args:
        model: the Keras model `build_transformer_model` returns, or its `Transformer`.
        device_mesh: a `keras.distribution.DeviceMesh` with both axes.
        model_parallel_dim_name, data_parallel_dim_name: the names of its two axes.

    Raises a ValueError for a mesh without one of the axes, and for a layer whose query heads or
    hidden width is not a multiple of the model axis size (each device must hold whole heads and
    an equal slice). Key/value heads fewer than (or not a multiple of) the model axis are
    replicated, as Megatron does for grouped-query attention.
    """
    keras_model = getattr(model, "model", model)
    if not isinstance(keras_model, keras.Model):
        raise TypeError(f"get_layout_map needs a b4k3 Keras model or its Transformer, got {type(model).__name__}")
    for axis in (model_parallel_dim_name, data_parallel_dim_name):
        if axis not in device_mesh.axis_names:
            raise ValueError(
                f"The device mesh has axes {list(device_mesh.axis_names)}, not {axis!r}; name its axes "
                f"('{data_parallel_dim_name}', '{model_parallel_dim_name}') or pass model_parallel_dim_name / "
                "data_parallel_dim_name"
            )
    shards = device_mesh.shape[list(device_mesh.axis_names).index(model_parallel_dim_name)]
    layouts = _ShardedLayouts(shards, model_parallel_dim_name)
    vocab_size = None
    for layer in keras_model._flatten_layers(include_self=False, recursive=False):
        if layer.name.endswith(TOKEN_EMBEDDINGS):
            vocab_size = layer.input_dim
            layouts.embeddings(layer)
    for layer in keras_model._flatten_layers(include_self=False, recursive=True):
        if isinstance(layer, MultiHeadAttention):
            layouts.attention(layer)
        elif hasattr(layer, "projection_roles"):
            layouts.projections(layer, layer.projection_roles())
        elif type(layer) is keras.layers.Dense and layer.units == vocab_size:
            layouts.lm_head(layer)
    layout_map = keras.distribution.LayoutMap(device_mesh)
    for pattern, axes in layouts.items():
        layout_map[pattern] = axes
    return layout_map


def block_pattern(path):
    """The LayoutMap key of a variable path, matching it in any block: each `-<index>-` of the
    path (`Transformer-0-FeedForward`, `RWKV-3-TimeMix`) matches any index."""
    return r"\d+".join(re.escape(part) for part in re.split(r"(?<=-)\d+(?=-)", path))


class _ShardedLayouts:
    """`{LayoutMap key: axes}` of the sharded weights, filled layer by layer."""

    def __init__(self, shards, axis):
        self.shards = shards
        self.axis = axis
        self.axes = {}
        self.kv_heads = set()

    def items(self):
        items = dict(self.axes)
        if self.kv_heads and all(heads % self.shards == 0 for heads in self.kv_heads):
            items[KV_CACHE_PATH] = (None, None, None, self.axis, None)
        return items.items()

    def add(self, variable, axes):
        self.axes[block_pattern(variable.path)] = axes

    def check_divides(self, layer, what, size):
        if size % self.shards:
            raise ValueError(
                f"{layer.path}: its {what} ({size}) is not a multiple of the model axis size ({self.shards}); "
                f"use a model axis of a size that divides {size}"
            )

    def attention(self, layer):
        """q/k/v by heads, the output projection by its input rows (heads); k/v replicated when the
        key/value heads do not divide."""
        self.check_divides(layer, "number of query heads", layer.query_head)
        self.kv_heads.add(layer.heads)
        roles = layer.projection_roles()
        if layer.heads % self.shards:
            roles = {name: role for name, role in roles.items() if name not in ("k_dense", "v_dense")}
        self.projections(layer, roles, check=False)

    def projections(self, layer, roles, check=True):
        """Each sublayer `roles` names: 'in' split by output columns, 'out' by input rows. b4k3's
        EinsumDense projections (attention's) lead with the head axis, split in both roles."""
        for name, role in roles.items():
            dense = getattr(layer, name)
            if isinstance(dense, keras.layers.EinsumDense):
                self.add(dense.kernel, (self.axis, None, None))
                if role == "in" and dense.bias is not None:
                    self.add(dense.bias, (self.axis, None))
            elif role == "in":
                if check:
                    self.check_divides(dense, "output width", dense.units)
                self.add(dense.kernel, (None, self.axis))
                if dense.bias is not None:
                    self.add(dense.bias, (self.axis,))
            else:
                if check:
                    self.check_divides(dense, "input width", dense.kernel.shape[0])
                self.add(dense.kernel, (self.axis, None))

    def embeddings(self, layer):
        """By vocabulary when it divides, else by hidden size, else replicated."""
        vocab, hidden = layer.embeddings.shape
        if vocab % self.shards == 0:
            self.add(layer.embeddings, (self.axis, None))
        elif hidden % self.shards == 0:
            self.add(layer.embeddings, (None, self.axis))

    def lm_head(self, layer):
        """A separate LM head: by vocabulary (its output columns) when it divides."""
        if layer.units % self.shards == 0:
            self.add(layer.kernel, (None, self.axis))
            if layer.bias is not None:
                self.add(layer.bias, (self.axis,))


def laid_out_cache(cache):
    """`cache` (a KV cache tensor) split as the active distribution's layout map says for
    `KV_CACHE_PATH` (along the heads, under `get_layout_map`'s), unchanged without one."""
    distribution = keras.distribution.distribution()
    layout = None if distribution is None else distribution.get_tensor_layout(KV_CACHE_PATH)
    return cache if layout is None else keras.distribution.distribute_tensor(cache, layout)
