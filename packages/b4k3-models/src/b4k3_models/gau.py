"""GAU-alpha (`bert4keras3.models.GAU_alpha`): RoFormerV2's embeddings and norms around a stack of
Gated Attention Units in place of attention + feed-forward blocks, and its checkpoint name map
(ZhuiyiTechnology's Google-TF release under bert4keras' names, JunnYu's `gau_alpha.` port)."""

from b4k3_layers import GatedAttentionUnit
from b4k3_models.checkpoint_names import GOOGLE_NAMES, HF_NAMES, hf_base_prefix
from b4k3_models.hf_configs import hf_activation, reject_unsupported
from b4k3_models.roformer import RoFormerV2
from b4k3_models.transformer import block_layer_name
from b4k3_models.weight_maps import Weight, within

# bert4keras' name of the one sublayer of a GAU-alpha block.
GATED_ATTENTION = "GatedAttentionUnit"


class GAU_alpha(RoFormerV2):
    """GAU-alpha: each block is one `GatedAttentionUnit` (`units=intermediate_size`,
    `key_size=attention_key_size`, no biases, rotary positions, `softmax_plus` attention), its
    residual sum followed by RoFormerV2's parameter-free RMS norm.

    `softmax_plus` scales the logits by `log(max(n, 16)) / log(512)`, n the number of real keys,
    with bert4keras' floor of 16 (JunnYu's PyTorch port has none: the two agree from 16 tokens).
    Takes RoFormerV2's arguments; `num_attention_heads` only sets the default key size.
    """

    honoured_options = RoFormerV2.honoured_options - {"residual_attention_scores", "o_bias", "query_head"}
    initializer_order = 3
    hf_base_prefixes = ("gau_alpha.",)

    def apply_block(self, x, index, attention_arguments):
        """One Gated Attention Unit as a post-norm residual sublayer; no feed-forward."""
        x, _ = self.apply_sublayer(x, index, GATED_ATTENTION, self.attention_layer(index), attention_arguments)
        return x, None

    def attention_layer(self, index):
        return {
            "layer": GatedAttentionUnit,
            "units": self.intermediate_size,
            "key_size": self.attention_key_size,
            "activation": self.hidden_act,
            "use_bias": False,
            "normalization": "softmax_plus",
            "attention_dropout": self.attention_dropout_rate,
            "kernel_initializer": self.initializer,
        }

    @classmethod
    def from_hf_config(cls, hf_config):
        """GAU-alpha arguments from JunnYu's `GAUAlphaConfig` dict (which has no attention heads)."""
        reject_unsupported(
            hf_config, use_bias=(False, None), normalization=("softmax_plus", None), attention_scale=(True, None)
        )
        return {
            "vocab_size": hf_config["vocab_size"],
            "hidden_size": hf_config["hidden_size"],
            "num_hidden_layers": hf_config["num_hidden_layers"],
            "num_attention_heads": 1,
            "attention_key_size": hf_config.get("attention_key_size", 128),
            "intermediate_size": hf_config["intermediate_size"],
            "hidden_act": hf_activation(hf_config.get("hidden_act", "swish")),
            "segment_vocab_size": hf_config.get("type_vocab_size", 2),
            "dropout_rate": hf_config.get("hidden_dropout_prob"),
            "attention_dropout_rate": hf_config.get("attention_probs_dropout_prob"),
            "layer_norm_eps": hf_config.get("layer_norm_eps", 1e-12),
            "pad_token_id": hf_config.get("pad_token_id", 0),
        }

    def check_can_decode(self):
        raise TypeError(
            f"{type(self).__name__} cannot decode with a KV cache: softmax_plus scales every token's attention by "
            "the number of tokens in the whole sequence, which is unknown while generating"
        )

    def variable_mapping(self, checkpoint):
        """bert4keras' names (`bert/embeddings/...`, `GAU_alpha/encoder/layer_%d/gau/...`) in
        Google-TF checkpoints, JunnYu's (`gau_alpha.encoder.layer.%d.gau....`) in Hugging Face's."""
        if checkpoint.format == "hf":
            names, base = HF_NAMES, hf_base_prefix(checkpoint, self.hf_base_prefixes)
            embeddings, layer = f"{base}embeddings", f"{base}encoder.layer.{{}}"
        else:
            names, embeddings, layer = GOOGLE_NAMES, "bert/embeddings", "GAU_alpha/encoder/layer_{}"
        mapping = {
            "Embedding-Token": {
                "embeddings": Weight(names.table(f"{embeddings}{names.sep}word_embeddings"), self.load_embeddings)
            },
            "Embedding-Segment": {"embeddings": Weight(names.table(f"{embeddings}{names.sep}token_type_embeddings"))},
        }
        for index in range(self.num_hidden_layers):
            scope = names.scope(layer.format(index))
            mapping[block_layer_name(index, GATED_ATTENTION)] = {
                **within("i_dense", names.dense(scope("gau/i_dense"), use_bias=False)),
                **within("q_scaleoffset", names.norm(scope("gau/q_scaleoffset"), offset=False)),
                **within("k_scaleoffset", names.norm(scope("gau/k_scaleoffset"), offset=False)),
                **within("o_dense", names.dense(scope("gau/o_dense"), use_bias=False)),
            }
        return mapping
