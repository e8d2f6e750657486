"""`Transformer`, the base of every model family: bert4keras3's construction protocol and the one
block protocol every family is built from.

`build()` runs the hooks once on symbolic inputs and wraps the result in a `keras.Model`; every
layer is created through `apply()`, which names it, keeps it in `self.layers` and reuses it when
the same name comes again (how weights are shared, how ALBERT shares one block, and how user code
finds layers with `model.get_layer("Transformer-0-MultiHeadSelfAttention")`).

A family overrides hooks, never copies a method:
- inputs: `get_inputs()` (the Keras inputs) and `model_inputs(inputs)` (them, named);
- embeddings: `embedding_steps`, a tuple of step names run in order, each a method
  `embed_<step>(x, inputs)`; the base has 'token' and 'dropout', BERT adds 'segment', 'position',
  'norm' and 'mapping', Gemma 'scale';
- blocks: `attention_layer(index)` and `feed_forward_layer(index)` (the layer and its
  arguments), `sublayer_name(index, sublayer)` (their names, which ALBERT's blocks share),
  `attention_arguments(index)` (masks and position bias of the full pass), the declared
  `norm_placement` ('post', 'pre' or 'sandwich'; `sublayer_norms` and `norm_name` for blocks
  that place them otherwise) with `norm_layer` / `norm_arguments()`, and one `apply_block` that
  every family shares;
- `apply_final_layers` (heads), `variable_mapping` (the checkpoint name map), `from_hf_config`,
  `load_keras_weights` (a `.weights.h5`, for families that read their predecessor's layout too);
- `honoured_options`: the base options the family implements; any other given a value that
  would change the model is refused by name at construction (it would have no effect).

Decoding (`build_cache`, `call_with_cache`) comes from `decoding.CachedDecoding`, which runs
the same hooks with the positions and masks of a KV cache.
"""

import typing

import keras
import numpy as np

from b4k3_layers import Concatenate1D, Embedding, LayerNormalization, MultiHeadAttention
from b4k3_models.checkpoints import open_checkpoint
from b4k3_models.keras_model import TransformerModel
from b4k3_models.keras_weights import load_keras_weights
from b4k3_models.masks import CachedKeyMask, PaddingMask, ResidualAttentionBias
from b4k3_models.weight_maps import Weight, layer_variables, load_mapped_weights
from b4k3_ops.checks import check_positive_int

GENERATION_PARAMETERS = ("penalty", "penalty_window", "max_penalty_range", "temperature", "mask_output")
# The two sublayers of a block, as bert4keras names them.
ATTENTION, FEED_FORWARD = "MultiHeadSelfAttention", "FeedForward"
# Where each `norm_placement` puts a sublayer's norms: on its input ('pre'), on its output before
# the residual sum ('output') and after the residual sum ('post').
NORM_POSITIONS = {"post": ("post",), "pre": ("pre",), "sandwich": ("pre", "output")}


def block_layer_name(index, sublayer):
    """bert4keras' name of a block's sublayer, e.g. `Transformer-0-MultiHeadSelfAttention`."""
    return f"Transformer-{index}-{sublayer}"


class ModelInputs(typing.NamedTuple):
    """A model's inputs by name: what the embedding steps read. The full pass takes them from the
    Keras inputs (`Transformer.model_inputs`), decoding from the cache index."""

    token_ids: object
    segment_ids: object = None
    position_ids: object = None


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
        pad_token_id: the padding id; tokens with it are masked out of attention. None: no
            padding mask (decoders, whose causal mask already hides what follows a prompt).
        penalty, penalty_window, max_penalty_range, temperature, mask_output: generation settings,
            kept here for `build_cache_model` (b4k3-generate).

    Options a family does not implement (see `honoured_options`) are refused when given a value
    that would change the model, instead of being ignored.
    """

    # The base options (constructor and `build()` arguments) beyond the sizes that this family
    # implements. The sizes, dropout, vocabulary edits, loading and generation settings, layers,
    # prefix and name are every family's.
    honoured_options = frozenset()
    embedding_steps = ("token", "dropout")
    norm_placement = "post"
    norm_layer = LayerNormalization
    # The attention's `p_bias`: None (absolute or no positions), 'rotary', 'typical_relative'
    # (NEZHA), 't5_relative' or 'disentangled' (DeBERTa).
    position_bias_kind = None
    # Pairs (plain spelling, bert4keras3's spelling) of one argument: given one, build_transformer_model
    # drops the other from the config it overrides.
    argument_aliases = ()

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
        pad_token_id=None,
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
        head_size = attention_head_size or hidden_size // num_attention_heads
        self.refuse_unhonoured(
            embedding_size=embedding_size not in (None, hidden_size),
            attention_key_size=attention_key_size not in (None, head_size),
            residual_attention_scores=bool(residual_attention_scores),
            o_bias=o_bias is not None,
            query_head=query_head not in (None, num_attention_heads),
            segment_attention=bool(segment_attention),
            pad_token_id=pad_token_id is not None,
        )
        if keep_tokens is not None:
            vocab_size = len(keep_tokens)
        if compound_tokens is not None:
            vocab_size += len(compound_tokens)
        self.vocab_size = vocab_size
        self.hidden_size = hidden_size
        self.num_hidden_layers = num_hidden_layers
        self.num_attention_heads = num_attention_heads
        self.attention_head_size = head_size
        self.attention_key_size = attention_key_size or head_size
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
        self.layer_norm_conds = [None, None, "linear"]
        self.attention_caches = {}
        self.built = False

    def refuse_unhonoured(self, **given):
        """Raises a TypeError naming the options given (True in `given`) that this family does not
        implement: silently ignored, they would build a model other than the one asked for."""
        refused = sorted(name for name, is_given in given.items() if is_given and name not in self.honoured_options)
        if refused:
            raise TypeError(
                f"{type(self).__name__} does not implement {refused}: the option(s) would have no effect. Remove them "
                f"(this family implements {sorted(self.honoured_options) or 'none of the optional ones'})"
            )

    @property
    def generation_config(self):
        """The generation settings given at construction, for b4k3-generate."""
        return {name: getattr(self, name) for name in GENERATION_PARAMETERS}

    def build(
        self,
        attention_caches=None,
        layer_norm_cond=None,
        layer_norm_cond_hidden_size=None,
        layer_norm_cond_hidden_act=None,
        additional_input_layers=None,
    ):
        """Creates the Keras model `self.model` (once).

        `attention_caches` (bert4keras') maps attention layer names to `[key sequence, value
        sequence]`, tensors `(batch, n, hidden_size)` (usually `additional_input_layers`) that the
        layer's keys and values start with: its queries also attend to those `n` positions, all
        real. Only for attention without a mask or position bias of its own (an encoder).
        `layer_norm_cond` (a tensor of shape `(batch, dim)`) makes every layer normalization
        conditional on it, through a Dense of `layer_norm_cond_hidden_size` units first when
        given; `additional_input_layers` are extra model inputs (e.g. the condition's input).
        """
        if self.built:
            return
        self.refuse_unhonoured(
            attention_caches=bool(attention_caches),
            layer_norm_cond=layer_norm_cond is not None,
            additional_input_layers=additional_input_layers is not None,
        )
        if layer_norm_cond is None and (layer_norm_cond_hidden_size or layer_norm_cond_hidden_act):
            raise ValueError("layer_norm_cond_hidden_size and layer_norm_cond_hidden_act need layer_norm_cond")
        self.attention_caches = self.checked_attention_caches(attention_caches)
        inputs = self.get_inputs()
        self.set_inputs(inputs, additional_input_layers)
        self.layer_norm_conds = [layer_norm_cond, layer_norm_cond_hidden_size, layer_norm_cond_hidden_act or "linear"]
        outputs = self.call(inputs)
        self.set_outputs(outputs)
        self.model = TransformerModel(self.input, self.output, name=self.name)
        self.built = True

    def checked_attention_caches(self, attention_caches):
        """`{prefixed attention layer name: (keys, values)}`; a name that is no attention layer of this
        model, or an entry that is not a pair, is an error naming it."""
        caches = dict(attention_caches or {})
        names = {self.prefixed(self.sublayer_name(index, ATTENTION)) for index in range(self.num_hidden_layers)}
        unknown = sorted(set(caches) - names)
        if unknown:
            raise ValueError(f"attention_caches names {unknown}, not attention layers of this model: {sorted(names)}")
        for name, pair in caches.items():
            if not isinstance(pair, (list, tuple)) or len(pair) != 2:
                raise ValueError(f"attention_caches[{name!r}] must be [keys, values] (two tensors), got {pair!r}")
        return {name: tuple(pair) for name, pair in caches.items()}

    def with_attention_cache(self, name, query, arguments):
        """The call arguments of attention `name` with its keys and values led by its
        `attention_caches` sequences (bert4keras' `Concatenate1D` named `<name>-Cached-Key` /
        `-Cached-Value`), the key mask extended over them."""
        own = sorted(set(arguments) & {"attention_bias", "p_bias"})
        if own:
            raise ValueError(
                f"attention_caches[{name!r}]: {type(self).__name__}'s attention takes its own {own} (a mask or "
                "positions), which would not cover the cached positions; attention_caches is for unmasked encoders"
            )
        cached_keys, cached_values = self.attention_caches[name]
        key = arguments.get("key", query)
        arguments["key"] = self.apply([cached_keys, key], Concatenate1D, name=f"{name}-Cached-Key")
        value = arguments.get("value", key)
        arguments["value"] = self.apply([cached_values, value], Concatenate1D, name=f"{name}-Cached-Value")
        if arguments.get("key_mask") is not None:
            arguments["key_mask"] = self.apply(
                [cached_keys, arguments["key_mask"]], CachedKeyMask, name=f"{name}-Cached-Key-Mask"
            )
        return arguments

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
        if name in self.attention_caches and arguments.get("cache") is None:
            arguments = self.with_attention_cache(name, inputs, arguments)
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

    # Inputs and embeddings

    def get_inputs(self):
        """The Keras inputs: token ids `(batch, sequence_length)` int32. Families add more."""
        return [keras.Input(shape=(self.sequence_length,), dtype="int32", name=self.prefixed("Input-Token"))]

    def model_inputs(self, inputs):
        """`ModelInputs` from the Keras inputs of `get_inputs()` (a list, or the bare token ids)."""
        if isinstance(inputs, ModelInputs):
            return inputs
        return ModelInputs(inputs[0] if isinstance(inputs, (list, tuple)) else inputs)

    def apply_embeddings(self, inputs):
        """The hidden states entering block 0: `embedding_steps` run in order on the inputs."""
        inputs = self.model_inputs(inputs)
        x = None
        for step in self.embedding_steps:
            x = getattr(self, f"embed_{step}")(x, inputs)
        return x

    def embed_token(self, x, inputs):
        """The token embeddings (`Embedding-Token`, also the tied output matrix of LM heads)."""
        return self.apply(
            inputs.token_ids,
            Embedding,
            input_dim=self.vocab_size,
            output_dim=self.embedding_size,
            embeddings_initializer=self.initializer,
            mask_zero=self.pad_token_id == 0,
            name="Embedding-Token",
        )

    def embed_dropout(self, x, inputs):
        return self.apply(x, keras.layers.Dropout, rate=self.dropout_rate, name="Embedding-Dropout")

    # Blocks

    def apply_main_layers(self, inputs, index):
        """Block `index` of the full pass."""
        return self.apply_block(inputs, index, self.attention_arguments(index))[0]

    def apply_block(self, x, index, attention_arguments):
        """One block, attention then feed-forward, each a residual sublayer placed as
        `norm_placement` says. Returns `(x, cache)`: the updated KV cache when
        `attention_arguments` holds one (decoding), else None."""
        x, cache = self.apply_sublayer(x, index, ATTENTION, self.attention_layer(index), attention_arguments)
        x, _ = self.apply_sublayer(x, index, FEED_FORWARD, self.feed_forward_layer(index))
        return x, cache

    def apply_sublayer(self, x, index, sublayer, layer, arguments=None):
        """`x` plus the sublayer's output, with the norms `sublayer_norms` names: 'post' gives
        `norm(x + f(x))` (BERT), 'pre' `x + f(norm(x))` (Llama), 'pre' and 'output'
        `x + norm(f(norm(x)))` (Gemma2). Returns `(x, cache)`, the cache when `arguments` passes
        one to the layer."""
        name = self.sublayer_name(index, sublayer)
        norms = self.sublayer_norms(sublayer)
        y = self.apply_norm(x, self.norm_name(name, "pre")) if "pre" in norms else x
        y = self.apply(y, arguments=arguments, name=name, **layer)
        cache = None
        if arguments and arguments.get("cache") is not None:
            y, cache = y
        if "output" in norms:
            y = self.apply_norm(y, self.norm_name(name, "output"))
        y = self.apply(y, keras.layers.Dropout, rate=self.dropout_rate, name=f"{name}-Dropout")
        x = self.apply([x, y], keras.layers.Add, name=f"{name}-Add")
        if "post" in norms:
            x = self.apply_norm(x, self.norm_name(name, "post"))
        return x, cache

    def sublayer_name(self, index, sublayer):
        """The layer name of block `index`'s sublayer (`block_layer_name`: bert4keras'
        `Transformer-0-MultiHeadSelfAttention`); ALBERT, whose blocks share one set of layers,
        drops the index, RWKV6 has bert4keras3's `RWKV-0-TimeMix`."""
        return block_layer_name(index, sublayer)

    def sublayer_norms(self, sublayer):
        """The norms around `sublayer` (`ATTENTION` or `FEED_FORWARD`), among 'pre', 'output' and
        'post'; by default those of the family's `norm_placement`."""
        return NORM_POSITIONS[self.norm_placement]

    def norm_name(self, sublayer_name, position):
        """bert4keras' name of a sublayer's norm: `...-Norm`, or `...-Norm-post` on its output."""
        return f"{sublayer_name}-Norm-post" if position == "output" else f"{sublayer_name}-Norm"

    def attention_layer(self, index):
        """The attention of block `index`: `{"layer": class, **its arguments}`."""
        return {
            "layer": MultiHeadAttention,
            "heads": self.num_attention_heads,
            "head_size": self.attention_head_size,
            "out_dim": self.hidden_size,
            "key_size": self.attention_key_size,
            "attention_dropout": self.attention_dropout_rate,
            "kernel_initializer": self.initializer,
            "o_bias": self.o_bias,
            "query_head": self.query_head,
        }

    def feed_forward_layer(self, index):
        """The feed-forward layer of block `index`: `{"layer": class, **its arguments}`."""
        raise NotImplementedError(f"{type(self).__name__} must define feed_forward_layer")

    def attention_arguments(self, index):
        """The attention's call arguments in block `index` of the full pass: the padding mask,
        the attention bias (causal, UniLM, sliding window) and the position bias."""
        arguments = {
            "key_mask": self.compute_padding_mask(),
            "attention_bias": self.compute_attention_bias(index),
            "p_bias": self.position_bias_kind,
        }
        if self.position_bias_kind not in (None, "rotary"):
            arguments["position_bias"] = self.compute_position_bias(index)
        return {name: value for name, value in arguments.items() if value is not None}

    def compute_attention_bias(self, inputs=None):
        """The attention mask or bias of block `inputs` (None: only padding is masked)."""
        return self.attention_bias

    def compute_position_bias(self, inputs=None):
        """The relative position bias of block `inputs` (families with a relative `position_bias_kind`)."""
        return self.position_bias

    def compute_padding_mask(self):
        """`(batch, len)` bool mask of the real tokens (None without `pad_token_id`), computed once."""
        if self.padding_mask is None and self.pad_token_id is not None:
            self.padding_mask = self.apply(
                self.inputs[0], PaddingMask, pad_token_id=self.pad_token_id, name="Padding-Mask"
            )
        return self.padding_mask

    # Norms

    def norm_arguments(self):
        """The arguments of every norm layer (e.g. its epsilon)."""
        return {}

    def apply_norm(self, x, name):
        """A `norm_layer`, conditional on `build(layer_norm_cond=...)` when one is given."""
        cond, hidden_units, hidden_activation = self.layer_norm_conds
        if cond is None:
            return self.apply(x, self.norm_layer, name=name, **self.norm_arguments())
        return self.apply(
            [x, cond],
            self.norm_layer,
            conditional=True,
            hidden_units=hidden_units,
            hidden_activation=hidden_activation,
            hidden_initializer=self.initializer,
            name=name,
            **self.norm_arguments(),
        )

    def apply_final_layers(self, inputs):
        raise NotImplementedError(f"{type(self).__name__} must define apply_final_layers")

    def apply_lm_activation(self, logits, name="Output-LM-Activation"):
        """The LM head's activation of a decoder's `with_lm`: True is softmax (in float32),
        'linear' (or None) leaves the logits, any other Keras activation name applies it."""
        activation = "softmax" if self.with_lm is True else self.with_lm
        if activation in ("linear", None):
            return logits
        return self.apply(logits, keras.layers.Activation, activation=activation, dtype="float32", name=name)

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

    # Configs and checkpoints

    @classmethod
    def from_hf_config(cls, hf_config):
        """The family's arguments from a Hugging Face `config.json` dict. Subclasses extend their
        parent's translation."""
        raise NotImplementedError(f"{cls.__name__} does not read Hugging Face configs")

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
        initial=True,
    ):
        """bert4keras3's KV-cache generator; see `b4k3_generate.build_cache_model` (b4k3-generate)."""
        try:
            from b4k3_generate import build_cache_model
        except ImportError as error:
            raise ImportError(
                "build_cache_model needs b4k3-generate: pip install ./packages/b4k3-generate from a b4k3 checkout"
            ) from error
        return build_cache_model(
            self, input_lengths, end_token, search_mode, k, progress_print, index_bias, jit_compile, initial
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
        self.check_not_quantized()
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

    def load_keras_weights(self, path):
        """Loads a Keras `.weights.h5` file saved from this model (`keras_weights.load_keras_weights`,
        as strict as a checkpoint). Families that read another layout too override it."""
        return load_keras_weights(self.model, path, self.ignore_invalid_weights)

    def check_not_quantized(self):
        """Raises a ValueError naming the quantized layers: a checkpoint's float weights do not fit
        their integer kernels and scales (load first, then `model.quantize(...)`)."""
        quantized = [layer.path for layer in self.model._flatten_layers() if getattr(layer, "quantization_mode", None)]
        if quantized:
            raise ValueError(
                f"{self.name or type(self).__name__} is already quantized ({len(quantized)} layers, e.g. "
                f"{quantized[0]!r}): load the checkpoint into the float model, then call model.quantize(...)"
            )

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
