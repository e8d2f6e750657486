"""GPT, GPT2 and GPT2_ML (`bert4keras3.models.GPT`, `.GPT2`, `.GPT2_ML`): causal language models
on BERT's building blocks with learned absolute positions and an LM head tied to the token
embeddings, and their checkpoint name maps (Hugging Face `openai-gpt` / `gpt2`, and the Google-TF
names of CDial-GPT, CPM-LM and GPT2-ML that bert4keras reads).

They differ only in where the norms sit:
- GPT (OpenAI GPT-1, CDial-GPT): BERT's post-norm blocks, embeddings without a norm;
- GPT2: pre-norm blocks and a final `Output-Norm`;
- GPT2_ML: no norm around the attention; the feed-forward normalized before (`-Norm-0`) and after
  its residual sum (`-Norm-1`); a norm on the embeddings.
They decode through `CachedDecoding`, the positions taken from the cache index.
"""

import keras

from b4k3_layers import Embedding
from b4k3_models.bert import BERT
from b4k3_models.checkpoint_names import (
    GOOGLE_NAMES,
    HF_CONV1D_NAMES,
    HF_NAMES,
    hf_base_prefix,
    tied_output_keys,
)
from b4k3_models.hf_configs import hf_activation, reject_unsupported
from b4k3_models.language_models import LM_Mask
from b4k3_models.transformer import ATTENTION, FEED_FORWARD, block_layer_name
from b4k3_models.weight_maps import Weight


class GPT(LM_Mask, BERT):
    """OpenAI's GPT and CDial-GPT: token (+ segment) + learned position embeddings without a norm,
    BERT's post-norm blocks under a causal mask, the LM head tied to the token embeddings.

    Args:
        final_activation: the LM head's activation: 'softmax' (probabilities, bert4keras'
            default) or 'linear' (logits).
        **kwargs: the arguments of `BERT` but its heads (`with_pool`, `with_nsp`, `with_mlm`):
            the LM head is the only one.
    """

    # UniLM's segment attention, which GPT is not; cached keys, which its causal mask does not cover
    honoured_options = BERT.honoured_options - {"segment_attention", "attention_caches"}
    embedding_steps = ("token", "segment", "position", "dropout", "mapping")
    optional_layers = ()
    # Hugging Face's names of the token and position tables.
    hf_embedding_names = ("tokens_embed", "positions_embed")

    def __init__(self, final_activation="softmax", **kwargs):
        heads = sorted(name for name in ("with_pool", "with_nsp", "with_mlm") if kwargs.get(name))
        if heads:
            raise TypeError(
                f"{type(self).__name__} has no {heads}: its only head is the tied LM head, whose activation "
                "final_activation sets"
            )
        super().__init__(**kwargs)
        self.final_activation = final_activation

    @property
    def lm_head_activation(self):
        return self.final_activation

    def apply_final_layers(self, inputs):
        x = self.apply(inputs, Embedding, arguments={"mode": "dense"}, name="Embedding-Token")
        return self.apply(x, keras.layers.Activation, activation=self.final_activation, name="LM-Activation")

    @classmethod
    def from_hf_config(cls, hf_config):
        """`GPT` arguments from a Hugging Face `OpenAIGPTConfig` dict (its `afn='gelu'` is the
        tanh approximation, `gelu_new`)."""
        activation = hf_config.get("afn", "gelu")
        return {
            **cls.hf_sizes(hf_config),
            "hidden_act": hf_activation("gelu_new" if activation == "gelu" else activation),
            "segment_vocab_size": 0,
        }

    @staticmethod
    def hf_sizes(hf_config):
        """The arguments Hugging Face's GPT configs spell alike. No token id is padding: GPT-2's
        id 0 is a real token, and the causal mask hides what follows a prompt."""
        hidden_size = hf_config["n_embd"]
        return {
            "vocab_size": hf_config["vocab_size"],
            "hidden_size": hidden_size,
            "num_hidden_layers": hf_config["n_layer"],
            "num_attention_heads": hf_config["n_head"],
            "intermediate_size": hf_config.get("n_inner") or 4 * hidden_size,
            "max_position": hf_config["n_positions"],
            "dropout_rate": hf_config.get("resid_pdrop"),
            "attention_dropout_rate": hf_config.get("attn_pdrop"),
            "layer_norm_eps": hf_config.get("layer_norm_epsilon", 1e-5),
            "pad_token_id": None,
        }

    def variable_mapping(self, checkpoint):
        """Hugging Face's names for safetensors directories, Google's (`gpt/...`) otherwise."""
        if checkpoint.format == "hf":
            return self.hf_mapping(checkpoint)
        return self._encoder_mapping(GOOGLE_NAMES, "gpt/embeddings", "gpt/transformer/layer_{}", "gpt/pooler/dense")

    def hf_mapping(self, checkpoint):
        base = hf_base_prefix(checkpoint, ("transformer.",))
        tokens, positions = self.hf_embedding_names
        mapping = {
            "Embedding-Token": {"embeddings": Weight(f"{base}{tokens}.weight", self.load_embeddings)},
            "Embedding-Position": {"embeddings": Weight(f"{base}{positions}.weight")},
        }
        for index in range(self.num_hidden_layers):
            scope = f"{base}h.{index}"
            attention, feed_forward = block_layer_name(index, ATTENTION), block_layer_name(index, FEED_FORWARD)
            mapping[attention] = HF_CONV1D_NAMES.fused_attention(f"{scope}.attn.c_attn", f"{scope}.attn.c_proj")
            mapping[f"{attention}-Norm"] = HF_NAMES.norm(f"{scope}.ln_1")
            mapping[feed_forward] = HF_CONV1D_NAMES.feed_forward([f"{scope}.mlp.c_fc"], f"{scope}.mlp.c_proj")
            mapping[f"{feed_forward}-Norm"] = HF_NAMES.norm(f"{scope}.ln_2")
        return mapping

    def known_extra_keys(self, checkpoint):
        """The LM head's matrix, stored as a copy of the tied token embeddings."""
        if checkpoint.format != "hf":
            return []
        base = hf_base_prefix(checkpoint, ("transformer.",))
        return tied_output_keys(checkpoint, f"{base}{self.hf_embedding_names[0]}.weight")


class GPT2(GPT):
    """GPT-2: token + learned position embeddings, pre-norm blocks, a final `Output-Norm`, the LM
    head tied to the token embeddings. Layer norms' epsilon 1e-5; no segment input by default."""

    norm_placement = "pre"
    hf_embedding_names = ("wte", "wpe")

    def __init__(self, segment_vocab_size=0, layer_norm_eps=1e-5, **kwargs):
        super().__init__(segment_vocab_size=segment_vocab_size, layer_norm_eps=layer_norm_eps, **kwargs)

    def apply_final_layers(self, inputs):
        x = self.apply_norm(inputs, "Output-Norm")
        x = self.apply(x, keras.layers.Dropout, rate=self.dropout_rate, name="Output-Dropout")
        return super().apply_final_layers(x)

    @classmethod
    def from_hf_config(cls, hf_config):
        """`GPT2` arguments from a Hugging Face `GPT2Config` dict; the attention variants b4k3 does
        not implement are refused."""
        reject_unsupported(
            hf_config,
            add_cross_attention=(False, None),
            scale_attn_weights=(True, None),
            scale_attn_by_inverse_layer_idx=(False, None),
        )
        return {
            **cls.hf_sizes(hf_config),
            "hidden_act": hf_activation(hf_config.get("activation_function", "gelu_new")),
        }

    def variable_mapping(self, checkpoint):
        """GPT's maps with pre-norm names: Google's (CPM-LM) `attention/input/LayerNorm`,
        `input/LayerNorm` and `gpt/output/LayerNorm`; Hugging Face's `ln_f`."""
        mapping = super().variable_mapping(checkpoint)
        if checkpoint.format == "hf":
            base = hf_base_prefix(checkpoint, ("transformer.",))
            mapping["Output-Norm"] = HF_NAMES.norm(f"{base}ln_f")
            return mapping
        for index in range(self.num_hidden_layers):
            scope = GOOGLE_NAMES.scope(f"gpt/transformer/layer_{index}")
            mapping[f"{block_layer_name(index, ATTENTION)}-Norm"] = GOOGLE_NAMES.norm(
                scope("attention/input/LayerNorm")
            )
            mapping[f"{block_layer_name(index, FEED_FORWARD)}-Norm"] = GOOGLE_NAMES.norm(scope("input/LayerNorm"))
        mapping["Output-Norm"] = GOOGLE_NAMES.norm("gpt/output/LayerNorm")
        return mapping


class GPT2_ML(GPT):
    """GPT2-ML (imcaspar's 1.5B Chinese GPT-2; GPT-like despite its name): token + position
    embeddings with a norm; blocks `x + attention(x)`, then `norm_1(x + ffn(norm_0(x)))`; the LM
    head tied to the token embeddings. Layer norms' epsilon 1e-5; no segment input."""

    embedding_steps = ("token", "position", "norm", "dropout", "mapping")

    def __init__(self, segment_vocab_size=0, layer_norm_eps=1e-5, **kwargs):
        super().__init__(segment_vocab_size=segment_vocab_size, layer_norm_eps=layer_norm_eps, **kwargs)

    def sublayer_norms(self, sublayer):
        return ("pre", "post") if sublayer == FEED_FORWARD else ()

    def norm_name(self, sublayer_name, position):
        """`...-FeedForward-Norm-0` before the feed-forward, `-Norm-1` after its residual sum."""
        return f"{sublayer_name}-Norm-{0 if position == 'pre' else 1}"

    def variable_mapping(self, checkpoint):
        """The names of GPT2-ML's released TF checkpoint (`newslm/...`)."""
        if checkpoint.format == "hf":
            raise ValueError(
                f"GPT2_ML reads GPT2-ML's TF checkpoint (newslm/... names) or a dict of them, not {checkpoint.source}"
            )
        names = GOOGLE_NAMES
        mapping = {
            "Embedding-Token": {"embeddings": Weight("newslm/embeddings/word_embed", self.load_embeddings)},
            "Embedding-Position": {"embeddings": Weight("newslm/embeddings/pos_embed")},
            "Embedding-Norm": names.norm("newslm/embeddings/LayerNorm_embed_norm"),
        }
        for index in range(self.num_hidden_layers):
            scope = names.scope(f"newslm/layer{index:02d}")
            attention, feed_forward = block_layer_name(index, ATTENTION), block_layer_name(index, FEED_FORWARD)
            mapping[attention] = names.attention(
                scope("query_layer"), scope("key_layer"), scope("value_layer"), scope("context_projection_layer")
            )
            mapping[f"{feed_forward}-Norm-0"] = names.norm(scope("LayerNorm_mlp_ln0"))
            mapping[feed_forward] = names.feed_forward([scope("intermediate")], scope("output"))
            mapping[f"{feed_forward}-Norm-1"] = names.norm(scope("LayerNorm_mlp_ln1"))
        return mapping

    def known_extra_keys(self, checkpoint):
        return []
