"""RoFormer and RoFormerV2 (`bert4keras3.models.RoFormer`, `.RoFormerV2`): BERT with rotary
positions instead of learned ones, and their checkpoint name maps (ZhuiyiTechnology's Google-TF
releases under bert4keras' names, Hugging Face `roformer` directories, and JunnYu's RoFormerV2
port, which Hugging Face directories hold under `model_type: roformer` too).

- RoFormer: BERT's post-norm blocks; each attention rotates its queries and keys by their positions
  (interleaved pairs, `rope_mode='su'`), so there is no position table and no length bound.
- RoFormerV2: RoFormer without biases and with parameter-free RMS norms; its MLM head is the tied
  token embeddings alone.
Both decode with a KV cache when built with `application='lm'` or `'unilm'`.
"""

import math

import keras

from b4k3_layers import Embedding
from b4k3_models.bert import BERT
from b4k3_models.checkpoint_names import HF_NAMES, hf_base_prefix
from b4k3_models.hf_configs import reject_unsupported

# Variables a RoFormerV2 lacks: bert4keras drops every checkpoint name holding one of these.
DROPPED_VARIABLES = ("bias", "beta", "gamma")


class RoFormer(BERT):
    """RoFormer: BERT's network with rotary positions (interleaved, "su") in every attention layer.

    Args:
        max_position: accepted for bert4keras configs and unused: rotary positions have no table.
        **kwargs: the arguments of `BERT` but its learned-position options (`hierarchical_position`,
            `custom_position_ids`), which rotary positions have no use for.
    """

    honoured_options = BERT.honoured_options - {"attention_caches"}  # cached keys would have no rotary positions
    embedding_steps = ("token", "segment", "norm", "dropout", "mapping")
    position_bias_kind = "rotary"
    hf_base_prefixes = ("roformer.",)

    def __init__(self, max_position=None, **kwargs):
        unused = sorted(name for name in ("hierarchical_position", "custom_position_ids") if kwargs.get(name))
        if unused:
            raise TypeError(f"{type(self).__name__} has rotary positions; {unused} would have no effect. Remove them")
        super().__init__(max_position=max_position, **kwargs)

    def attention_layer(self, index):
        return {**super().attention_layer(index), "rope_mode": "su"}

    @classmethod
    def from_hf_config(cls, hf_config):
        """RoFormer arguments from a Hugging Face `RoFormerConfig` dict (or JunnYu's, which adds
        `norm_type` and `use_bias`: RoFormerV2 when 'rms_norm' without biases)."""
        reject_unsupported(hf_config, rotary_value=(False, None))
        config = super().from_hf_config(hf_config)
        config["embedding_size"] = hf_config.get("embedding_size") or hf_config["hidden_size"]
        return config

    def variable_mapping(self, checkpoint):
        """BERT's names (`bert/...` in Google-TF checkpoints, `roformer.` in Hugging Face's) and
        Hugging Face's projection of factorized embeddings."""
        mapping = super().variable_mapping(checkpoint)
        if checkpoint.format == "hf":
            base = hf_base_prefix(checkpoint, self.hf_base_prefixes)
            mapping["Embedding-Mapping"] = HF_NAMES.dense(f"{base}embeddings_project")
        return mapping

    def known_extra_keys(self, checkpoint):
        """BERT's tied MLM matrix and Hugging Face's saved sinusoid table (computed here)."""
        extra = list(super().known_extra_keys(checkpoint))
        if checkpoint.format == "hf":
            extra.append(f"{hf_base_prefix(checkpoint, self.hf_base_prefixes)}encoder.embed_positions.weight")
        return extra


@keras.saving.register_keras_serializable(package="b4k3")
class FanScaledTruncatedNormal(keras.initializers.Initializer):
    """RoFormerV2's initializer: truncated normal of standard deviation
    `1.13684723 / sqrt(fan) * num_layers ** (-1 / order)` (the fan is the input size, or the output
    size of tables with more than 10000 rows), so that deep post-norm stacks start stable."""

    def __init__(self, num_layers, order=2, seed=None):
        self.num_layers = num_layers
        self.order = order
        self.seed = seed

    def __call__(self, shape, dtype=None):
        fan = shape[1] if shape[0] > 10000 or shape[0] < 10 else shape[0]
        stddev = 1.13684723 / math.sqrt(fan) * self.num_layers ** (-1.0 / self.order)
        return keras.random.truncated_normal(shape, stddev=stddev, dtype=dtype, seed=self.seed)

    def get_config(self):
        return {"num_layers": self.num_layers, "order": self.order, "seed": self.seed}


class RoFormerV2(RoFormer):
    """RoFormerV2: RoFormer without biases, every norm a parameter-free RMS norm (`x / rms(x)`),
    the MLM head the tied token embeddings alone (no dense, norm or bias).

    Args: those of `RoFormer` but `embedding_size` (the released models have none) and the pooler
    and NSP heads, which RoFormerV2 does not have.
    """

    honoured_options = RoFormer.honoured_options - {"embedding_size", "layer_norm_cond"}
    embedding_steps = ("token", "segment", "dropout", "norm")
    optional_layers = ()
    # The order of the initializer's depth scaling (bert4keras: 2 for RoFormerV2, 3 for GAU-alpha).
    initializer_order = 2

    def __init__(self, **kwargs):
        heads = sorted(name for name in ("with_pool", "with_nsp") if kwargs.get(name))
        if heads:
            raise TypeError(f"{type(self).__name__} has no {heads}: its only head is the MLM head (with_mlm)")
        super().__init__(**kwargs)

    @property
    def initializer(self):
        return FanScaledTruncatedNormal(self.num_hidden_layers, self.initializer_order)

    def norm_arguments(self):
        return {"epsilon": self.layer_norm_eps, "zero_mean": False, "scale": False, "offset": False}

    def attention_layer(self, index):
        return {**super().attention_layer(index), "use_bias": False}

    def feed_forward_layer(self, index):
        return {**super().feed_forward_layer(index), "use_bias": False}

    def apply_final_layers(self, inputs):
        """The sequence output, or with `with_mlm` the tied MLM head (bert4keras' `Output-MLM-*`)."""
        if not self.with_mlm:
            return inputs
        x = self.apply(inputs, keras.layers.Dropout, rate=self.dropout_rate, name="Output-MLM-Dropout")
        x = self.apply(x, Embedding, arguments={"mode": "dense"}, name="Embedding-Token")
        activation = "softmax" if self.with_mlm is True else self.with_mlm
        return self.apply(x, keras.layers.Activation, activation=activation, name="Output-MLM-Activation")

    @classmethod
    def from_hf_config(cls, hf_config):
        """RoFormerV2 arguments from JunnYu's config (`norm_type='rms_norm'`, `use_bias=False`)."""
        reject_unsupported(hf_config, norm_type=("rms_norm",), use_bias=(False,))
        return super().from_hf_config(hf_config)

    def variable_mapping(self, checkpoint):
        """RoFormer's names without the biases and norm gains, as bert4keras maps RoFormerV2."""
        mapping = {}
        for layer, weights in super().variable_mapping(checkpoint).items():
            kept = {path: weight for path, weight in weights.items() if path.split("/")[-1] not in DROPPED_VARIABLES}
            if kept:
                mapping[layer] = kept
        return mapping
