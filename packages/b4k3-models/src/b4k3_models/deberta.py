"""DeBERTa-v2 / v3 and mDeBERTa (Microsoft, https://arxiv.org/abs/2006.03654 and
https://arxiv.org/abs/2111.09543): BERT's post-norm encoder whose attention adds disentangled
relative positions (`p_bias='disentangled'` of the one attention layer), with the relative
embeddings of `DebertaRelativeEmbedding`, optional absolute positions, DeBERTa-v2's convolution
after the first block, and BERT's MLM head.

Checkpoints: Hugging Face directories of model type `deberta-v2` (DeBERTa-v2, v3, mDeBERTa; both
MLM head layouts of transformers 5), and the `.weights.h5` files bert4keras3 wrote for its
DeBERTa-v3 (keras-nlp's layers: `DisentangledSelfAttention`, `DebertaRelativeEmbedding`,
`MaskedLMHead`), read by their paths.
"""

import keras
import numpy as np

from b4k3_layers import DebertaRelativeEmbedding
from b4k3_models.bert import BERT
from b4k3_models.checkpoint_names import HF_NAMES, hf_base_prefix
from b4k3_models.hf_configs import hf_activation
from b4k3_models.keras_weights import KerasWeightsFile, stored_entries
from b4k3_models.masks import MaskedAdd, ZeroPadded
from b4k3_models.transformer import ATTENTION, FEED_FORWARD
from b4k3_models.weight_maps import Weight, within
from b4k3_ops.checks import check_positive_int

NORM_REL_EBD = ("none", "layer_norm")
# The attention group of a bert4keras3 DeBERTa `.weights.h5` file (keras-nlp's layer).
BERT4KERAS3_ATTENTION = "layers/disentangled_self_attention"


def conv_kernel(weight):
    """A PyTorch `Conv1d` weight `(out, in / groups, width)` as a Keras `Conv1D` kernel `(width, in / groups, out)`."""
    return np.ascontiguousarray(np.transpose(weight, (2, 1, 0)))


def flat_heads(array):
    """keras-nlp's per-head `EinsumDense` kernel `(hidden, heads, head_size)` (or bias `(heads,
    head_size)`) as a `Dense` kernel `(hidden, hidden)` (or bias)."""
    return array.reshape(*array.shape[:-2], -1)


def keras_path(layer, index=0):
    """The path of the `index`-th layer of a class in a `.weights.h5` file: `layers/dense`, `layers/dense_1`, ..."""
    return f"layers/{layer}_{index}" if index else f"layers/{layer}"


@keras.saving.register_keras_serializable(package="b4k3")
class SameLengthConv1D(keras.layers.Conv1D):
    """`Conv1D` with 'same' padding that passes the padding mask on: every position of its input
    has one in its output (Keras' own drops the mask, warning that it does)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, padding="same", **kwargs)
        self.supports_masking = True

    def get_config(self):
        config = super().get_config()
        config.pop("padding")
        return config


class DeBERTa(BERT):
    """DeBERTa-v2/v3: BERT's blocks with disentangled attention, BERT's MLM head.

    Args:
        relative_attention: add the disentangled relative terms (every released checkpoint does).
        pos_att_type: the terms, among 'c2p' (content to position) and 'p2c' (position to
            content); a list or Hugging Face's 'p2c|c2p' string. The logits are scaled by
            `1 / sqrt(head_size * (1 + len(pos_att_type)))`.
        position_buckets: log buckets per direction (v3: 256); 0 or less for plain distances.
        max_relative_positions: the longest distance told apart; less than 1 means `max_position`.
        share_att_key: the relative embeddings go through the query and key projections (v3);
            False gives them projections of their own.
        norm_rel_ebd: 'layer_norm' (v3) or 'none': whether the relative embeddings are normalized.
        position_biased_input: add learned absolute positions to the embeddings (v2 xlarge: no).
        conv_kernel_size: DeBERTa-v2's convolution over the embeddings after the first block, of
            this odd width; 0 for none. conv_groups, conv_act: its groups and activation.
        bucket_size: bert4keras3's name of `position_buckets`.
        **kwargs: the arguments of `BERT` (`segment_vocab_size` defaults to 0, DeBERTa-v3's;
            `layer_norm_eps` to 1e-7), but `with_nsp`, `attention_key_size` and `query_head`.

    Embeddings are summed, projected (without bias) when `embedding_size` differs, normalized and
    zeroed at padded positions, as Hugging Face's. Hugging Face's `ContextPooler` (`pooler.dense`
    of its classifiers) is `with_pool='gelu'`. DeBERTa is an encoder: it does not decode. The
    relative embeddings take one dropout for all blocks (Hugging Face: one per block).
    """

    honoured_options = BERT.honoured_options - {"attention_key_size", "query_head", "attention_caches"}
    hf_base_prefixes = ("deberta.",)
    embedding_mapping_bias = False
    argument_aliases = (("position_buckets", "bucket_size"),)

    def __init__(
        self,
        max_position=512,
        segment_vocab_size=0,
        layer_norm_eps=1e-7,
        relative_attention=True,
        pos_att_type=("c2p", "p2c"),
        position_buckets=256,
        max_relative_positions=-1,
        share_att_key=True,
        norm_rel_ebd="layer_norm",
        position_biased_input=False,
        conv_kernel_size=0,
        conv_groups=1,
        conv_act="tanh",
        bucket_size=None,
        **kwargs,
    ):
        if kwargs.get("with_nsp"):
            raise TypeError("DeBERTa has no next-sentence head, so no ['with_nsp']")
        if isinstance(pos_att_type, str):
            pos_att_type = [term.strip() for term in pos_att_type.lower().split("|")]
        pos_att_type = tuple(pos_att_type or ())
        unknown = sorted(set(pos_att_type) - {"c2p", "p2c"})
        if unknown:
            raise ValueError(f"DeBERTa: pos_att_type entries must be 'c2p' or 'p2c', got {unknown}")
        norms = {part.strip() for part in str(norm_rel_ebd).lower().split("|")}
        if not norms <= set(NORM_REL_EBD):
            raise ValueError(f"DeBERTa: norm_rel_ebd must be one of {NORM_REL_EBD}, got {norm_rel_ebd!r}")
        if conv_kernel_size and (conv_kernel_size < 0 or conv_kernel_size % 2 == 0):
            raise ValueError(f"DeBERTa: conv_kernel_size must be 0 or odd (same-length output), got {conv_kernel_size}")
        if not position_biased_input:
            absolute = sorted(name for name in ("hierarchical_position", "custom_position_ids") if kwargs.get(name))
            if absolute:
                raise TypeError(f"DeBERTa with position_biased_input=False has no absolute positions, so no {absolute}")
        super().__init__(max_position, segment_vocab_size, layer_norm_eps=layer_norm_eps, **kwargs)
        self.relative_attention = relative_attention
        self.pos_att_type = pos_att_type
        self.position_buckets = position_buckets if bucket_size is None else bucket_size
        self.max_relative_positions = max_relative_positions if max_relative_positions >= 1 else max_position
        check_positive_int("DeBERTa", max_relative_positions=self.max_relative_positions)
        self.share_att_key = share_att_key
        self.norm_rel_ebd = "layer_norm" if "layer_norm" in norms else "none"
        self.position_biased_input = position_biased_input
        self.conv_kernel_size = conv_kernel_size
        self.conv_groups = conv_groups
        self.conv_act = conv_act
        self.position_bias_kind = "disentangled" if relative_attention else None

    @property
    def embedding_steps(self):
        position = ("position",) if self.position_biased_input else ()
        return ("token", *position, "segment", "mapping", "norm", "mask", "dropout")

    def embed_mask(self, x, inputs):
        """The embeddings zeroed at padded positions (what the convolution reads around a token)."""
        mask = self.compute_padding_mask()
        return x if mask is None else self.apply([x, mask], ZeroPadded, name="Embedding-Zero-Padded")

    def compute_position_bias(self, inputs=None):
        """`[relative embeddings, row of each pair]`, computed once for every block."""
        if self.position_bias is None:
            table, rows = self.apply(
                self.inputs[0],
                DebertaRelativeEmbedding,
                output_dim=self.hidden_size,
                max_relative_positions=self.max_relative_positions,
                position_buckets=self.position_buckets,
                layer_norm=self.norm_rel_ebd == "layer_norm",
                epsilon=self.layer_norm_eps,
                embeddings_initializer=self.initializer,
                name="Embedding-Deberta-Position",
            )
            table = self.apply(table, keras.layers.Dropout, rate=self.dropout_rate, name="Embedding-Deberta-Dropout")
            self.position_bias = [table, rows]
        return self.position_bias

    def attention_layer(self, index):
        layer = super().attention_layer(index)
        if self.pos_att_type:
            # Hugging Face scales the logits by the number of terms summed, relative or not.
            layer["attention_scale"] = (self.attention_head_size * (1 + len(self.pos_att_type))) ** -0.5
        if self.relative_attention:
            layer.update(pos_att_type=self.pos_att_type, share_att_key=self.share_att_key)
        return layer

    def apply_main_layers(self, inputs, index):
        """Block `index`; after block 0, DeBERTa-v2's convolution over the embeddings `inputs`."""
        x = super().apply_main_layers(inputs, index)
        if index == 0 and self.conv_kernel_size:
            x = self.apply_convolution(inputs, x)
        return x

    def apply_convolution(self, embeddings, x):
        """`norm(x + act(conv(embeddings)))`, the convolution seeing zeros past the padding."""
        y = self.apply(
            embeddings,
            SameLengthConv1D,
            filters=self.hidden_size,
            kernel_size=self.conv_kernel_size,
            groups=self.conv_groups,
            kernel_initializer=self.initializer,
            name="Encoder-Conv",
        )
        y = self.apply(y, keras.layers.Dropout, rate=self.dropout_rate, name="Encoder-Conv-Dropout")
        y = self.apply(y, keras.layers.Activation, activation=hf_activation(self.conv_act), name="Encoder-Conv-Act")
        x = self.apply([x, y], MaskedAdd, name="Encoder-Conv-Add")
        return self.apply_norm(x, "Encoder-Conv-Norm")

    def check_can_decode(self):
        raise TypeError("DeBERTa is an encoder (its relative positions see both ways): it does not decode")

    @classmethod
    def from_hf_config(cls, hf_config):
        """`DeBERTa` arguments from a Hugging Face `DebertaV2Config` dict."""
        config = super().from_hf_config(hf_config)
        defaults = {
            "segment_vocab_size": ("type_vocab_size", 0),
            "layer_norm_eps": ("layer_norm_eps", 1e-7),
            "embedding_size": ("embedding_size", None),
            "relative_attention": ("relative_attention", False),
            "pos_att_type": ("pos_att_type", None),
            "position_buckets": ("position_buckets", -1),
            "max_relative_positions": ("max_relative_positions", -1),
            "share_att_key": ("share_att_key", False),
            "norm_rel_ebd": ("norm_rel_ebd", "none"),
            "position_biased_input": ("position_biased_input", True),
            "conv_kernel_size": ("conv_kernel_size", 0),
            "conv_groups": ("conv_groups", 1),
            "conv_act": ("conv_act", "tanh"),
        }
        config.update({name: hf_config.get(key, default) for name, (key, default) in defaults.items()})
        return config

    # Checkpoints

    def load_keras_weights(self, path):
        """A `.weights.h5` of this model, or one bert4keras3 wrote for its DeBERTa (read by its paths)."""
        if not any(entry.startswith(f"{BERT4KERAS3_ATTENTION}/") for entry in stored_entries(path)):
            return super().load_keras_weights(path)
        return self.load_weights_from_checkpoint(KerasWeightsFile(path))

    def variable_mapping(self, checkpoint):
        """Hugging Face's `deberta-v2` names, or bert4keras3's `.weights.h5` paths."""
        if checkpoint.format == "keras_weights":
            return self._bert4keras3_mapping()
        if checkpoint.format != "hf":
            raise ValueError(f"DeBERTa reads Hugging Face directories and .weights.h5 files, not {checkpoint.source}")
        names = HF_NAMES
        base = hf_base_prefix(checkpoint, self.hf_base_prefixes)
        mapping = self._embedding_mapping(names, f"{base}embeddings", "pooler.dense")
        mapping["Embedding-Mapping"] = names.dense(f"{base}embeddings.embed_proj", use_bias=False)
        mapping["Embedding-Deberta-Position"] = {"embeddings": Weight(f"{base}encoder.rel_embeddings.weight")}
        if self.norm_rel_ebd == "layer_norm":
            mapping["Embedding-Deberta-Position"].update(within("norm", names.norm(f"{base}encoder.LayerNorm")))
        mapping["Encoder-Conv"] = {
            "kernel": Weight(f"{base}encoder.conv.conv.weight", conv_kernel),
            "bias": Weight(f"{base}encoder.conv.conv.bias"),
        }
        mapping["Encoder-Conv-Norm"] = names.norm(f"{base}encoder.conv.LayerNorm")
        for index in range(self.num_hidden_layers):
            scope = names.scope(f"{base}encoder.layer.{index}")
            projections = ("self/query_proj", "self/key_proj", "self/value_proj", "output/dense")
            mapping.update(
                self._block_mapping(
                    index,
                    names,
                    attention=[scope(f"attention/{path}") for path in projections],
                    attention_norm=scope("attention/output/LayerNorm"),
                    feed_forward=[scope("intermediate/dense"), scope("output/dense")],
                    feed_forward_norm=scope("output/LayerNorm"),
                )
            )
            if self.relative_attention and not self.share_att_key:
                attention = mapping[self.sublayer_name(index, ATTENTION)]
                for term, sublayer, source in (
                    ("c2p", "pos_k_dense", "pos_key_proj"),
                    ("p2c", "pos_q_dense", "pos_query_proj"),
                ):
                    if term in self.pos_att_type:
                        attention.update(within(sublayer, names.dense(scope(f"attention/self/{source}"))))
        if any(key.startswith("lm_predictions.") for key in checkpoint):  # transformers 5, legacy=False
            head = "lm_predictions.lm_head"
            mapping.update(self._mlm_mapping(names, f"{head}.dense", f"{head}.LayerNorm", f"{head}.bias"))
        else:  # the legacy head (the default)
            head = "cls.predictions"
            mapping.update(
                self._mlm_mapping(names, f"{head}.transform.dense", f"{head}.transform.LayerNorm", f"{head}.bias")
            )
        return mapping

    def known_extra_keys(self, checkpoint):
        """The legacy head's output matrix and bias, tied to the token embeddings and MLM bias."""
        return ["cls.predictions.decoder.weight", "cls.predictions.decoder.bias"] if checkpoint.format == "hf" else []

    def _bert4keras3_mapping(self):
        """bert4keras3's DeBERTa (keras-nlp's layers) by `.weights.h5` paths: Keras numbers the
        layers of a class in the model's order (norms: embeddings', then two per block)."""
        mapping = {
            "Embedding-Token": {"embeddings": Weight(f"{keras_path('embedding')}/vars/0", self.load_embeddings)},
            "Embedding-Segment": {"embeddings": Weight(f"{keras_path('embedding', 1)}/vars/0")},
            "Embedding-Norm": self._keras_norm(keras_path("layer_normalization")),
            "Embedding-Deberta-Position": {
                "embeddings": Weight(f"{keras_path('deberta_relative_embedding')}/vars/0"),
                **within("norm", self._keras_norm(f"{keras_path('deberta_relative_embedding')}/layer_norm")),
            },
        }
        for index in range(self.num_hidden_layers):
            attention = keras_path("disentangled_self_attention", index)
            weights = {}
            for sublayer, source in (("q", "_query"), ("k", "_key"), ("v", "_value"), ("o", "_output")):
                transform = None if sublayer == "o" else flat_heads
                weights.update(within(f"{sublayer}_dense", self._keras_dense(f"{attention}/{source}_dense", transform)))
            feed_forward = keras_path("feed_forward", index)
            attention_name = self.sublayer_name(index, ATTENTION)
            feed_forward_name = self.sublayer_name(index, FEED_FORWARD)
            mapping.update(
                {
                    attention_name: weights,
                    f"{attention_name}-Norm": self._keras_norm(keras_path("layer_normalization", 2 * index + 1)),
                    feed_forward_name: {
                        **within("i0_dense", self._keras_dense(f"{feed_forward}/i0_dense")),
                        **within("o_dense", self._keras_dense(f"{feed_forward}/o_dense")),
                    },
                    f"{feed_forward_name}-Norm": self._keras_norm(keras_path("layer_normalization", 2 * index + 2)),
                }
            )
        head = keras_path("masked_lm_head")
        mapping.update(
            {
                "MLM-Dense": self._keras_dense(f"{head}/_intermediate_dense"),
                "MLM-Norm": self._keras_norm(f"{head}/_intermediate_layer_norm"),
                "MLM-Bias": {"beta": Weight(f"{head}/vars/0", self.load_embeddings)},
            }
        )
        return mapping

    @staticmethod
    def _keras_dense(scope, transform=None):
        return {"kernel": Weight(f"{scope}/vars/0", transform), "bias": Weight(f"{scope}/vars/1", transform)}

    @staticmethod
    def _keras_norm(scope):
        return {"gamma": Weight(f"{scope}/vars/0"), "beta": Weight(f"{scope}/vars/1")}
