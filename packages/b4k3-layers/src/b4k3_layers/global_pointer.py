"""GlobalPointer and Efficient GlobalPointer: span scores for named-entity recognition, one logit
per (start, end) pair and entity type (Su Jianlin, https://kexue.fm/archives/8373 and /8877)."""

import keras

from b4k3_layers.sublayers import dense_sublayer
from b4k3_layers.trainability import KeepsTrainability
from b4k3_ops import ops
from b4k3_ops.backend import apply_rotary_position_embeddings, sequence_masking, sinusoidal_embeddings
from b4k3_ops.checks import check_positive_int


@keras.saving.register_keras_serializable(package="b4k3")
class GlobalPointer(KeepsTrainability, keras.layers.Layer):
    """Scores every span `(start, end)` of a sequence for each of `heads` entity types.

    Each head projects the tokens to a start vector `q` and an end vector `k`; the span `(m, n)`
    scores `q_m . k_n / sqrt(head_size)`. With `RoPE`, q and k are first rotated by their
    positions (interleaved "su" RoPE), so the score also sees the span's length. Spans over padding
    (on either end) and, with `tril_mask`, spans that end before they start score `-inf` (a large
    finite value, see `b4k3_ops.backend.infinity`), so a multilabel loss can ignore them.

    Args:
        heads: number of entity types.
        head_size: size of q and k per head (even with RoPE).
        RoPE: rotate q and k by their positions.
        use_bias: whether the projection has a bias.
        tril_mask: mask the spans with end < start (the lower triangle).
        kernel_initializer: initializer of the projection.

    Call arguments:
        inputs: `(batch, seq_len, hidden)`.
        mask: `(batch, seq_len)`, True at real tokens; Keras passes the inputs' mask by itself.

    Returns `(batch, heads, seq_len, seq_len)` logits.

    Example:
        >>> GlobalPointer(heads=3, head_size=16)(np.ones((2, 10, 32)))  # (2, 3, 10, 10)
    """

    def __init__(
        self, heads, head_size, RoPE=True, use_bias=True, tril_mask=True, kernel_initializer="lecun_normal", **kwargs
    ):
        name = type(self).__name__
        check_positive_int(name, heads=heads, head_size=head_size)
        if RoPE and head_size % 2:
            raise ValueError(f"{name}: `head_size` must be even when `RoPE=True`, got {head_size}")
        super().__init__(**kwargs)
        self.heads = heads
        self.head_size = head_size
        self.RoPE = RoPE
        self.use_bias = use_bias
        self.tril_mask = tril_mask
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

    def dense_layer(self, units, name, input_shape):
        return dense_sublayer(
            self, name, units, input_shape, use_bias=self.use_bias, kernel_initializer=self.kernel_initializer
        )

    def build(self, input_shape):
        self.dense = self.dense_layer(self.heads * self.head_size * 2, "dense", input_shape)

    def rotate(self, q, k):
        """q and k, `(batch, seq_len, ..., head_size)`, rotated by their positions if `RoPE`."""
        if not self.RoPE:
            return q, k
        positions = ops.arange(ops.shape(q)[1], dtype="float32")[None]
        return apply_rotary_position_embeddings(sinusoidal_embeddings(positions, self.head_size), q, k)

    def span_logits(self, inputs):
        """`(batch, heads, seq_len, seq_len)` scores before masking."""
        heads = ops.reshape(self.dense(inputs), (self.heads, 2 * self.head_size), -1)
        q, k = self.rotate(heads[..., : self.head_size], heads[..., self.head_size :])
        return ops.einsum("bmhd,bnhd->bhmn", q, k) / self.head_size**0.5

    def call(self, inputs, mask=None):
        logits = self.span_logits(inputs)
        keep = None
        if self.tril_mask:
            positions = ops.arange(ops.shape(logits)[-1])
            keep = positions[:, None] <= positions[None, :]  # start <= end
        return sequence_masking(logits, mask, "-inf", [2, 3], bias=keep)

    def compute_mask(self, inputs, mask=None):
        # The padding is masked inside the logits; no mask passes on.
        return None

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.heads, input_shape[1], input_shape[1])

    def get_config(self):
        config = super().get_config()
        config.update(
            heads=self.heads,
            head_size=self.head_size,
            RoPE=self.RoPE,
            use_bias=self.use_bias,
            tril_mask=self.tril_mask,
            kernel_initializer=keras.initializers.serialize(self.kernel_initializer),
        )
        return config


@keras.saving.register_keras_serializable(package="b4k3")
class EfficientGlobalPointer(GlobalPointer):
    """GlobalPointer with far fewer parameters: one q/k projection shared by all entity types, and
    a per-type start bias and end bias (Su Jianlin's Efficient GlobalPointer).

    `p_dense` gives `2 * head_size` features per token, q and k interleaved (`[::2]`, `[1::2]`);
    `q_dense`, applied to those features, gives each type's biases (halved): output `2h` is the end
    bias of type `h`, output `2h + 1` its start bias. The span `(m, n)` of type `h` scores
    `q_m . k_n / sqrt(head_size) + start_bias[h, m] + end_bias[h, n]`.

    Args and call arguments: those of `GlobalPointer`.

    Example:
        >>> EfficientGlobalPointer(heads=3, head_size=16)(np.ones((2, 10, 32)))  # (2, 3, 10, 10)
    """

    def build(self, input_shape):
        self.p_dense = self.dense_layer(self.head_size * 2, "p_dense", input_shape)
        self.q_dense = self.dense_layer(self.heads * 2, "q_dense", (*input_shape[:-1], self.head_size * 2))

    def span_logits(self, inputs):
        features = self.p_dense(inputs)
        q, k = self.rotate(features[..., ::2], features[..., 1::2])
        logits = ops.einsum("bmd,bnd->bmn", q, k) / self.head_size**0.5
        bias = ops.transpose(self.q_dense(features), (0, 2, 1)) / 2  # (batch, 2 * heads, seq_len)
        end_bias, start_bias = bias[:, 0::2, None, :], bias[:, 1::2, :, None]
        return logits[:, None] + start_bias + end_bias
