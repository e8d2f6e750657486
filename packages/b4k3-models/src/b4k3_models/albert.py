"""ALBERT and ALBERT_Unshared (`bert4keras3.models.ALBERT`, `.ALBERT_Unshared`): BERT's network
with factorized embeddings (`embedding_size`, projected to `hidden_size` by `Embedding-Mapping`)
and one block whose weights every layer uses, and their checkpoint name maps (Google's ALBERT TF
names, `bert/encoder/transformer/group_0/inner_group_0/...`, and Hugging Face's `albert`).

ALBERT builds that one block once (`Transformer-MultiHeadSelfAttention`, `Transformer-FeedForward`
and their norms, bert4keras' names) and applies it `num_hidden_layers` times. ALBERT_Unshared
builds BERT's per-layer blocks and loads the shared weights into each, so they can be fine-tuned
apart (and used wherever a BERT is).
"""

from b4k3_models.bert import BERT
from b4k3_models.checkpoint_names import GOOGLE_NAMES, HF_NAMES, hf_base_prefix
from b4k3_models.hf_configs import hf_activation, reject_unsupported

# The scope of the shared block in each naming (Hugging Face's below the base model's prefix).
GOOGLE_GROUP = "bert/encoder/transformer/group_0/inner_group_0"
HF_GROUP = "encoder.albert_layer_groups.0.albert_layers.0"


class ALBERT_Unshared(BERT):
    """ALBERT's weights in BERT's per-layer blocks: every block loads the checkpoint's one shared
    block. The arguments are `BERT`'s; `embedding_size` is ALBERT's factorized embedding size."""

    hf_base_prefixes = ("albert.",)

    def variable_mapping(self, checkpoint):
        """BERT's map with ALBERT's block (the same checkpoint scope for every layer), and on Hugging
        Face checkpoints ALBERT's names of the embedding projection, pooler, SOP and MLM heads."""
        mapping = super().variable_mapping(checkpoint)
        if checkpoint.format == "hf":
            names = HF_NAMES
            base = hf_base_prefix(checkpoint, self.hf_base_prefixes)
            group = f"{base}{HF_GROUP}"
            attention = ("attention/query", "attention/key", "attention/value", "attention/dense")
            norms = ("attention/LayerNorm", "full_layer_layer_norm")
            feed_forward = ("ffn", "ffn_output")
            mapping.update(
                {
                    "Embedding-Mapping": names.dense(f"{base}encoder.embedding_hidden_mapping_in"),
                    "Pooler-Dense": names.dense(f"{base}pooler"),
                    "NSP-Proba": names.dense("sop_classifier.classifier"),
                    **self._mlm_mapping(names, "predictions.dense", "predictions.LayerNorm", "predictions.bias"),
                }
            )
        else:
            names, group = GOOGLE_NAMES, GOOGLE_GROUP
            attention = [f"attention_1/{path}" for path in ("self/query", "self/key", "self/value", "output/dense")]
            norms = ("LayerNorm", "LayerNorm_1")
            feed_forward = ("ffn_1/intermediate/dense", "ffn_1/intermediate/output/dense")
        scope = names.scope(group)
        for index in range(self.num_hidden_layers):
            mapping.update(
                self._block_mapping(
                    index,
                    names,
                    attention=[scope(path) for path in attention],
                    attention_norm=scope(norms[0]),
                    feed_forward=[scope(path) for path in feed_forward],
                    feed_forward_norm=scope(norms[1]),
                )
            )
        return mapping

    def known_extra_keys(self, checkpoint):
        """The MLM output matrix and bias that older Hugging Face checkpoints store, tied to the
        token embeddings and the MLM bias."""
        if checkpoint.format != "hf":
            return []
        return [key for key in ("predictions.decoder.weight", "predictions.decoder.bias") if key in checkpoint]

    @classmethod
    def from_hf_config(cls, hf_config):
        """`ALBERT` arguments from a Hugging Face `AlbertConfig` dict: BERT's, the factorized
        `embedding_size` and the tanh GELU (`gelu_new`) by default. Several layer groups are refused."""
        reject_unsupported(hf_config, num_hidden_groups=(1, None), inner_group_num=(1, None))
        return {
            **super().from_hf_config(hf_config),
            "embedding_size": hf_config.get("embedding_size", 128),
            "hidden_act": hf_activation(hf_config.get("hidden_act", "gelu_new")),
        }


class ALBERT(ALBERT_Unshared):
    """ALBERT: one block, built once and applied `num_hidden_layers` times (the weights are
    shared, as in the checkpoint). The arguments are `BERT`'s."""

    def sublayer_name(self, index, sublayer):
        """`Transformer-MultiHeadSelfAttention` / `Transformer-FeedForward` whatever the index."""
        return f"Transformer-{sublayer}"
