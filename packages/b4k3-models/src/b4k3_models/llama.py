"""Decoder-only language models: Gemma, Llama (Qwen and Yi are Llamas) and Gemma2
(`bert4keras3.models.Gemma`, `.Llama`, `.Gemma2`), their Hugging Face name maps and config
translations. They decode through `CachedDecoding` (`build_cache`, `call_with_cache`).

Pre-norm blocks with rotary positions (half-split, as Hugging Face), grouped-query attention and
gated feed-forward layers. There is no padding mask: the causal mask already keeps real tokens
from seeing the padding that follows them, and no token id is reserved as padding (0 is a real
token in Llama-3 and Qwen vocabularies).
"""

import math

import keras
import numpy as np

from b4k3_layers import (
    Embedding,
    GemmaFeedForward,
    LLamaFeedForward,
    LlamaLayerNorm,
    RMSNormalization,
)
from b4k3_layers.attention import ROPE_MODES
from b4k3_models.checkpoint_names import HF_NAMES, hf_base_prefix, tied_output_keys
from b4k3_models.decoding import CachedDecoding
from b4k3_models.hf_configs import hf_activation, hf_rope, reject_unsupported
from b4k3_models.language_models import LM_Mask
from b4k3_models.masks import CausalMask, SoftCap
from b4k3_models.transformer import ATTENTION, FEED_FORWARD, Transformer, block_layer_name
from b4k3_models.weight_maps import Weight, per_head_bias, per_head_kernel, per_head_output
from b4k3_ops import ops


def agreeing(first_name, first, second_name, second):
    """The value given under either of two names for one setting; an error if they disagree."""
    if first is not None and second is not None and first != second:
        raise ValueError(f"{first_name}={first!r} and {second_name}={second!r} name the same setting and disagree")
    return first if first is not None else second


def refuse_bert_options(owner, **options):
    """Raises a TypeError naming the BERT options given a value that asks for something: a decoder
    cannot give it, and bert4keras3's Gemma, which took them through RoFormer, ignored it silently."""
    asked = {name: value for name, value in options.items() if value}
    if asked:
        raise TypeError(
            f"{owner} is a decoder without segments, pooler, NSP or MLM head, or position inputs, so it cannot "
            f"honour {asked} (bert4keras3 ignored them silently). Remove them, or set them to 0 / False / None"
        )


class Gemma(LM_Mask, CachedDecoding, Transformer):
    """Gemma: pre-norm decoder, RMS norms `x * (1 + scale)`, inputs scaled by sqrt(hidden_size),
    GeGLU feed-forward, output tied to the token embeddings.

    Heads: bert4keras3's `num_attention_heads` counts the key/value heads and `query_head` the
    query heads; `num_key_value_heads` / `num_query_heads` say the same plainly (either spelling,
    not conflicting ones).

    Args:
        with_lm: the LM head: True (softmax), 'linear' (logits), another activation, or False (none:
            the final hidden states).
        max_wavelength: rotary base (Hugging Face's `rope_theta`).
        scaling_factor: divides the exponents of the rotary frequencies (bert4keras3's meaning; for
            Hugging Face's linear position interpolation use `rope_scaling`).
        rope_scaling: Hugging Face's rope scaling dict (`linear` or Llama-3.1's `llama3`).
        use_EinsumDense: attention projections as `EinsumDense` (Gemma's layout) or `Dense`.
        use_bias: q/k/v projection biases; `o_bias` the output projection's (default `use_bias`).
        use_dense_bias: feed-forward biases.
        input_scale: multiply the token embeddings by sqrt(hidden_size).
        share_emebding (bert4keras3's spelling) / share_embedding: tie the LM head to the embeddings
            (default: Gemma yes, Llama no).
        rope_mode: 'keras' (half-split rotary, what Hugging Face and bert4keras3 checkpoints need)
            or 'su' (interleaved pairs, RoFormer's; for weights trained that way). bert4keras3's
            Gemma took the argument and always rotated the 'keras' way.
        flatten_o_dense: bert4keras3's, passed to the attention (no effect: see `MultiHeadAttention`).
        rms_norm_eps: epsilon of every RMS norm (from the config; the predecessor fixed it at 1e-6).
        max_position, segment_vocab_size, with_pool, with_nsp, with_mlm, hierarchical_position,
            custom_position_ids, shared_segment_embeddings: BERT's arguments, which bert4keras3's
            Gemma took through RoFormer. Accepted where they ask for nothing (`max_position`: any
            value, rotary positions have no table; the others 0, False or None), refused by name
            otherwise: a decoder has no segments, pooler, NSP or MLM head, or position inputs.
        **kwargs: the arguments of `Transformer`.
    """

    honoured_options = frozenset({"o_bias", "query_head"})
    embedding_steps = ("token", "scale", "dropout")
    norm_placement = "pre"
    norm_layer = RMSNormalization
    position_bias_kind = "rotary"
    GQA_mode = "gemma"
    shares_embedding_by_default = True
    argument_aliases = (
        ("share_embedding", "share_emebding"),
        ("num_key_value_heads", "num_attention_heads"),
        ("num_query_heads", "query_head"),
    )

    def __init__(
        self,
        with_lm=True,
        max_wavelength=10_000.0,
        scaling_factor=1.0,
        use_EinsumDense=True,
        use_bias=False,
        use_dense_bias=False,
        input_scale=True,
        share_emebding=None,
        rope_mode="keras",
        share_embedding=None,
        rope_scaling=None,
        rms_norm_eps=1e-6,
        flatten_o_dense=False,
        num_attention_heads=None,
        query_head=None,
        num_key_value_heads=None,
        num_query_heads=None,
        attention_head_size=None,
        max_position=None,
        segment_vocab_size=0,
        with_pool=False,
        with_nsp=False,
        with_mlm=False,
        hierarchical_position=None,
        custom_position_ids=False,
        shared_segment_embeddings=False,
        **kwargs,
    ):
        owner = type(self).__name__
        refuse_bert_options(
            owner,
            segment_vocab_size=segment_vocab_size,
            with_pool=with_pool,
            with_nsp=with_nsp,
            with_mlm=with_mlm,
            hierarchical_position=hierarchical_position,
            custom_position_ids=custom_position_ids,
            shared_segment_embeddings=shared_segment_embeddings,
        )
        key_value_heads = agreeing(
            "num_attention_heads", num_attention_heads, "num_key_value_heads", num_key_value_heads
        )
        if key_value_heads is None:
            raise ValueError(f"{owner} needs its key/value head count: num_attention_heads (or num_key_value_heads)")
        query_heads = agreeing("query_head", query_head, "num_query_heads", num_query_heads) or key_value_heads
        if query_heads % key_value_heads:
            raise ValueError(
                f"{owner}: the query heads (query_head / HF num_attention_heads = {query_heads}) must be a multiple "
                f"of the key/value heads (num_attention_heads / HF num_key_value_heads = {key_value_heads})"
            )
        hidden_size = kwargs.get("hidden_size")
        if attention_head_size is None and hidden_size is not None:
            if hidden_size % query_heads:
                raise ValueError(
                    f"{owner}: hidden_size={hidden_size} is not a multiple of the {query_heads} query heads; "
                    "give attention_head_size (HF head_dim)"
                )
            attention_head_size = hidden_size // query_heads
        if rope_mode not in ROPE_MODES:
            raise ValueError(f"{owner}: rope_mode must be one of {ROPE_MODES}, got {rope_mode!r}")
        super().__init__(
            num_attention_heads=key_value_heads,
            query_head=query_heads,
            attention_head_size=attention_head_size,
            **kwargs,
        )
        self.with_lm = with_lm
        self.max_wavelength = max_wavelength
        self.scaling_factor = scaling_factor
        self.rope_scaling = rope_scaling
        self.use_EinsumDense = use_EinsumDense
        self.use_bias = use_bias
        self.use_dense_bias = use_dense_bias
        self.input_scale = input_scale
        share = agreeing("share_emebding", share_emebding, "share_embedding", share_embedding)
        self.share_emebding = self.shares_embedding_by_default if share is None else bool(share)
        self.rope_mode = rope_mode
        self.rms_norm_eps = rms_norm_eps
        self.flatten_o_dense = flatten_o_dense

    @classmethod
    def from_hf_config(cls, hf_config):
        """Arguments from a Hugging Face Gemma / Llama / Qwen2 config dict: what they share."""
        reject_unsupported(hf_config, use_sliding_window=(False, None))
        query_heads = hf_config["num_attention_heads"]
        theta, rope_scaling = hf_rope(hf_config)
        attention_bias = hf_config.get("attention_bias", False)
        return {
            "vocab_size": hf_config["vocab_size"],
            "hidden_size": hf_config["hidden_size"],
            "num_hidden_layers": hf_config["num_hidden_layers"],
            "intermediate_size": hf_config["intermediate_size"],
            "query_head": query_heads,
            "num_attention_heads": hf_config.get("num_key_value_heads") or query_heads,
            "attention_head_size": hf_config.get("head_dim") or hf_config["hidden_size"] // query_heads,
            "hidden_act": hf_activation(hf_config.get("hidden_act") or hf_config.get("hidden_activation") or "silu"),
            "max_wavelength": theta,
            "rope_scaling": rope_scaling,
            "rms_norm_eps": hf_config.get("rms_norm_eps", 1e-6),
            "attention_dropout_rate": hf_config.get("attention_dropout"),
            "share_emebding": hf_config.get("tie_word_embeddings", cls.shares_embedding_by_default),
            "use_bias": attention_bias,
            "o_bias": attention_bias,
        }

    @property
    def share_embedding(self):
        return self.share_emebding

    @property
    def optional_layers(self):
        """An untied checkpoint's output matrix is expected even without an LM head (`with_lm=False`)."""
        return () if self.share_emebding else ("Decoder-Output-LM",)

    def embed_scale(self, x, inputs):
        """Token embeddings times sqrt(hidden_size) (Gemma's `input_scale`)."""
        if not self.input_scale:
            return x
        return self.apply(x, keras.layers.Rescaling, scale=math.sqrt(self.hidden_size), name="Embedding-Scale")

    def norm_arguments(self):
        return {"epsilon": self.rms_norm_eps}

    def attention_layer(self, index):
        return {
            **super().attention_layer(index),
            "use_bias": self.use_bias,
            "normalization": "softmax-fp32",
            "use_EinsumDense": self.use_EinsumDense,
            "rope_mode": self.rope_mode,
            "max_wavelength": self.max_wavelength,
            "scaling_factor": self.scaling_factor,
            "rope_scaling": self.rope_scaling,
            "GQA_mode": self.GQA_mode,
            "flatten_o_dense": self.flatten_o_dense,
        }

    def feed_forward_layer(self, index):
        return {
            "layer": GemmaFeedForward,
            "units": self.intermediate_size,
            "use_bias": self.use_dense_bias,
            "kernel_initializer": self.initializer,
        }

    def apply_final_layers(self, inputs):
        x = self.apply_norm(inputs, "Output-Norm")
        x = self.apply(x, keras.layers.Dropout, rate=self.dropout_rate, name="Output-Dropout")
        if not self.with_lm:
            return x
        if self.share_emebding:
            x = self.apply(x, Embedding, arguments={"mode": "dense"}, name="Embedding-Token")
        else:
            x = self.apply(
                x,
                keras.layers.Dense,
                units=self.vocab_size,
                use_bias=False,
                kernel_initializer=self.initializer,
                name="Decoder-Output-LM",
            )
        x = self.apply_logit_cap(x)
        return self.apply_lm_activation(x)

    def apply_logit_cap(self, logits):
        """Gemma2's final-logit soft cap; none here."""
        return logits

    # Checkpoints

    def variable_mapping(self, checkpoint):
        if checkpoint.format != "hf":
            raise ValueError(
                f"{type(self).__name__} reads Hugging Face directories (or .weights.h5 through keras_weights_path), "
                f"not {checkpoint.source}"
            )
        base = hf_base_prefix(checkpoint, ("model.",))
        mapping = {
            "Embedding-Token": {"embeddings": Weight(f"{base}embed_tokens.weight", self.load_embeddings)},
            "Output-Norm": self.hf_norm(f"{base}norm"),
            "Decoder-Output-LM": {"kernel": Weight("lm_head.weight", self.lm_head_kernel)},
        }
        for index in range(self.num_hidden_layers):
            scope = f"{base}layers.{index}"
            attention, feed_forward = block_layer_name(index, ATTENTION), block_layer_name(index, FEED_FORWARD)
            mapping[attention] = self.hf_attention(f"{scope}.self_attn")
            mapping.update(self.hf_norms(scope, attention, feed_forward))
            mapping[feed_forward] = self.hf_feed_forward(f"{scope}.mlp")
        return mapping

    def known_extra_keys(self, checkpoint):
        """A tied model's checkpoint may store the output matrix too, as a copy of the embeddings;
        one that differs is not a copy (an untied checkpoint) and is reported as unused."""
        if not self.share_emebding:
            return []
        return tied_output_keys(checkpoint, f"{hf_base_prefix(checkpoint, ('model.',))}embed_tokens.weight")

    def lm_head_kernel(self, weight):
        """`lm_head.weight` `(vocab, hidden)` as the Dense kernel, `keep_tokens` applied."""
        return np.ascontiguousarray(self.load_embeddings(weight).T)

    @staticmethod
    def hf_norm(scope):
        return {"scale": Weight(f"{scope}.weight")}

    def hf_norms(self, scope, attention, feed_forward):
        return {
            f"{attention}-Norm": self.hf_norm(f"{scope}.input_layernorm"),
            f"{feed_forward}-Norm": self.hf_norm(f"{scope}.post_attention_layernorm"),
        }

    def hf_attention(self, scope):
        """q/k/v/o projections, as `Dense` kernels or, with `use_EinsumDense`, per-head ones."""
        q, k, v, o = (f"{scope}.{name}_proj" for name in "qkvo")
        o_bias = self.use_bias if self.o_bias is None else self.o_bias
        if not self.use_EinsumDense:
            return HF_NAMES.attention(q, k, v, o, use_bias=self.use_bias, o_bias=o_bias)
        head_size, query_heads, kv_heads = self.attention_head_size, self.query_head, self.num_attention_heads
        weights = {
            "query/kernel": Weight(f"{q}.weight", per_head_kernel(query_heads, head_size)),
            "key/kernel": Weight(f"{k}.weight", per_head_kernel(kv_heads, head_size)),
            "value/kernel": Weight(f"{v}.weight", per_head_kernel(kv_heads, head_size)),
            "attention_output/kernel": Weight(f"{o}.weight", per_head_output(query_heads, head_size)),
        }
        if self.use_bias:
            weights["query/bias"] = Weight(f"{q}.bias", per_head_bias(query_heads, head_size))
            weights["key/bias"] = Weight(f"{k}.bias", per_head_bias(kv_heads, head_size))
            weights["value/bias"] = Weight(f"{v}.bias", per_head_bias(kv_heads, head_size))
        if o_bias:
            weights["attention_output/bias"] = Weight(f"{o}.bias")
        return weights

    def hf_feed_forward(self, scope):
        gate, up, down = (f"{scope}.{name}_proj" for name in ("gate", "up", "down"))
        return HF_NAMES.feed_forward([gate, up], down, use_bias=self.use_dense_bias)


class Llama(Gemma):
    """Llama (and Qwen, Yi): Gemma's network with Llama's RMS norm `x * scale`, a SwiGLU
    feed-forward (`hidden_act`, SiLU), unscaled inputs, plain Dense projections and an untied head.
    Qwen: `use_bias=True, o_bias=False`."""

    norm_layer = LlamaLayerNorm
    GQA_mode = "llama"
    shares_embedding_by_default = False

    def __init__(self, input_scale=False, use_EinsumDense=False, **kwargs):
        super().__init__(input_scale=input_scale, use_EinsumDense=use_EinsumDense, **kwargs)

    @classmethod
    def from_hf_config(cls, hf_config):
        """Gemma's translation, with Llama's feed-forward biases (`mlp_bias`); Qwen2 has q/k/v
        biases always and none on the output projection."""
        config = {**super().from_hf_config(hf_config), "use_dense_bias": hf_config.get("mlp_bias", False)}
        if hf_config.get("model_type") == "qwen2":
            config.update(use_bias=True, o_bias=False)
        return config

    def feed_forward_layer(self, index):
        return {
            "layer": LLamaFeedForward,
            "units": self.intermediate_size,
            "activation": self.hidden_act,
            "use_bias": self.use_dense_bias,
            "kernel_initializer": self.initializer,
        }

    def hf_feed_forward(self, scope):
        names = ("feedforward_gate_dense", "feedforward_intermediate_dense", "feedforward_output_dense")
        weights = {}
        for name, projection in zip(names, ("gate", "up", "down"), strict=True):
            for path, weight in HF_NAMES.dense(f"{scope}.{projection}_proj", self.use_dense_bias).items():
                weights[f"{name}/{path}"] = weight
        return weights


class Gemma2(Gemma):
    """Gemma2: Gemma with norms after attention and feed-forward too, soft-capped attention
    logits and final logits, sliding-window attention on every other layer (the even ones), and
    queries scaled by `query_pre_attn_scalar ** -0.5`.

    Args:
        logit_soft_cap: attention logits become `tanh(logits / cap) * cap` (None: not capped).
        final_logit_soft_cap: the same for the LM head's logits.
        use_sliding_window_attention, sliding_window_size: even layers attend to the last
            `sliding_window_size` positions only.
        use_post_ffw_norm, use_post_attention_norm: the extra norms.
        query_head_dim_normalize: scale queries by 1/sqrt(head_size) (else 1/sqrt(hidden_size /
            query heads)); `query_pre_attn_scalar` (Hugging Face's) overrides both.
    """

    def __init__(
        self,
        logit_soft_cap=None,
        final_logit_soft_cap=None,
        use_sliding_window_attention=False,
        sliding_window_size=4096,
        use_post_ffw_norm=False,
        use_post_attention_norm=False,
        query_head_dim_normalize=True,
        query_pre_attn_scalar=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.logit_soft_cap = logit_soft_cap
        self.final_logit_soft_cap = final_logit_soft_cap
        self.use_sliding_window_attention = use_sliding_window_attention
        self.sliding_window_size = sliding_window_size
        self.use_post_ffw_norm = use_post_ffw_norm
        self.use_post_attention_norm = use_post_attention_norm
        self.query_head_dim_normalize = query_head_dim_normalize
        if query_pre_attn_scalar is None:
            query_pre_attn_scalar = (
                self.attention_head_size if query_head_dim_normalize else self.hidden_size // self.query_head
            )
        self.query_pre_attn_scalar = query_pre_attn_scalar
        self.sliding_attention_bias = None

    norm_placement = "sandwich"

    @classmethod
    def from_hf_config(cls, hf_config):
        """Gemma's translation, then Gemma2's own settings; layer types other than
        sliding-on-even-layers are refused."""
        layers = hf_config["num_hidden_layers"]
        layer_types = hf_config.get("layer_types") or [
            "sliding_attention" if index % 2 == 0 else "full_attention" for index in range(layers)
        ]
        sliding = [kind == "sliding_attention" for kind in layer_types]
        window = hf_config.get("sliding_window")
        if any(sliding) and sliding != [index % 2 == 0 for index in range(layers)]:
            raise ValueError(f"Gemma2 layer_types {layer_types} are not supported: b4k3 slides on the even layers")
        return {
            **super().from_hf_config(hf_config),
            "logit_soft_cap": hf_config.get("attn_logit_softcapping"),
            "final_logit_soft_cap": hf_config.get("final_logit_softcapping"),
            "use_sliding_window_attention": any(sliding) and window is not None,
            "sliding_window_size": window or 4096,
            "use_post_ffw_norm": True,
            "use_post_attention_norm": True,
            "query_pre_attn_scalar": hf_config.get("query_pre_attn_scalar"),
        }

    def is_sliding(self, index):
        return self.use_sliding_window_attention and index % 2 == 0

    def compute_attention_bias(self, inputs=None):
        if not self.is_sliding(inputs):
            return super().compute_attention_bias(inputs)
        if self.sliding_attention_bias is None:
            self.sliding_attention_bias = self.apply(
                self.inputs[0], CausalMask, window=self.sliding_window_size, name="Attention-Mask-Sliding"
            )
        return self.sliding_attention_bias

    def cache_attention_mask(self, query_positions, key_positions, layer_index):
        mask = super().cache_attention_mask(query_positions, key_positions, layer_index)
        if self.is_sliding(layer_index):
            mask = ops.logical_and(mask, key_positions > query_positions - self.sliding_window_size)
        return mask

    def attention_layer(self, index):
        return {
            **super().attention_layer(index),
            "attention_scale": self.query_pre_attn_scalar**-0.5,
            "logit_soft_cap": self.logit_soft_cap,
        }

    def sublayer_norms(self, sublayer):
        """A norm on the input, and on the output where `use_post_attention_norm` /
        `use_post_ffw_norm` say."""
        use_output_norm = self.use_post_attention_norm if sublayer == ATTENTION else self.use_post_ffw_norm
        return ("pre", "output") if use_output_norm else ("pre",)

    def apply_logit_cap(self, logits):
        if self.final_logit_soft_cap is None:
            return logits
        return self.apply(logits, SoftCap, cap=self.final_logit_soft_cap, name="Output-Logit-Soft-Cap")

    def hf_norms(self, scope, attention, feed_forward):
        return {
            f"{attention}-Norm": self.hf_norm(f"{scope}.input_layernorm"),
            f"{attention}-Norm-post": self.hf_norm(f"{scope}.post_attention_layernorm"),
            f"{feed_forward}-Norm": self.hf_norm(f"{scope}.pre_feedforward_layernorm"),
            f"{feed_forward}-Norm-post": self.hf_norm(f"{scope}.post_feedforward_layernorm"),
        }
