"""BERT and RoBERTa (`bert4keras3.models.BERT`): the post-norm encoder, its pooler, NSP and MLM
heads, and its checkpoint name maps (Google's TF names, Hugging Face's BERT and RoBERTa names)."""

import keras

from b4k3_layers import Embedding, FeedForward, PositionEmbedding, ScaleOffset
from b4k3_models.checkpoint_names import GOOGLE_NAMES, HF_NAMES, hf_base_prefix
from b4k3_models.decoding import CachedDecoding
from b4k3_models.hf_configs import hf_activation, reject_unsupported
from b4k3_models.language_models import LM_Mask
from b4k3_models.masks import MaskedAdd
from b4k3_models.transformer import ATTENTION, FEED_FORWARD, ModelInputs, Transformer
from b4k3_models.weight_maps import Weight, rows_from, transposed
from b4k3_ops import ops

# Hugging Face model types of the RoBERTa network (positions numbered from pad_token_id + 1).
ROBERTA_MODEL_TYPES = ("roberta", "xlm-roberta")


@keras.saving.register_keras_serializable(package="b4k3")
class FirstToken(keras.layers.Layer):
    """`x[:, 0]`: each sequence's first hidden state ([CLS]), what the pooler reads. The padding
    mask stops here: the output has no sequence axis."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def call(self, x):
        return x[:, 0]

    def compute_output_shape(self, input_shape):
        return (input_shape[0], *input_shape[2:])

    def compute_mask(self, inputs, mask=None):
        return None


class BERT(CachedDecoding, Transformer):
    """BERT (and RoBERTa, the same network): embeddings, post-norm blocks, optional heads.

    Args:
        max_position: number of learned positions (the longest sequence).
        segment_vocab_size: number of segment (token type) ids; 0 for no segment input.
        with_pool: add the pooler on the first token: True (tanh), 'linear' or an activation.
        with_nsp: add next-sentence prediction on the pooler (implies `with_pool`): True
            (softmax probabilities), 'linear' (logits) or an activation.
        with_mlm: add the masked-LM head, tied to the token embeddings: True (softmax), 'linear'
            (logits) or an activation.
        hierarchical_position: extend the positions hierarchically (True, or the mix in (0, 1)).
        custom_position_ids: take position ids as a third input instead of counting.
        shared_segment_embeddings: segment ids share the token embedding matrix.
        layer_norm_eps: epsilon of every layer normalization (BERT 1e-12, RoBERTa 1e-5).
        checkpoint_position_offset: the row of the checkpoint's position table that position 0
            reads (Hugging Face RoBERTa: `pad_token_id + 1`); the rows before it are not loaded.
        **kwargs: the arguments of `Transformer` (`pad_token_id` defaults to 0, BERT's).

    Outputs: the sequence output when no head is asked for; with heads, only the heads' outputs
    (one bare, several as a list in the order pool/NSP, MLM), as in bert4keras.

    Built with `application='lm'` or `'unilm'` it decodes with a KV cache (`call_with_cache`), its
    learned positions taken from the cache index.
    """

    honoured_options = frozenset(
        {
            "embedding_size",
            "attention_key_size",
            "residual_attention_scores",
            "o_bias",
            "query_head",
            "segment_attention",
            "pad_token_id",
            "layer_norm_cond",
            "additional_input_layers",
            "attention_caches",
        }
    )
    embedding_steps = ("token", "segment", "position", "norm", "dropout", "mapping")
    norm_placement = "post"
    # Whether the projection of factorized embeddings (`Embedding-Mapping`) has a bias.
    embedding_mapping_bias = True
    # The prefixes of the base model's keys in Hugging Face checkpoints saved from a `*For*` class.
    hf_base_prefixes = ("bert.", "roberta.")

    def __init__(
        self,
        max_position,
        segment_vocab_size=2,
        with_pool=False,
        with_nsp=False,
        with_mlm=False,
        hierarchical_position=None,
        custom_position_ids=False,
        shared_segment_embeddings=False,
        layer_norm_eps=1e-12,
        checkpoint_position_offset=0,
        **kwargs,
    ):
        kwargs.setdefault("pad_token_id", 0)
        super().__init__(**kwargs)
        self.max_position = max_position
        self.segment_vocab_size = segment_vocab_size
        self.with_pool = with_pool or bool(with_nsp)
        self.with_nsp = with_nsp
        self.with_mlm = with_mlm
        self.hierarchical_position = hierarchical_position
        self.custom_position_ids = custom_position_ids
        self.shared_segment_embeddings = shared_segment_embeddings
        self.layer_norm_eps = layer_norm_eps
        self.checkpoint_position_offset = checkpoint_position_offset

    optional_layers = ("Pooler-Dense", "NSP-Proba", "MLM-Dense", "MLM-Norm", "MLM-Bias")
    # The prefixes of the base model's keys in Hugging Face checkpoints of the family.
    hf_base_prefixes = ("bert.", "roberta.")

    def get_inputs(self):
        """Token ids, then segment ids (if `segment_vocab_size > 0`), then position ids (if
        `custom_position_ids`), each `(batch, sequence_length)` int32."""
        inputs = super().get_inputs()
        shape = (self.sequence_length,)
        if self.segment_vocab_size > 0:
            inputs.append(keras.Input(shape=shape, dtype="int32", name=self.prefixed("Input-Segment")))
        if self.custom_position_ids:
            inputs.append(keras.Input(shape=shape, dtype="int32", name=self.prefixed("Input-Position")))
        return inputs

    def model_inputs(self, inputs):
        if isinstance(inputs, ModelInputs):
            return inputs
        inputs = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
        token_ids = inputs.pop(0)
        segment_ids = inputs.pop(0) if self.segment_vocab_size > 0 else None
        position_ids = inputs.pop(0) if self.custom_position_ids else None
        return ModelInputs(token_ids, segment_ids, position_ids)

    def embed_segment(self, x, inputs):
        """Token plus segment embeddings (the segment table is the token table when shared)."""
        if inputs.segment_ids is None:
            return x
        s = self.apply(
            inputs.segment_ids,
            Embedding,
            input_dim=self.segment_vocab_size,
            output_dim=self.embedding_size,
            embeddings_initializer=self.initializer,
            name="Embedding-Token" if self.shared_segment_embeddings else "Embedding-Segment",
        )
        return self.apply([x, s], MaskedAdd, name="Embedding-Token-Segment")

    def embed_position(self, x, inputs):
        """Learned absolute positions: counted from 0, the model's position input, or the
        positions of a decoding step."""
        arguments = {}
        if self.custom_position_ids:
            x = [x, inputs.position_ids]
        elif inputs.position_ids is not None:
            arguments["position_ids"] = inputs.position_ids
        return self.apply(
            x,
            PositionEmbedding,
            arguments=arguments,
            input_dim=self.max_position,
            output_dim=self.embedding_size,
            merge_mode="add",
            hierarchical=self.hierarchical_position,
            embeddings_initializer=self.initializer,
            custom_position_ids=self.custom_position_ids,
            name="Embedding-Position",
        )

    def embed_norm(self, x, inputs):
        return self.apply_norm(x, "Embedding-Norm")

    def embed_mapping(self, x, inputs):
        """The projection of factorized embeddings (`embedding_size`) to `hidden_size`."""
        if self.embedding_size == self.hidden_size:
            return x
        return self.apply(
            x,
            keras.layers.Dense,
            units=self.hidden_size,
            use_bias=self.embedding_mapping_bias,
            kernel_initializer=self.initializer,
            name="Embedding-Mapping",
        )

    def norm_arguments(self):
        return {"epsilon": self.layer_norm_eps}

    def feed_forward_layer(self, index):
        return {
            "layer": FeedForward,
            "units": self.intermediate_size,
            "activation": self.hidden_act,
            "kernel_initializer": self.initializer,
        }

    # Decoding: a causal (application='lm') BERT continues text with a KV cache.

    @property
    def lm_head_activation(self):
        """A language model's head is the MLM head (`with_mlm`)."""
        return self.with_mlm

    @property
    def max_positions(self):
        """The learned positions: `max_position`, or its square with hierarchical positions; None
        for a family without the "position" step (rotary or relative positions have no bound)."""
        if "position" not in self.embedding_steps:
            return None
        return self.max_position**2 if self.hierarchical_position else self.max_position

    def decoding_inputs(self, token_ids, positions):
        """Segment 0 and the positions, clipped to the table: rows that have ended keep stepping
        in a batch (their tokens are discarded) and may pass it. A real token past
        `max_positions` is refused where a generation starts. Without a position table the
        positions reach the attention through the cache index instead."""
        segment_ids = ops.zeros_like(token_ids) if self.segment_vocab_size > 0 else None
        if self.max_positions is None:
            return ModelInputs(token_ids, segment_ids)
        return ModelInputs(token_ids, segment_ids, ops.minimum(positions, self.max_positions - 1))

    def check_can_decode(self):
        super().check_can_decode()
        if not isinstance(self, LM_Mask):
            raise TypeError(
                f"{type(self).__name__} cannot decode: it sees every token both ways; build it with "
                "build_transformer_model(..., application='lm') to continue text token by token, or "
                "application='unilm' to generate a target after a source"
            )
        if self.with_pool:
            raise TypeError(f"{type(self).__name__}: a decoding model has one output, its LM head; remove with_pool")

    def apply_final_layers(self, inputs):
        outputs = [inputs]
        if self.with_pool:
            x = self.apply(inputs, FirstToken, name="Pooler")
            x = self.apply(
                x,
                keras.layers.Dense,
                units=self.hidden_size,
                activation="tanh" if self.with_pool is True else self.with_pool,
                kernel_initializer=self.initializer,
                name="Pooler-Dense",
            )
            if self.with_nsp:
                x = self.apply(
                    x,
                    keras.layers.Dense,
                    units=2,
                    activation="softmax" if self.with_nsp is True else self.with_nsp,
                    kernel_initializer=self.initializer,
                    name="NSP-Proba",
                )
            outputs.append(x)
        if self.with_mlm:
            x = self.apply(
                inputs,
                keras.layers.Dense,
                units=self.embedding_size,
                activation=self.hidden_act,
                kernel_initializer=self.initializer,
                name="MLM-Dense",
            )
            x = self.apply_norm(x, "MLM-Norm")
            x = self.apply(x, Embedding, arguments={"mode": "dense"}, name="Embedding-Token")
            x = self.apply(x, ScaleOffset, scale=False, name="MLM-Bias")
            activation = "softmax" if self.with_mlm is True else self.with_mlm
            x = self.apply(x, keras.layers.Activation, activation=activation, name="MLM-Activation")
            outputs.append(x)
        if len(outputs) == 1:
            return outputs[0]
        return outputs[1] if len(outputs) == 2 else outputs[1:]

    @classmethod
    def from_hf_config(cls, hf_config):
        """`BERT` arguments from a Hugging Face `BertConfig` / `RobertaConfig` dict."""
        reject_unsupported(
            hf_config,
            position_embedding_type=("absolute", None),
            is_decoder=(False, None),
            add_cross_attention=(False, None),
        )
        config = {
            "vocab_size": hf_config["vocab_size"],
            "hidden_size": hf_config["hidden_size"],
            "num_hidden_layers": hf_config["num_hidden_layers"],
            "num_attention_heads": hf_config["num_attention_heads"],
            "intermediate_size": hf_config["intermediate_size"],
            "hidden_act": hf_activation(hf_config.get("hidden_act", "gelu")),
            "max_position": hf_config.get("max_position_embeddings", 512),
            "segment_vocab_size": hf_config.get("type_vocab_size", 2),
            "dropout_rate": hf_config.get("hidden_dropout_prob"),
            "attention_dropout_rate": hf_config.get("attention_probs_dropout_prob"),
            "layer_norm_eps": hf_config.get("layer_norm_eps", 1e-12),
            "pad_token_id": hf_config.get("pad_token_id", 0),
        }
        if hf_config.get("model_type") in ROBERTA_MODEL_TYPES:
            # RoBERTa numbers positions from pad_token_id + 1; the rows before are never used.
            offset = config["pad_token_id"] + 1
            config["checkpoint_position_offset"] = offset
            config["max_position"] -= offset
        return config

    def variable_mapping(self, checkpoint):
        """Google's names for TF checkpoints and dicts; Hugging Face's (BERT or RoBERTa) for
        safetensors directories."""
        if checkpoint.format == "hf":
            return self._hf_mapping(checkpoint)
        names = GOOGLE_NAMES
        mapping = self._encoder_mapping(names, "bert/embeddings", "bert/encoder/layer_{}", "bert/pooler/dense")
        mapping["Embedding-Mapping"] = names.dense("bert/encoder/embedding_hidden_mapping_in")
        mapping.update(
            {
                "NSP-Proba": {
                    "kernel": Weight("cls/seq_relationship/output_weights", transposed),
                    "bias": Weight("cls/seq_relationship/output_bias"),
                },
                **self._mlm_mapping(
                    names,
                    "cls/predictions/transform/dense",
                    "cls/predictions/transform/LayerNorm",
                    "cls/predictions/output_bias",
                ),
            }
        )
        return mapping

    def _hf_mapping(self, checkpoint):
        names = HF_NAMES
        base = hf_base_prefix(checkpoint, self.hf_base_prefixes)
        mapping = self._encoder_mapping(names, f"{base}embeddings", f"{base}encoder.layer.{{}}", f"{base}pooler.dense")
        mapping["NSP-Proba"] = names.dense("cls.seq_relationship")
        mlm = self._hf_mlm_scope(checkpoint)
        if mlm == "lm_head":
            mapping.update(self._mlm_mapping(names, f"{mlm}.dense", f"{mlm}.layer_norm", f"{mlm}.bias"))
        else:
            mapping.update(
                self._mlm_mapping(names, f"{mlm}.transform.dense", f"{mlm}.transform.LayerNorm", f"{mlm}.bias")
            )
        return mapping

    def _mlm_mapping(self, names, dense, norm, bias):
        """The MLM head's map from the scopes of its Dense and norm and the key of its output bias."""
        return {
            "MLM-Dense": names.dense(dense),
            "MLM-Norm": names.norm(norm),
            "MLM-Bias": {"beta": Weight(bias, self.load_embeddings)},
        }

    @staticmethod
    def _hf_mlm_scope(checkpoint):
        """RoBERTa's checkpoints keep the MLM head under `lm_head`, BERT's under `cls.predictions`."""
        return "lm_head" if any(key.startswith("lm_head.") for key in checkpoint) else "cls.predictions"

    def known_extra_keys(self, checkpoint):
        """The MLM output matrix and bias, which BERT ties to the token embeddings and MLM bias."""
        if checkpoint.format != "hf":
            return []
        scope = self._hf_mlm_scope(checkpoint)
        return [f"{scope}.decoder.weight", f"{scope}.decoder.bias"]

    def _encoder_mapping(self, names, embeddings, layer, pooler):
        """The map of the embeddings, the blocks (`layer`: their scope, formatted with the index)
        and the pooler, in either naming."""
        mapping = self._embedding_mapping(names, embeddings, pooler)
        for index in range(self.num_hidden_layers):
            scope = names.scope(layer.format(index))
            mapping.update(
                self._block_mapping(
                    index,
                    names,
                    attention=[
                        scope(f"attention/{path}") for path in ("self/query", "self/key", "self/value", "output/dense")
                    ],
                    attention_norm=scope("attention/output/LayerNorm"),
                    feed_forward=[scope("intermediate/dense"), scope("output/dense")],
                    feed_forward_norm=scope("output/LayerNorm"),
                )
            )
        return mapping

    def _embedding_mapping(self, names, embeddings, pooler=None):
        """The map of the embedding tables and norm (scope `embeddings`) and of the pooler (scope
        `pooler`; None: the family has none)."""
        offset = self.checkpoint_position_offset
        mapping = {
            "Embedding-Token": {
                "embeddings": Weight(names.table(f"{embeddings}{names.sep}word_embeddings"), self.load_embeddings)
            },
            "Embedding-Segment": {"embeddings": Weight(names.table(f"{embeddings}{names.sep}token_type_embeddings"))},
            "Embedding-Position": {
                "embeddings": Weight(names.table(f"{embeddings}{names.sep}position_embeddings"), rows_from(offset))
            },
            "Embedding-Norm": names.norm(f"{embeddings}{names.sep}LayerNorm"),
        }
        if pooler is not None:
            mapping["Pooler-Dense"] = names.dense(pooler)
        return mapping

    def _block_mapping(self, index, names, attention, attention_norm, feed_forward, feed_forward_norm):
        """The map of block `index` from the scopes of its attention's query, key, value and output
        projections, its feed-forward's input and output Dense layers, and their two norms."""
        attention_name = self.sublayer_name(index, ATTENTION)
        feed_forward_name = self.sublayer_name(index, FEED_FORWARD)
        return {
            attention_name: names.attention(*attention),
            f"{attention_name}-Norm": names.norm(attention_norm),
            feed_forward_name: names.feed_forward(feed_forward[:-1], feed_forward[-1]),
            f"{feed_forward_name}-Norm": names.norm(feed_forward_norm),
        }
