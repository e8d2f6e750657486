"""`Transformer`, the base of every model family, with bert4keras3's construction protocol.

A family subclasses it and fills in the hooks `get_inputs`, `apply_embeddings`,
`apply_main_layers` (one block), `apply_final_layers` and `variable_mapping` (its checkpoint
name map). `build()` runs them once on symbolic inputs and wraps the result in a `keras.Model`;
every layer is created through `apply()`, which names it, keeps it in `self.layers` and reuses it
when the same name comes again (how weights are shared and how user code finds layers with
`model.get_layer("Transformer-0-MultiHeadSelfAttention")`).
"""

import numbers

import keras
import numpy as np

from b4k3_layers import LayerNormalization, MultiHeadAttention
from b4k3_models.checkpoints import open_checkpoint
from b4k3_models.keras_model import TransformerModel
from b4k3_models.masks import PaddingMask, ResidualAttentionBias
from b4k3_models.weight_maps import Weight, layer_variables, load_mapped_weights

GENERATION_PARAMETERS = ("penalty", "penalty_window", "max_penalty_range", "temperature", "mask_output")


def check_positive_int(owner, **values):
    """Raises a ValueError naming the first of `values` that is not a positive integer."""
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
            raise ValueError(f"{owner}: `{name}` must be a positive integer, got {value!r}")


class Transformer:
    """The model base class of bert4keras3 (`bert4keras3.models.Transformer`).

    Args:
        vocab_size, hidden_size, num_hidden_layers, num_attention_heads, intermediate_size: the
            sizes of the model (`num_attention_heads` counts key/value heads; `query_head` the
            query heads when they differ, as in grouped-query attention).
        hidden_act: activation of the feed-forward blocks.
        dropout_rate, attention_dropout_rate: dropout after sublayers / on attention weights.
        embedding_size: size of the token embeddings when it differs from `hidden_size`.
        attention_head_size, attention_key_size: value / query-key head sizes; default
            `hidden_size // num_attention_heads`.
        sequence_length: a fixed input length; default any.
        keep_tokens: ids of the checkpoint's vocabulary to keep, in order (shrinks the vocab).
        compound_tokens: new tokens appended to the vocabulary, each a list of ids (its embedding
            is their mean) or `(ids, weights)` (a weighted mean); the ids count in the vocabulary
            after `keep_tokens`, as in bert4keras.
        residual_attention_scores: add each layer's attention logits to the next (RealFormer).
        ignore_invalid_weights: load what fits from a checkpoint that does not fit the model,
            warning with the list of what did not (instead of raising).
        autoresize_weights: resize checkpoint arrays whose shape does not fit
            (`orthogonally_resize`) instead of reporting them.
        layers: a dict of existing layers to reuse by name (sharing weights across models).
        prefix: prefix of every layer name. name: the Keras model's name.
        o_bias: bias in the attention output projection; default the projections' setting.
        query_head: number of query heads; default `num_attention_heads`.
        segment_attention: UniLM masks compare segment ids instead of their running count.
        pad_token_id: the padding id; tokens with it are masked out of attention. bert4keras
            used 0; Hugging Face RoBERTa uses 1.
        penalty, penalty_window, max_penalty_range, temperature, mask_output: generation settings,
            kept here for `build_cache_model` (b4k3-generate).
    """

    def __init__(
        self,
        vocab_size,
        hidden_size,
        num_hidden_layers,
        num_attention_heads,
        intermediate_size,
        hidden_act=None,
        dropout_rate=None,
        attention_dropout_rate=None,
        embedding_size=None,
        attention_head_size=None,
        attention_key_size=None,
        sequence_length=None,
        keep_tokens=None,
        compound_tokens=None,
        residual_attention_scores=False,
        ignore_invalid_weights=False,
        autoresize_weights=False,
        layers=None,
        prefix=None,
        name=None,
        o_bias=None,
        query_head=None,
        segment_attention=False,
        pad_token_id=0,
        penalty=1.0,
        penalty_window=None,
        max_penalty_range=None,
        temperature=1.0,
        mask_output=None,
        **kwargs,
    ):
        owner = type(self).__name__
        if kwargs:
            raise TypeError(f"{owner} got unknown argument(s) {sorted(kwargs)}")
        check_positive_int(
            owner,
            vocab_size=vocab_size,
            hidden_size=hidden_size,
            num_hidden_layers=num_hidden_layers,
            num_attention_heads=num_attention_heads,
            intermediate_size=intermediate_size,
        )
        if attention_head_size is None and hidden_size % num_attention_heads:
            raise ValueError(
                f"{owner}: hidden_size={hidden_size} is not a multiple of num_attention_heads={num_attention_heads}; "
                "give attention_head_size explicitly"
            )
        if keep_tokens is not None:
            vocab_size = len(keep_tokens)
        if compound_tokens is not None:
            vocab_size += len(compound_tokens)
        self.vocab_size = vocab_size
        self.hidden_size = hidden_size
        self.num_hidden_layers = num_hidden_layers
        self.num_attention_heads = num_attention_heads
        self.attention_head_size = attention_head_size or hidden_size // num_attention_heads
        self.attention_key_size = attention_key_size or self.attention_head_size
        self.intermediate_size = intermediate_size
        self.dropout_rate = dropout_rate or 0
        self.attention_dropout_rate = attention_dropout_rate or 0
        self.hidden_act = hidden_act
        self.embedding_size = embedding_size or hidden_size
        self.sequence_length = sequence_length
        self.keep_tokens = keep_tokens
        self.compound_tokens = compound_tokens
        self.residual_attention_scores = residual_attention_scores
        self.ignore_invalid_weights = ignore_invalid_weights
        self.autoresize_weights = autoresize_weights
        self.layers = {} if layers is None else layers
        self.prefix = prefix or ""
        self.name = name
        self.o_bias = o_bias
        self.query_head = query_head or num_attention_heads
        self.segment_attention = segment_attention
        self.pad_token_id = pad_token_id
        self.penalty = penalty
        self.penalty_window = penalty_window
        self.max_penalty_range = max_penalty_range
        self.temperature = temperature
        self.mask_output = mask_output
        self.with_lm = "linear"
        self.with_mlm = "linear"
        self.attention_bias = None
        self.position_bias = None
        self.attention_scores = None
        self.padding_mask = None
        self.built = False

    @property
    def generation_config(self):
        """The generation settings given at construction, for b4k3-generate."""
        return {name: getattr(self, name) for name in GENERATION_PARAMETERS}

    def build(
        self,
        layer_norm_cond=None,
        layer_norm_cond_hidden_size=None,
        layer_norm_cond_hidden_act=None,
        additional_input_layers=None,
    ):
        """Creates the Keras model `self.model` (once).

        `layer_norm_cond` (a tensor of shape `(batch, dim)`) makes every layer normalization
        conditional on it, through a Dense of `layer_norm_cond_hidden_size` units first when
        given; `additional_input_layers` are extra model inputs (e.g. the condition's input).
        """
        if self.built:
            return
        inputs = self.get_inputs()
        self.set_inputs(inputs, additional_input_layers)
        self.layer_norm_conds = [layer_norm_cond, layer_norm_cond_hidden_size, layer_norm_cond_hidden_act or "linear"]
        outputs = self.call(inputs)
        self.set_outputs(outputs)
        self.model = TransformerModel(self.input, self.output, name=self.name)
        self.built = True

    def call(self, inputs):
        outputs = self.apply_embeddings(inputs)
        for index in range(self.num_hidden_layers):
            outputs = self.apply_main_layers(outputs, index)
        return self.apply_final_layers(outputs)

    def prefixed(self, name):
        return self.prefix + name if name else name

    def apply(self, inputs=None, layer=None, arguments=None, **kwargs):
        """Calls the layer named `kwargs['name']` on `inputs`, creating it (`layer(**kwargs)`) the
        first time. Without `inputs`, returns the layer. A `Dropout` of rate 0 is skipped.

        For `MultiHeadAttention` with `residual_attention_scores`, the previous layer's logits are
        added to the attention bias and this layer's logits are kept for the next one.
        """
        if layer is keras.layers.Dropout and not kwargs.get("rate"):
            return inputs
        arguments = dict(arguments or {})
        if layer is keras.layers.Lambda:
            kwargs["arguments"] = arguments
            arguments = {}
        residual = layer is MultiHeadAttention and self.residual_attention_scores
        if residual:
            kwargs["return_attention_scores"] = True
        base_name = kwargs.get("name")
        name = kwargs["name"] = self.prefixed(base_name)
        if name not in self.layers:
            self.layers[name] = layer(**kwargs)
        if inputs is None:
            return self.layers[name]
        if residual and self.attention_scores is not None:
            bias = arguments.get("attention_bias")
            arguments["attention_bias"] = self.apply(
                [self.attention_scores] if bias is None else [self.attention_scores, bias],
                ResidualAttentionBias,
                name=f"{base_name}-Residual-Bias",
            )
        outputs = self.layers[name](inputs, **arguments)
        if residual:
            outputs, self.attention_scores = outputs
        return outputs

    def get_inputs(self):
        raise NotImplementedError(f"{type(self).__name__} must define get_inputs")

    def apply_embeddings(self, inputs):
        raise NotImplementedError(f"{type(self).__name__} must define apply_embeddings")

    def apply_main_layers(self, inputs, index):
        raise NotImplementedError(f"{type(self).__name__} must define apply_main_layers")

    def apply_final_layers(self, inputs):
        raise NotImplementedError(f"{type(self).__name__} must define apply_final_layers")

    def compute_attention_bias(self, inputs=None):
        """The attention mask or bias shared by all layers (None: only padding is masked)."""
        return self.attention_bias

    def compute_position_bias(self, inputs=None):
        """The relative position bias shared by all layers (None for absolute positions)."""
        return self.position_bias

    def compute_padding_mask(self, token_ids):
        """`(batch, len)` bool mask of the real tokens, computed once and kept in `padding_mask`."""
        if self.padding_mask is None:
            self.padding_mask = self.apply(token_ids, PaddingMask, pad_token_id=self.pad_token_id, name="Padding-Mask")
        return self.padding_mask

    def apply_layer_norm(self, x, name, **kwargs):
        """A `LayerNormalization`, conditional on `build(layer_norm_cond=...)` when one is given."""
        cond, hidden_units, hidden_activation = self.layer_norm_conds
        if cond is None:
            return self.apply(x, LayerNormalization, name=name, **kwargs)
        return self.apply(
            [x, cond],
            LayerNormalization,
            conditional=True,
            hidden_units=hidden_units,
            hidden_activation=hidden_activation,
            hidden_initializer=self.initializer,
            name=name,
            **kwargs,
        )

    def set_inputs(self, inputs, additional_input_layers=None):
        inputs = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
        extra = [] if additional_input_layers is None else additional_input_layers
        inputs += list(extra) if isinstance(extra, (list, tuple)) else [extra]
        self.inputs = inputs
        self.input = inputs[0] if len(inputs) == 1 else inputs

    def set_outputs(self, outputs):
        outputs = list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]
        self.outputs = outputs
        self.output = outputs[0] if len(outputs) == 1 else outputs

    @property
    def initializer(self):
        """The weights' initializer: truncated normal with standard deviation 0.02, as BERT's."""
        return keras.initializers.TruncatedNormal(stddev=0.02)

    @staticmethod
    def simplify(inputs):
        """`inputs` without its None entries; a single remaining entry is returned bare."""
        inputs = [each for each in inputs if each is not None]
        return inputs[0] if len(inputs) == 1 else inputs

    def load_embeddings(self, embeddings):
        """Applies `keep_tokens` and `compound_tokens` to a vocabulary-sized checkpoint array."""
        if self.keep_tokens is not None:
            embeddings = embeddings[np.asarray(self.keep_tokens)]
        if self.compound_tokens is not None:
            rows = []
            for item in self.compound_tokens:
                ids, weights = (item, None) if isinstance(item, list) else item
                rows.append(np.average(embeddings[np.asarray(ids)], axis=0, weights=weights))
            embeddings = np.concatenate([embeddings, np.asarray(rows, dtype=embeddings.dtype)], axis=0)
        return embeddings

    def variable_mapping(self, checkpoint):
        """The family's name map for `checkpoint` (a reader, see `checkpoints.py`):
        `{layer name: {variable path in the layer: Weight}}`. Families override it."""
        raise NotImplementedError(f"{type(self).__name__} has no checkpoint name map")

    def build_cache_model(
        self,
        input_lengths,
        end_token,
        search_mode="greedy",
        k=1,
        progress_print=False,
        index_bias=0,
        jit_compile="auto",
    ):
        """bert4keras3's KV-cache generator; see `b4k3_generate.build_cache_model` (b4k3-generate)."""
        try:
            from b4k3_generate import build_cache_model
        except ImportError as error:
            raise ImportError(
                "build_cache_model needs b4k3-generate: pip install ./packages/b4k3-generate from a b4k3 checkout"
            ) from error
        return build_cache_model(
            self, input_lengths, end_token, search_mode, k, progress_print, index_bias, jit_compile
        )

    # Layers a checkpoint may hold that the model builds only when asked (heads): their keys are
    # expected in a checkpoint without being loaded.
    optional_layers = ()

    def known_extra_keys(self, checkpoint):
        """Checkpoint keys the family recognises but does not load (e.g. a tied output matrix)."""
        return ()

    def load_weights_from_checkpoint(self, checkpoint, mapping=None):
        """Loads a checkpoint (a TF checkpoint prefix, a Hugging Face directory or a dict).

        `mapping` replaces the family's map; bert4keras3's form `{layer: [key, ...]}` (keys in the
        order of the layer's variables) is accepted too. Raises `CheckpointMismatchError` naming
        every key that does not fit, unless `ignore_invalid_weights`. Returns the `LoadReport`.
        """
        reader = open_checkpoint(checkpoint)
        try:
            mapping = self.variable_mapping(reader) if mapping is None else self._as_weight_map(mapping)
            return load_mapped_weights(
                self.layers,
                {self.prefixed(name): weights for name, weights in mapping.items()},
                reader,
                model_name=self.name or type(self).__name__,
                ignore_invalid_weights=self.ignore_invalid_weights,
                autoresize_weights=self.autoresize_weights,
                known_extra_keys=self.known_extra_keys(reader),
                optional_layers={self.prefixed(name) for name in self.optional_layers},
            )
        finally:
            reader.close()

    def _as_weight_map(self, mapping):
        weight_map = {}
        for layer_name, weights in mapping.items():
            if isinstance(weights, dict):
                weight_map[layer_name] = weights
                continue
            layer = self.layers.get(self.prefixed(layer_name))
            paths = list(layer_variables(layer)) if layer is not None else [str(i) for i in range(len(weights))]
            if len(paths) != len(weights):
                raise ValueError(f"mapping[{layer_name!r}] lists {len(weights)} keys; the layer has variables {paths}")
            weight_map[layer_name] = {path: Weight(key) for path, key in zip(paths, weights, strict=True)}
        return weight_map
