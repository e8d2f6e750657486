"""T5 (`bert4keras3.models.T5_Encoder`, `.T5_Decoder`, `.T5`): Google's encoder-decoder in its
versions t5.1.0 (ReLU feed-forward, head tied to the token embeddings), t5.1.1 and mT5 (gated-GELU
feed-forward, untied head), with the name maps of Google's (mesh-TF) checkpoints and of Hugging
Face's `t5` / `mt5` directories.

Pre-norm blocks with T5's RMS norm (no mean, no offset), attention without biases or scaling, and
bucketed relative positions: one table per stack, looked up once and added in every layer,
bidirectional in the encoder, causal in the decoder. A decoder block runs self-attention,
cross-attention on the encoder output, then the feed-forward. Layer names are bert4keras3's
(`Encoder-Transformer-0-MultiHeadSelfAttention`, `Decoder-Transformer-0-MultiHeadCrossAttention`,
...), with the token embeddings `Embedding-Token` shared by both stacks.

`T5` decodes through `CachedDecoding` as an encoder-decoder: `build_cache` runs the encoder once
and computes each decoder layer's cross-attention keys and values then; every step reads them.
"""

import keras

from b4k3_layers import Embedding, FeedForward, LayerNormalization, RelativePositionEmbeddingT5
from b4k3_layers.feed_forward import gelu_tanh
from b4k3_models.checkpoint_names import tied_output_keys
from b4k3_models.decoding import CachedDecoding
from b4k3_models.hf_configs import hf_activation, reject_unsupported
from b4k3_models.keras_model import TransformerModel
from b4k3_models.masks import CausalMask, PaddingMask
from b4k3_models.t5_names import T5_CHECKPOINT_NAMES
from b4k3_models.transformer import ATTENTION, FEED_FORWARD, ModelInputs, Transformer, block_layer_name
from b4k3_ops import ops

T5_VERSIONS = ("t5.1.0", "t5.1.1", "mt5.1.1")
CROSS_ATTENTION = "MultiHeadCrossAttention"
# Layers both stacks share: they carry no `Encoder-` / `Decoder-` in their names.
SHARED_LAYERS = ("Embedding-Token", "Input-Context")


class T5_Base(Transformer):
    """What T5's encoder and decoder share (`bert4keras3.models.T5_Base`).

    Args:
        version: 't5.1.0' (ReLU feed-forward, tied head), 't5.1.1' or 'mt5.1.1' (gated-GELU
            feed-forward, untied head; they differ only in their Google checkpoints' names).
        relative_attention_num_buckets, relative_attention_max_distance: the relative position
            buckets (T5: 32 and 128; Hugging Face configs may set others).
        layer_norm_eps: epsilon of the RMS norms.
        hidden_act: the feed-forward's activation(s); default the version's: 'relu', or
            `[gelu_tanh, 'linear']` (gated, with GELU's tanh approximation as T5 trained it).
        pad_token_id: the padding id (T5: 0), masked out of the encoder's attention.
        relative_bias_per_layer: a relative position table in every block (UMT5) instead of one
            per stack.
        **kwargs: the arguments of `Transformer`.
    """

    honoured_options = frozenset({"pad_token_id"})
    norm_placement = "pre"
    norm_layer = LayerNormalization
    position_bias_kind = "t5_relative"
    # The stack's name prefix: 'Encoder-' or 'Decoder-' ('' for the whole model).
    stack = ""
    # Whether the stack's relative positions count both ways (the encoder) or only back (the decoder).
    bidirectional = True

    def __init__(
        self,
        version="t5.1.0",
        relative_attention_num_buckets=32,
        relative_attention_max_distance=128,
        layer_norm_eps=1e-6,
        hidden_act=None,
        pad_token_id=0,
        relative_bias_per_layer=False,
        **kwargs,
    ):
        if version not in T5_VERSIONS:
            raise ValueError(f"{type(self).__name__}: version must be one of {T5_VERSIONS}, got {version!r}")
        if hidden_act is None:
            hidden_act = "relu" if version == "t5.1.0" else [gelu_tanh, "linear"]
        super().__init__(hidden_act=hidden_act, pad_token_id=pad_token_id, **kwargs)
        self.version = version
        self.relative_attention_num_buckets = relative_attention_num_buckets
        self.relative_attention_max_distance = relative_attention_max_distance
        self.layer_norm_eps = layer_norm_eps
        self.relative_bias_per_layer = relative_bias_per_layer

    def stack_name(self, name):
        """bert4keras3's name of one of the stack's layers: `Encoder-` / `Decoder-` before it,
        except for the layers both stacks share."""
        return name if name in SHARED_LAYERS else self.stack + name

    def prefixed(self, name):
        return self.prefix + self.stack_name(name) if name else name

    @classmethod
    def from_hf_config(cls, hf_config):
        """Arguments from a Hugging Face `t5` / `mt5` config dict.

        The head is a matrix of its own, read from `lm_head.weight` when the checkpoint has it and
        from `shared.weight` otherwise (transformers 5 writes a tied model's config for every T5,
        untied ones included). The logits are scaled by `d_model ** -0.5` as `scale_decoder_outputs`
        says; without it, not for an MT5 saved by transformers 5 (which never scales), else
        exactly when the embeddings are tied. Cross-attention has no relative bias.
        """
        reject_unsupported(hf_config, is_decoder=(False, None))
        projection = hf_config.get("feed_forward_proj", "relu")
        parts = projection.split("-")
        gated = parts[0] == "gated"
        if len(parts) > 2 or (len(parts) == 2 and not gated):
            raise ValueError(
                f"Hugging Face feed_forward_proj={projection!r} is not one T5 has: give 'relu', 'gated-gelu' or "
                "'gated-<activation>'"
            )
        activation = hf_activation("gelu_new" if projection == "gated-gelu" else parts[-1])
        is_mt5 = hf_config.get("model_type") in ("mt5", "umt5")
        layers = hf_config["num_layers"]
        return {
            "vocab_size": hf_config["vocab_size"],
            "hidden_size": hf_config["d_model"],
            "num_hidden_layers": layers,
            "num_decoder_layers": hf_config.get("num_decoder_layers") or layers,
            "num_attention_heads": hf_config["num_heads"],
            "attention_head_size": hf_config["d_kv"],
            "intermediate_size": hf_config["d_ff"],
            "relative_attention_num_buckets": hf_config.get("relative_attention_num_buckets", 32),
            "relative_attention_max_distance": hf_config.get("relative_attention_max_distance", 128),
            "layer_norm_eps": hf_config.get("layer_norm_epsilon", 1e-6),
            "dropout_rate": hf_config.get("dropout_rate"),
            "hidden_act": [activation, "linear"] if gated else activation,
            "version": ("mt5.1.1" if is_mt5 else "t5.1.1") if gated else "t5.1.0",
            "pad_token_id": hf_config.get("pad_token_id", 0),
            "decoder_start_token_id": hf_config.get("decoder_start_token_id", 0),
            "share_embedding": False,
            "logit_scale": hf_logit_scale(hf_config),
            "cross_position_bias": False,
            "relative_bias_per_layer": hf_config.get("model_type") == "umt5",
        }

    # Blocks

    def norm_arguments(self):
        """T5's RMS norm: no mean subtracted, a scale and no offset."""
        return {"zero_mean": False, "offset": False, "epsilon": self.layer_norm_eps}

    def attention_layer(self, index):
        return {**super().attention_layer(index), "use_bias": False, "attention_scale": False}

    def feed_forward_layer(self, index):
        return {
            "layer": FeedForward,
            "units": self.intermediate_size,
            "activation": self.hidden_act,
            "use_bias": False,
            "kernel_initializer": self.initializer,
        }

    def relative_position_name(self, index):
        """The relative position table of block `index`: the stack's one, or (UMT5) the block's."""
        return f"Embedding-Relative-Position-{index}" if self.relative_bias_per_layer else "Embedding-Relative-Position"

    def relative_positions(self, inputs, index, relative_positions=None):
        """Block `index`'s relative position bias for `[queries, keys]` (their lengths), or of
        `relative_positions` when given."""
        return self.apply(
            inputs,
            RelativePositionEmbeddingT5,
            arguments=None if relative_positions is None else {"relative_positions": relative_positions},
            input_dim=self.relative_attention_num_buckets,
            output_dim=self.num_attention_heads,
            max_distance=self.relative_attention_max_distance,
            bidirectional=self.bidirectional,
            embeddings_initializer=self.initializer,
            name=self.relative_position_name(index),
        )

    def block_bias(self, attribute, index, inputs):
        """The relative bias of block `index` for `inputs`: looked up once and kept in `attribute`
        when the stack has one table, looked up per block when each has its own."""
        if self.relative_bias_per_layer:
            return self.relative_positions(inputs, index)
        if getattr(self, attribute) is None:
            setattr(self, attribute, self.relative_positions(inputs, index))
        return getattr(self, attribute)

    def compute_position_bias(self, inputs=None):
        """The self-attention's relative bias in block `inputs` (its index)."""
        tokens = self.model_inputs(self.inputs).token_ids
        return self.block_bias("position_bias", inputs or 0, [tokens, tokens])

    # Checkpoints

    def checkpoint_names(self, checkpoint):
        """The checkpoint's naming (`t5_names`): Hugging Face's, Google's t5 or Google's mT5."""
        return T5_CHECKPOINT_NAMES["hf" if checkpoint.format == "hf" else self.version]

    def known_extra_keys(self, checkpoint):
        """The copies of the token embeddings older Hugging Face files keep per stack."""
        return [key for key in ("encoder.embed_tokens.weight", "decoder.embed_tokens.weight") if key in checkpoint]

    def stack_mapping(self, names, stack):
        """The name map of the token embeddings and one stack's blocks and final norm (layer
        names without the stack prefix)."""
        mapping = {
            "Embedding-Token": names.embeddings(self.load_embeddings),
            "Output-Norm": names.final_norm(stack),
        }
        for index in range(self.num_hidden_layers if self.relative_bias_per_layer else 1):
            mapping[self.relative_position_name(index)] = names.relative_position(stack, index)
        sublayers = (ATTENTION, CROSS_ATTENTION, FEED_FORWARD) if stack == "decoder" else (ATTENTION, FEED_FORWARD)
        for index in range(self.num_hidden_layers):
            for position, sublayer in enumerate(sublayers):
                name = block_layer_name(index, sublayer)
                mapping[f"{name}-Norm"] = names.norm(stack, index, position)
                if sublayer == FEED_FORWARD:
                    mapping[name] = names.feed_forward(stack, index, position, gated=len(self.hidden_act_list) > 1)
                else:
                    mapping[name] = names.attention(stack, index, position, cross=sublayer == CROSS_ATTENTION)
        return mapping

    @property
    def hidden_act_list(self):
        return list(self.hidden_act) if isinstance(self.hidden_act, (list, tuple)) else [self.hidden_act]


def hf_logit_scale(hf_config):
    """Whether a Hugging Face T5 / MT5 scales its logits by `d_model ** -0.5` (see `from_hf_config`)."""
    if "scale_decoder_outputs" in hf_config:
        return bool(hf_config["scale_decoder_outputs"])
    saved_by_v5 = int(str(hf_config.get("transformers_version", "0")).split(".")[0]) >= 5
    if hf_config.get("model_type") == "mt5" and saved_by_v5:
        return False
    return bool(hf_config.get("tie_word_embeddings", True))


class T5_Encoder(T5_Base):
    """T5's encoder (`bert4keras3.models.T5_Encoder`): token ids in (`Encoder-Input-Token`), the
    final hidden states out, padding (`pad_token_id`) masked."""

    stack = "Encoder-"

    def apply_final_layers(self, inputs):
        x = self.apply_norm(inputs, "Output-Norm")
        return self.apply(x, keras.layers.Dropout, rate=self.dropout_rate, name="Output-Dropout")

    def variable_mapping(self, checkpoint):
        return self.stack_mapping(self.checkpoint_names(checkpoint), "encoder")

    def known_extra_keys(self, checkpoint):
        """A whole T5's checkpoint loads into its encoder: the decoder's arrays are known."""
        names = self.checkpoint_names(checkpoint)
        return [*super().known_extra_keys(checkpoint), *(key for key in checkpoint if names.is_decoder_key(key))]


class T5_Decoder(CachedDecoding, T5_Base):
    """T5's decoder (`bert4keras3.models.T5_Decoder`): the encoder output (`Input-Context`) and
    decoder token ids (`Decoder-Input-Token`) in, the LM head's output out.

    Args:
        with_lm: the LM head: True (softmax), 'linear' (logits), another activation, or False (the
            final hidden states).
        cross_position_bias: add the decoder's relative position bias in cross-attention too (as
            bert4keras did; Google's and Hugging Face's T5 have none there: their checkpoints load
            with it off).
        logit_scale: multiply the final hidden states by `hidden_size ** -0.5` before the head
            (T5 with a tied head; False for ChatYuan and untied Hugging Face models).
        decoder_sequence_length: a fixed decoder length; default any.
        share_embedding: the head is the token embeddings (default: t5.1.0 yes, others no).
        decoder_start_token_id: the token decoding starts from (T5: 0, the pad id).
        **kwargs: the arguments of `T5_Base`.
    """

    stack = "Decoder-"
    bidirectional = False

    def __init__(
        self,
        with_lm=True,
        cross_position_bias=True,
        logit_scale=True,
        decoder_sequence_length=None,
        share_embedding=None,
        decoder_start_token_id=0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.with_lm = with_lm
        self.cross_position_bias = cross_position_bias
        self.logit_scale = logit_scale
        self.decoder_sequence_length = decoder_sequence_length
        self.share_embedding = self.version == "t5.1.0" if share_embedding is None else bool(share_embedding)
        self.decoder_start_token_id = decoder_start_token_id
        self.context_mask = None
        self.cross_bias = None

    @property
    def optional_layers(self):
        """An untied head's matrix is expected even without an LM head (`with_lm=False`)."""
        return () if self.share_embedding else ("Output-LM",)

    def get_inputs(self):
        context = keras.Input(shape=(self.sequence_length, self.hidden_size), name=self.prefixed("Input-Context"))
        tokens = keras.Input(shape=(self.decoder_sequence_length,), dtype="int32", name=self.prefixed("Input-Token"))
        return [context, tokens]

    def model_inputs(self, inputs):
        return inputs if isinstance(inputs, ModelInputs) else ModelInputs(inputs[1])

    def call_on(self, context, token_ids, context_mask=None):
        """The decoder's outputs on other inputs than its own (T5 feeds it the encoder's output),
        `context_mask` `(batch, context_len)` masking the context's padding in cross-attention."""
        self.attention_bias = self.position_bias = self.cross_bias = None
        self.set_inputs([context, token_ids])
        self.context_mask = context_mask
        return self.call(self.inputs)

    # The full pass

    def compute_padding_mask(self):
        """None: the causal mask hides what follows each token (and the start token is the pad id)."""
        return None

    def compute_attention_bias(self, inputs=None):
        if self.attention_bias is None:
            self.attention_bias = self.apply(self.inputs[1], CausalMask, name="Attention-Mask")
        return self.attention_bias

    def attention_arguments(self, index):
        return {**super().attention_arguments(index), "cross": self.cross_attention_arguments(index)}

    def cross_attention_arguments(self, index):
        """Cross-attention's call arguments in the full pass: keys and values from the context."""
        context = self.inputs[0]
        arguments = {"key": context, "value": context}
        if self.context_mask is not None:
            arguments["key_mask"] = self.context_mask
        if self.cross_position_bias:
            bias = self.block_bias("cross_bias", index, [self.inputs[1], context])
            arguments.update(p_bias=self.position_bias_kind, position_bias=bias)
        return arguments

    def apply_block(self, x, index, attention_arguments):
        """Self-attention, cross-attention (its arguments under `attention_arguments['cross']`),
        feed-forward. Decoding returns the layer's cache `(self keys/values, cross keys/values,
        context mask)`."""
        attention_arguments = dict(attention_arguments)
        cross_arguments = attention_arguments.pop("cross")
        x, cache = self.apply_sublayer(x, index, ATTENTION, self.attention_layer(index), attention_arguments)
        x, _ = self.apply_sublayer(x, index, CROSS_ATTENTION, self.attention_layer(index), cross_arguments)
        x, _ = self.apply_sublayer(x, index, FEED_FORWARD, self.feed_forward_layer(index))
        if cache is not None:
            cache = (cache, cross_arguments["cache"], cross_arguments["key_mask"])
        return x, cache

    def apply_final_layers(self, inputs):
        x = self.apply_norm(inputs, "Output-Norm")
        x = self.apply(x, keras.layers.Dropout, rate=self.dropout_rate, name="Output-Dropout")
        if self.logit_scale:
            x = self.apply(x, keras.layers.Rescaling, scale=self.hidden_size**-0.5, name="Output-Scale")
        if not self.with_lm:
            return x
        if self.share_embedding:
            x = self.apply(x, Embedding, arguments={"mode": "dense"}, name="Embedding-Token")
        else:
            x = self.apply(
                x,
                keras.layers.Dense,
                units=self.vocab_size,
                use_bias=False,
                kernel_initializer=self.initializer,
                name="Output-LM",
            )
        return self.apply_lm_activation(x)

    # Decoding

    def build_cache(self, batch_size, max_length, context, context_mask=None, dtype=None):
        """The cache of a decoding on `context` (the encoder output `(batch, context_len, hidden)`,
        `context_mask` its real positions): per layer, empty self-attention keys/values for
        `max_length` positions, the cross-attention keys/values of the context, and the mask."""
        self.check_can_decode()
        self_caches = super().build_cache(batch_size, max_length, dtype)
        context = ops.convert_to_tensor(context)
        if context_mask is None:
            context_mask = ops.ones(ops.shape(context)[:2], dtype="bool")
        cache = []
        for index, self_cache in enumerate(self_caches):
            layer = self.layers[self.prefixed(block_layer_name(index, CROSS_ATTENTION))]
            cross_cache = ops.cast(layer.key_value_cache(ops.cast(context, layer.compute_dtype)), self_cache.dtype)
            cache.append((self_cache, cross_cache, ops.cast(context_mask, "bool")))
        return cache

    def resize_cache(self, cache, max_length):
        """The self-attention part resized; the context's part stays as it is."""
        resized = super().resize_cache([layer_cache[0] for layer_cache in cache], max_length)
        return [(self_cache, *layer_cache[1:]) for self_cache, layer_cache in zip(resized, cache, strict=True)]

    def cache_length(self, cache):
        return ops.shape(cache[0][0])[2]

    def cache_attention_arguments(self, layer_index, positions, key_positions, cache, index):
        self_cache, cross_cache, context_mask = cache
        arguments = super().cache_attention_arguments(layer_index, positions, key_positions, self_cache, index)
        cross = {"cache": cross_cache, "key_mask": context_mask}
        if self.cross_position_bias:
            context_positions = ops.arange(ops.shape(cross_cache)[2], dtype="int32")[None]
            bias = self.cache_position_bias(positions, context_positions, layer_index)
            cross.update(p_bias=self.position_bias_kind, position_bias=bias)
        return {**arguments, "cross": cross}

    def cache_position_bias(self, query_positions, key_positions, layer_index):
        """`(batch, T, keys, heads)`: each query's bias at its absolute position."""
        relative = key_positions[:, None, :] - query_positions[:, :, None]
        # The layer reads only `relative_positions`; its inputs stand in for the usual [q, k].
        return self.relative_positions(relative, layer_index, relative_positions=relative)

    # Checkpoints

    def variable_mapping(self, checkpoint):
        names = self.checkpoint_names(checkpoint)
        mapping = self.stack_mapping(names, "decoder")
        mapping["Output-LM"] = names.head(checkpoint, self.load_embeddings)
        return mapping

    def known_extra_keys(self, checkpoint):
        """A whole T5's checkpoint loads into its decoder: the encoder's arrays are known; so is
        a tied model's output matrix stored as a copy of the token embeddings."""
        names = self.checkpoint_names(checkpoint)
        known = [*super().known_extra_keys(checkpoint), *(key for key in checkpoint if names.is_encoder_key(key))]
        if self.share_embedding and checkpoint.format == "hf":
            known += tied_output_keys(checkpoint, "shared.weight")
        return known


class T5(T5_Base):
    """T5 (`bert4keras3.models.T5`): `T5_Encoder` and `T5_Decoder` sharing their token embeddings,
    one Keras model from `[encoder tokens, decoder tokens]` to the decoder's output.

    After `build()`, `.encoder` and `.decoder` are the two stacks' Keras models (the decoder's
    inputs are `[encoder output, decoder tokens]`), `.encoder_transformer` and
    `.decoder_transformer` their b4k3 objects. It decodes as an encoder-decoder
    (`is_encoder_decoder`): `build_cache(batch_size, max_length, encoder_inputs)` encodes once.

    Args:
        num_decoder_layers: the decoder's depth (default `num_hidden_layers`).
        with_lm, cross_position_bias, logit_scale, decoder_sequence_length, share_embedding,
            decoder_start_token_id: the decoder's (see `T5_Decoder`).
        **kwargs: the arguments of `T5_Base`, for both stacks.
    """

    is_encoder_decoder = True

    def __init__(
        self,
        num_decoder_layers=None,
        with_lm=True,
        cross_position_bias=True,
        logit_scale=True,
        decoder_sequence_length=None,
        share_embedding=None,
        decoder_start_token_id=0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        name = kwargs.pop("name", None)
        stacks = {**kwargs, "layers": self.layers}
        self.encoder_transformer = T5_Encoder(name=f"{name}_Encoder" if name else "Encoder", **stacks)
        stacks["num_hidden_layers"] = num_decoder_layers or self.num_hidden_layers
        self.decoder_transformer = T5_Decoder(
            with_lm=with_lm,
            cross_position_bias=cross_position_bias,
            logit_scale=logit_scale,
            decoder_sequence_length=decoder_sequence_length,
            share_embedding=share_embedding,
            decoder_start_token_id=decoder_start_token_id,
            name=f"{name}_Decoder" if name else "Decoder",
            **stacks,
        )
        self.encoder = self.decoder = None

    def build(self, **build_options):
        """Builds both stacks, then the whole model on the encoder's inputs and the decoder's tokens."""
        if self.built:
            return
        encoder, decoder = self.encoder_transformer, self.decoder_transformer
        encoder.build(**build_options)
        decoder.build(**build_options)
        self.encoder, self.decoder = encoder.model, decoder.model
        self.set_inputs([*self.encoder.inputs, self.decoder.inputs[1]])
        outputs = decoder.call_on(self.encoder.outputs[0], self.decoder.inputs[1], encoder.compute_padding_mask())
        self.set_outputs(outputs)
        self.model = TransformerModel(self.inputs, self.output, name=self.name)
        self.built = True

    # The decoding protocol, the decoder's after one encoding

    @property
    def decoder_start_token_id(self):
        return self.decoder_transformer.decoder_start_token_id

    @property
    def lm_head_activation(self):
        return self.decoder_transformer.lm_head_activation

    max_positions = None

    def check_can_decode(self):
        if not self.built:
            raise TypeError("T5 is not built yet: call build() (build_transformer_model does)")
        self.decoder_transformer.check_can_decode()

    def build_cache(self, batch_size, max_length, encoder_inputs, dtype=None):
        """Encodes `encoder_inputs` `(batch, len)` (right-padded with `pad_token_id`) and returns
        the decoder's cache for `max_length` positions (see `T5_Decoder.build_cache`)."""
        self.check_can_decode()
        token_ids = ops.convert_to_tensor(encoder_inputs, "int32")
        context = self.encoder(token_ids, training=False)
        mask = self.encoder_transformer.apply(token_ids, PaddingMask, name="Padding-Mask")
        return self.decoder_transformer.build_cache(batch_size, max_length, context, mask, dtype)

    def call_with_cache(self, inputs, cache, index):
        return self.decoder_transformer.call_with_cache(inputs, cache, index)

    def resize_cache(self, cache, max_length):
        return self.decoder_transformer.resize_cache(cache, max_length)

    # Checkpoints

    def variable_mapping(self, checkpoint):
        mapping = {}
        for stack in (self.encoder_transformer, self.decoder_transformer):
            for name, weights in stack.variable_mapping(checkpoint).items():
                mapping[stack.stack_name(name)] = weights
        return mapping

    @property
    def optional_layers(self):
        return tuple(self.decoder_transformer.stack_name(name) for name in self.decoder_transformer.optional_layers)

    def known_extra_keys(self, checkpoint):
        known = super().known_extra_keys(checkpoint)
        if self.decoder_transformer.share_embedding and checkpoint.format == "hf":
            known += tied_output_keys(checkpoint, "shared.weight")
        return known
