"""NEZHA (`bert4keras3.models.NEZHA`, Huawei, https://arxiv.org/abs/1909.00204): BERT without
absolute positions; every attention adds functional relative positions (`typical_relative`: a
fixed sinusoid of the distance `j - i`, clipped to ±`max_relative_position`, added to the keys and
to the values). The table is computed, never a checkpoint weight, so NEZHA's checkpoints are BERT's
names without `position_embeddings`: Huawei's Google-style TF checkpoints (`bert/...`) and Hugging
Face's `nezha` (transformers 4).
"""

from b4k3_layers import RelativePositionEmbedding, Sinusoidal
from b4k3_models.bert import BERT
from b4k3_ops.checks import check_positive_int


class NEZHA(BERT):
    """NEZHA: token (+ segment) embeddings, BERT's post-norm blocks with relative positions, BERT's heads.

    Args:
        max_position: accepted for bert4keras' configs; NEZHA reads no absolute position.
        max_relative_position: the longest distance told apart (NEZHA: 64); longer ones share it.
        **kwargs: the arguments of `BERT`, but those of absolute positions (`hierarchical_position`,
            `custom_position_ids`) and `attention_key_size` (the table serves keys and values).

    `application='lm'` / `'unilm'` give the causal / UniLM masks and decode with a KV cache
    (bert4keras3's NEZHA did not decode): a cached step embeds the distances between its rows' own
    positions and the cached ones.
    """

    honoured_options = BERT.honoured_options - {"attention_key_size", "attention_caches"}  # relative positions
    embedding_steps = ("token", "segment", "norm", "dropout", "mapping")
    position_bias_kind = "typical_relative"
    hf_base_prefixes = ("nezha.",)

    def __init__(self, max_position=512, max_relative_position=64, **kwargs):
        absolute = sorted(name for name in ("hierarchical_position", "custom_position_ids") if kwargs.get(name))
        if absolute:
            raise TypeError(f"NEZHA has no absolute positions, so no {absolute}: its positions are relative")
        check_positive_int("NEZHA", max_relative_position=max_relative_position)
        super().__init__(max_position, **kwargs)
        self.max_relative_position = max_relative_position

    def compute_position_bias(self, inputs=None):
        """The `(len, len, head_size)` relative position table, computed once for every block."""
        if self.position_bias is None:
            token_ids = self.inputs[0]
            self.position_bias = self.relative_positions([token_ids, token_ids])
        return self.position_bias

    def relative_positions(self, inputs, relative_positions=None):
        """The vectors of the distances between `[queries, keys]`, or of `relative_positions`."""
        return self.apply(
            inputs,
            RelativePositionEmbedding,
            arguments=None if relative_positions is None else {"relative_positions": relative_positions},
            input_dim=2 * self.max_relative_position + 1,
            output_dim=self.attention_head_size,
            embeddings_initializer=Sinusoidal(),
            trainable=False,
            name="Embedding-Relative-Position",
        )

    def cache_position_bias(self, query_positions, key_positions, layer_index):
        """`(batch, T, keys, head_size)`: the vectors of each new token's distances to the cache."""
        relative = key_positions[:, None, :] - query_positions[:, :, None]
        # The layer reads only `relative_positions`; its inputs stand in for the usual [q, k].
        return self.relative_positions(relative, relative_positions=relative)

    @classmethod
    def from_hf_config(cls, hf_config):
        """`NEZHA` arguments from a Hugging Face `NezhaConfig` dict: BERT's and `max_relative_position`."""
        config = super().from_hf_config(hf_config)
        return {**config, "max_relative_position": hf_config.get("max_relative_position", 64)}
