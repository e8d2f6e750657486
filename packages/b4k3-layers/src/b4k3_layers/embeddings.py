"""Token and position embeddings of bert4keras3: a token `Embedding` that doubles as a tied LM
head, absolute (learned, hierarchical, sinusoidal) and relative (Shaw et al., T5, DeBERTa) positions.
Rotary positions are in `rotary.py`."""

import math
import numbers

import keras

from b4k3_layers.norms import LayerNormalization
from b4k3_layers.quantization import QuantizesAsKeras
from b4k3_layers.trainability import KeepsTrainability
from b4k3_ops import ops
from b4k3_ops.backend import Sinusoidal, sinusoidal_embeddings  # noqa: F401 (Sinusoidal: where NEZHA takes it from)
from b4k3_ops.checks import check_positive_int
from b4k3_ops.positions import log_bucket_positions

MERGE_MODES = ("add", "mul", "zero", "concat")


@keras.saving.register_keras_serializable(package="b4k3")
class Embedding(KeepsTrainability, QuantizesAsKeras, keras.layers.Embedding):
    """`keras.layers.Embedding` that can also project hidden states back onto the vocabulary.

    `mode='dense'` computes `x @ embeddings.T`, so a language model's output layer can share the
    input embedding matrix (a tied LM head) without a second weight.

    With `mask_zero=True`, the first position of each sequence is never masked, even when its id
    is 0: a T5 decoder starts from token 0 (the pad id), and masking it would hide the one token
    the decoder starts from. Later zeros are masked as usual. In mode 'dense' the incoming mask of
    the hidden states passes on unchanged.

    Args: those of `keras.layers.Embedding`.

    Call arguments:
        inputs: token ids `(batch, seq_len)` (mode 'embedding'), or hidden states
            `(..., output_dim)` (mode 'dense').
        mode: 'embedding' (ids to vectors) or 'dense' (vectors to one logit per token id).

    Example:
        >>> embedding = Embedding(100, 8, mask_zero=True)
        >>> hidden = embedding(np.array([[0, 5, 7, 0]]))  # (1, 4, 8); mask [True, True, True, False]
        >>> logits = embedding(hidden, mode="dense")  # (1, 4, 100)
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Mode 'dense' passes the hidden states' mask on, with or without mask_zero.
        self.supports_masking = True

    def call(self, inputs, mode="embedding"):
        if mode == "embedding":
            return super().call(inputs)
        if mode == "dense":
            kernel = ops.cast(self.embeddings, self.compute_dtype)
            return ops.matmul(ops.cast(inputs, self.compute_dtype), ops.transpose(kernel))
        raise ValueError(f"Embedding: `mode` must be 'embedding' or 'dense', got {mode!r}")

    def quantized_call(self, inputs, mode="embedding", **kwargs):
        """After `quantize('int8')`: Keras' lookup, and mode 'dense' from the int8 table and its
        per-token scales, `(x @ table.T) / scale` (the table is never dequantized whole)."""
        if mode == "embedding":
            return super().quantized_call(inputs, **kwargs)
        if self.quantization_mode != "int8" or self.lora_enabled:
            raise ValueError(
                f"Embedding {self.name!r} as a tied LM head (mode 'dense') runs quantized in mode 'int8' without LoRA "
                f"adapters; it is in mode {self.quantization_mode!r}"
                + (" with LoRA adapters (merge them before quantizing)" if self.lora_enabled else "")
            )
        table = ops.cast(self._embeddings, self.compute_dtype)
        logits = ops.matmul(ops.cast(inputs, self.compute_dtype), ops.transpose(table))
        return logits / ops.cast(self.embeddings_scale, self.compute_dtype)

    def compute_mask(self, inputs, mask=None):
        # Keras passes no call arguments here: ids are 2-D, mode 'dense' hidden states are not.
        if not self.mask_zero or len(inputs.shape) != 2:
            return mask
        mask = ops.not_equal(inputs, 0)
        return ops.concatenate([ops.ones_like(mask[:, :1]), mask[:, 1:]], axis=1)

    def compute_output_shape(self, input_shape, mode="embedding"):
        if mode == "dense":
            return (*input_shape[:-1], self.input_dim)
        return super().compute_output_shape(input_shape)

    def compute_output_spec(self, inputs, mode="embedding"):
        return keras.KerasTensor(self.compute_output_shape(inputs.shape, mode), dtype=self.compute_dtype)


@keras.saving.register_keras_serializable(package="b4k3")
class AbsolutePositionEmbedding(KeepsTrainability, keras.layers.Layer):
    """What `PositionEmbedding` and `SinusoidalPositionEmbedding` share: reading the position ids
    (`0..seq_len-1`, or given as a second input) and merging the position vectors into the input.

    Merge modes: 'add' `x + p`; 'mul' `x * (1 + p)` (so a zero table leaves `x` unchanged);
    'zero' `p` alone, as bert4keras3 returned it: `(1, seq_len, dim)` for positions counted from 0
    (it broadcasts against any batch), `(batch, seq_len, dim)` for given ids; 'concat' `[x, p]` on
    the last axis.
    Subclasses define `position_embeddings(position_ids)`.
    """

    def __init__(self, output_dim, merge_mode="add", custom_position_ids=False, **kwargs):
        name = type(self).__name__
        check_positive_int(name, output_dim=output_dim)
        if merge_mode not in MERGE_MODES:
            raise ValueError(f"{name}: `merge_mode` must be one of {MERGE_MODES}, got {merge_mode!r}")
        super().__init__(**kwargs)
        self.output_dim = output_dim
        self.merge_mode = merge_mode
        self.custom_position_ids = custom_position_ids
        self.supports_masking = True

    def split_inputs(self, inputs, position_ids=None):
        """`(x, position_ids)`: the ids of the input pair, `position_ids`, or `(1, seq_len)` ids
        counting from 0."""
        is_pair = isinstance(inputs, (list, tuple)) and len(inputs) == 2
        if self.custom_position_ids != is_pair:
            raise ValueError(
                f"{type(self).__name__}: the inputs are [x, position_ids] exactly when `custom_position_ids=True`; "
                f"got custom_position_ids={self.custom_position_ids} and inputs of type {type(inputs).__name__}"
            )
        if self.custom_position_ids:
            if position_ids is not None:
                raise ValueError(f"{type(self).__name__}: position ids come as the second input, not as position_ids")
            return inputs
        if position_ids is None:
            position_ids = ops.arange(ops.shape(inputs)[1], dtype="int32")[None]
        return inputs, position_ids

    def compute_mask(self, inputs, mask=None):
        """The padding mask of `x` passes on (not that of the position ids)."""
        if self.custom_position_ids and isinstance(mask, (list, tuple)):
            return mask[0]
        return mask

    def position_embeddings(self, position_ids):
        """`(batch or 1, seq_len, output_dim)` vectors of the positions."""
        raise NotImplementedError(f"{type(self).__name__} must define position_embeddings")

    def call(self, inputs, position_ids=None):
        """`inputs` merged with its positions; `position_ids` `(batch or 1, seq_len)` replace the
        count from 0 (a decoder's positions in its KV cache) when `custom_position_ids` is off."""
        x, position_ids = self.split_inputs(inputs, position_ids)
        embeddings = ops.cast(self.position_embeddings(position_ids), self.compute_dtype)
        if self.merge_mode == "add":
            return x + embeddings
        if self.merge_mode == "mul":
            return x * (embeddings + 1.0)
        if self.merge_mode == "zero":
            return embeddings
        embeddings = ops.broadcast_to(embeddings, (*ops.shape(x)[:2], self.output_dim))
        return ops.concatenate([x, ops.cast(embeddings, x.dtype)], axis=-1)

    def compute_output_shape(self, input_shape):
        x_shape = input_shape[0] if self.custom_position_ids else input_shape
        if self.merge_mode == "zero":
            return (x_shape[0] if self.custom_position_ids else 1, x_shape[1], self.output_dim)
        if self.merge_mode != "concat":
            return (*x_shape[:2], self.output_dim)
        return (*x_shape[:2], None if x_shape[-1] is None else x_shape[-1] + self.output_dim)

    def get_config(self):
        config = super().get_config()
        config.update(
            output_dim=self.output_dim, merge_mode=self.merge_mode, custom_position_ids=self.custom_position_ids
        )
        return config


@keras.saving.register_keras_serializable(package="b4k3")
class PositionEmbedding(AbsolutePositionEmbedding):
    """Learned absolute position embeddings (BERT's), merged into the input.

    `hierarchical` extends a table of `n = input_dim` positions to `n * n` (Su Jianlin's
    hierarchical decomposition): with `E` the table and `a` the mix,
    `emb = (E - a * E[0]) / (1 - a)` and position `p` gets `a * emb[p // n] + (1 - a) * emb[p % n]`,
    which equals `E[p]` for `p < n`: a BERT checkpoint keeps its vectors and reads longer texts.

    Args:
        input_dim: number of positions in the table (the maximum sequence length).
        output_dim: size of each position vector.
        merge_mode: 'add', 'mul', 'zero' or 'concat' (see `AbsolutePositionEmbedding`).
        hierarchical: None/False (plain table), True (mix 0.4) or the mix as a float in (0, 1).
        embeddings_initializer: initializer of the table.
        custom_position_ids: if True, the inputs are `[x, position_ids]`.

    Example:
        >>> layer = PositionEmbedding(512, 8)
        >>> layer(np.zeros((2, 10, 8)))  # (2, 10, 8): x plus rows 0..9 of the table
    """

    def __init__(
        self,
        input_dim,
        output_dim,
        merge_mode="add",
        hierarchical=None,
        embeddings_initializer="zeros",
        custom_position_ids=False,
        **kwargs,
    ):
        check_positive_int("PositionEmbedding", input_dim=input_dim)
        is_mix = isinstance(hierarchical, numbers.Real) and 0 < hierarchical < 1
        if not (hierarchical is None or isinstance(hierarchical, bool) or is_mix):
            raise ValueError(
                f"PositionEmbedding: `hierarchical` must be None, True or a float in (0, 1), got {hierarchical!r}"
            )
        super().__init__(output_dim, merge_mode, custom_position_ids, **kwargs)
        self.input_dim = input_dim
        self.hierarchical = hierarchical
        self.embeddings_initializer = keras.initializers.get(embeddings_initializer)

    def build(self, input_shape):
        self.embeddings = self.add_weight(
            name="embeddings", shape=(self.input_dim, self.output_dim), initializer=self.embeddings_initializer
        )

    def call(self, inputs, position_ids=None):
        counted = not (self.custom_position_ids or isinstance(inputs, (list, tuple)) or position_ids is not None)
        length = inputs.shape[1] if counted else None
        if not self.hierarchical and length is not None and length > self.input_dim:
            # Out-of-range rows would be clamped silently on JAX and fail obscurely elsewhere.
            raise ValueError(
                f"PositionEmbedding '{self.name}': a sequence of {length} tokens is longer than the {self.input_dim} "
                "positions of the table; truncate the input (maxlen) or use hierarchical positions"
            )
        return super().call(inputs, position_ids)

    def position_embeddings(self, position_ids):
        position_ids = ops.cast(position_ids, "int32")
        table = ops.convert_to_tensor(self.embeddings)
        if not self.hierarchical:
            return ops.take(table, position_ids, axis=0)
        alpha = 0.4 if self.hierarchical is True else self.hierarchical
        table = (table - alpha * table[:1]) / (1 - alpha)
        high = ops.take(table, position_ids // self.input_dim, axis=0)
        low = ops.take(table, position_ids % self.input_dim, axis=0)
        return alpha * high + (1 - alpha) * low

    def get_config(self):
        config = super().get_config()
        config.update(
            input_dim=self.input_dim,
            hierarchical=self.hierarchical,
            embeddings_initializer=keras.initializers.serialize(self.embeddings_initializer),
        )
        return config


@keras.saving.register_keras_serializable(package="b4k3")
class SinusoidalPositionEmbedding(AbsolutePositionEmbedding):
    """The fixed sin/cos position encoding of "Attention is all you need", merged into the input.

    Sines and cosines are interleaved, `[sin(p w_0), cos(p w_0), sin(p w_1), ...]` with
    `w_i = 10000 ** (-2i / output_dim)`, the layout the "su" RoPE of `GlobalPointer` expects.

    Args:
        output_dim: size of each position vector (even).
        merge_mode: 'add', 'mul', 'zero' or 'concat' (see `AbsolutePositionEmbedding`).
        custom_position_ids: if True, the inputs are `[x, position_ids]`.

    Example:
        >>> SinusoidalPositionEmbedding(8, merge_mode="zero")(np.zeros((2, 10, 4)))  # (1, 10, 8)
    """

    def __init__(self, output_dim, merge_mode="add", custom_position_ids=False, **kwargs):
        check_positive_int("SinusoidalPositionEmbedding", output_dim=output_dim)
        if output_dim % 2:
            raise ValueError(f"SinusoidalPositionEmbedding: `output_dim` must be even, got {output_dim}")
        super().__init__(output_dim, merge_mode, custom_position_ids, **kwargs)

    def position_embeddings(self, position_ids):
        return sinusoidal_embeddings(ops.cast(position_ids, "float32"), self.output_dim)


@keras.saving.register_keras_serializable(package="b4k3")
class RelativePositionEmbedding(KeepsTrainability, keras.layers.Layer):
    """Learned relative position embeddings (Shaw et al., 2018), for attention to add.

    Query position `i` and key position `j` get row `clip(j - i, -k, k) + k` of the table, with
    `k = (input_dim - 1) // 2`. Only the sequence lengths of the inputs are read.

    Args:
        input_dim: number of rows of the table (relative distances -k..k).
        output_dim: size of each vector.
        embeddings_initializer: initializer of the table.

    Call arguments:
        inputs: `[q, v]`, each `(batch, seq_len, ...)`.
        relative_positions: optional int tensor of `j - i` to embed instead (e.g. `(batch, q_len,
            cache_len)` for queries at their positions in a KV cache).

    Returns `(q_len, v_len, output_dim)` (or `relative_positions.shape + (output_dim,)`); the
    table has no batch axis and no mask.

    Example:
        >>> RelativePositionEmbedding(9, 4)([np.zeros((2, 5, 8)), np.zeros((2, 7, 8))])  # (5, 7, 4)
    """

    def __init__(self, input_dim, output_dim, embeddings_initializer="zeros", **kwargs):
        check_positive_int(type(self).__name__, input_dim=input_dim, output_dim=output_dim)
        super().__init__(**kwargs)
        self.input_dim = input_dim
        self.output_dim = output_dim
        self.embeddings_initializer = keras.initializers.get(embeddings_initializer)

    def build(self, input_shape):
        self.embeddings = self.add_weight(
            name="embeddings", shape=(self.input_dim, self.output_dim), initializer=self.embeddings_initializer
        )

    def call(self, inputs, relative_positions=None):
        """The vectors of `relative_positions` (any shape, `j - i`), by default those of the
        inputs' lengths; a KV cache passes its own (each query at its absolute position)."""
        table = ops.cast(self.embeddings, self.compute_dtype)
        if relative_positions is None:
            relative_positions = self.relative_positions(inputs)
        return ops.take(table, self.position_ids(ops.cast(relative_positions, "int32")), axis=0)

    @staticmethod
    def relative_positions(inputs):
        """`(q_len, v_len)` int32 matrix of `j - i` (key position minus query position)."""
        q, v = inputs
        return ops.arange(ops.shape(v)[1], dtype="int32")[None] - ops.arange(ops.shape(q)[1], dtype="int32")[:, None]

    def compute_position_ids(self, inputs):
        """The table row of each (query, key) pair."""
        return self.position_ids(self.relative_positions(inputs))

    def position_ids(self, relative):
        """The table row of each relative position `j - i`."""
        max_position = (self.input_dim - 1) // 2
        return ops.clip(relative, -max_position, max_position) + max_position

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_shape(self, input_shape):
        q_shape, v_shape = input_shape
        return (q_shape[1], v_shape[1], self.output_dim)

    def get_config(self):
        config = super().get_config()
        config.update(
            input_dim=self.input_dim,
            output_dim=self.output_dim,
            embeddings_initializer=keras.initializers.serialize(self.embeddings_initializer),
        )
        return config


@keras.saving.register_keras_serializable(package="b4k3")
class RelativePositionEmbeddingT5(RelativePositionEmbedding):
    """T5's bucketed relative position bias (Raffel et al., 2020).

    The distance `j - i` falls in one of `input_dim` buckets, exactly as Hugging Face's
    `T5Attention._relative_position_bucket` computes them (in float32, as T5 checkpoints were
    trained): bidirectional uses half the buckets for each direction; in each half, distances below
    `max_exact = buckets // 2` have a bucket each and longer ones share log-spaced buckets up to
    `max_distance`, beyond which they all take the last.

    Args:
        input_dim: number of buckets (T5: 32).
        output_dim: size of each vector (T5: the number of attention heads).
        max_distance: distance from which all pairs share the last bucket (T5: 128).
        bidirectional: True for an encoder, False for a causal decoder (only `j <= i` counts).
        embeddings_initializer: initializer of the table.

    Example:
        >>> RelativePositionEmbeddingT5(32, 8)([np.zeros((2, 5, 4)), np.zeros((2, 5, 4))])  # (5, 5, 8)
    """

    def __init__(
        self, input_dim, output_dim, max_distance=128, bidirectional=True, embeddings_initializer="zeros", **kwargs
    ):
        super().__init__(input_dim, output_dim, embeddings_initializer=embeddings_initializer, **kwargs)
        check_positive_int("RelativePositionEmbeddingT5", max_distance=max_distance)
        max_exact = (input_dim // 2 if bidirectional else input_dim) // 2
        if max_exact < 1:
            raise ValueError(
                f"RelativePositionEmbeddingT5: `input_dim` (the number of buckets) must be at least "
                f"{4 if bidirectional else 2}, got {input_dim}"
            )
        if max_distance <= max_exact:
            raise ValueError(
                f"RelativePositionEmbeddingT5: `max_distance` must exceed the {max_exact} exact buckets, "
                f"got {max_distance}"
            )
        self.max_distance = max_distance
        self.bidirectional = bidirectional

    def position_ids(self, relative):
        num_buckets = self.input_dim
        if self.bidirectional:
            num_buckets //= 2
            offset = ops.cast(relative > 0, "int32") * num_buckets
            distance = ops.abs(relative)
        else:
            offset = 0
            distance = ops.maximum(-relative, 0)
        max_exact = num_buckets // 2
        # Log-spaced buckets; the maximum keeps log away from 0 where the exact buckets apply anyway.
        scaled = ops.cast(ops.maximum(distance, max_exact), "float32") / max_exact
        scaled = ops.log(scaled) / math.log(self.max_distance / max_exact) * (num_buckets - max_exact)
        large = ops.minimum(max_exact + ops.cast(scaled, "int32"), num_buckets - 1)
        return offset + ops.where(distance < max_exact, distance, large)

    def get_config(self):
        config = super().get_config()
        config.update(max_distance=self.max_distance, bidirectional=self.bidirectional)
        return config


@keras.saving.register_keras_serializable(package="b4k3")
class DebertaRelativeEmbedding(KeepsTrainability, keras.layers.Layer):
    """DeBERTa's relative positions: the table of `2 * span` relative embeddings (layer-normalized
    when `layer_norm`) and, for a sequence, the row each (query, key) pair reads.

    The pair `(i, j)` reads row `clip(r + span, 0, 2 * span - 1)` of `r = i - j`, bucketed
    logarithmically (`log_bucket_positions`) when `position_buckets > 0`; `span` is
    `position_buckets`, or `max_relative_positions` without buckets. The attention projects the
    table itself (`p_bias='disentangled'`), so the table is returned whole rather than gathered
    per pair, which would cost `len ** 2 * output_dim`.

    Args:
        output_dim: size of each embedding (the hidden size).
        max_relative_positions: the longest distance told apart.
        position_buckets: number of buckets per direction; 0 or less for no buckets.
        layer_norm: normalize the table (Hugging Face's `norm_rel_ebd='layer_norm'`).
        epsilon: of that normalization.
        embeddings_initializer: initializer of the table.

    Call: `inputs` `(batch, len, ...)`, of which only the length is read. Returns `[table
    (2 * span, output_dim), rows (len, len) int32]`.

    Example:
        >>> table, rows = DebertaRelativeEmbedding(8, 16, position_buckets=4)(np.zeros((2, 5)))  # (8, 8), (5, 5)
    """

    def __init__(
        self,
        output_dim,
        max_relative_positions,
        position_buckets=-1,
        layer_norm=True,
        epsilon=1e-7,
        embeddings_initializer="zeros",
        **kwargs,
    ):
        check_positive_int(type(self).__name__, output_dim=output_dim, max_relative_positions=max_relative_positions)
        if position_buckets > 0 and max_relative_positions - 1 <= position_buckets // 2:
            raise ValueError(
                f"DebertaRelativeEmbedding: max_relative_positions={max_relative_positions} must exceed "
                f"position_buckets // 2 + 1 = {position_buckets // 2 + 1} (the distances kept as they are)"
            )
        super().__init__(**kwargs)
        self.output_dim = output_dim
        self.max_relative_positions = max_relative_positions
        self.position_buckets = position_buckets
        self.layer_norm = layer_norm
        self.epsilon = epsilon
        self.embeddings_initializer = keras.initializers.get(embeddings_initializer)

    @property
    def span(self):
        return self.position_buckets if self.position_buckets > 0 else self.max_relative_positions

    def build(self, input_shape):
        shape = (2 * self.span, self.output_dim)
        self.embeddings = self.add_weight(name="embeddings", shape=shape, initializer=self.embeddings_initializer)
        self.norm = None
        if self.layer_norm:
            self.norm = LayerNormalization(epsilon=self.epsilon, dtype=self.dtype_policy, name="norm")
            self.norm.build(shape)

    def call(self, inputs):
        table = ops.cast(self.embeddings, self.compute_dtype)
        if self.norm is not None:
            table = self.norm(table)
        positions = ops.arange(ops.shape(inputs)[1], dtype="int32")
        relative = positions[:, None] - positions[None, :]
        if self.position_buckets > 0:
            relative = log_bucket_positions(relative, self.position_buckets, self.max_relative_positions)
        return [table, ops.clip(relative + self.span, 0, 2 * self.span - 1)]

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_shape(self, input_shape):
        return [(2 * self.span, self.output_dim), (input_shape[1], input_shape[1])]

    def compute_output_spec(self, inputs):
        table, rows = self.compute_output_shape(inputs.shape)
        return [keras.KerasTensor(table, dtype=self.compute_dtype), keras.KerasTensor(rows, dtype="int32")]

    def get_config(self):
        config = super().get_config()
        config.update(
            output_dim=self.output_dim,
            max_relative_positions=self.max_relative_positions,
            position_buckets=self.position_buckets,
            layer_norm=self.layer_norm,
            epsilon=self.epsilon,
            embeddings_initializer=keras.initializers.serialize(self.embeddings_initializer),
        )
        return config
