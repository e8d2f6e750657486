"""The Gated Attention Unit (GAU, "Transformer Quality in Linear Time"), as GAU-alpha uses it."""

import math

import keras

from b4k3_layers.input_shapes import as_shape_list
from b4k3_layers.norms import ScaleOffset
from b4k3_layers.rotary import RotaryEmbedding
from b4k3_layers.sublayers import dense_sublayer
from b4k3_layers.trainability import KeepsTrainability
from b4k3_ops import ops
from b4k3_ops.activations import get_activation
from b4k3_ops.attention_scores import check_normalization
from b4k3_ops.backend import apply_rotary_position_embeddings, attention_normalize


@keras.saving.register_keras_serializable(package="b4k3")
class GatedAttentionUnit(KeepsTrainability, keras.layers.Layer):
    """One-head attention whose output gates a wide value path: `o(u * (A @ v))`.

    With `self_attention`, one Dense gives `u`, `v` and a shared `qk`, and two ScaleOffsets make q
    and k from it. Otherwise the inputs are `[q, k, v]`: `u` and q come from the query, k from the
    key and `v` from the value, each through its own Dense. With `factorization`, `v` is only
    `key_size` wide and a further Dense (`vw_dense`) widens `A @ v` to `units`.

    Args:
        units: width of u and v.
        key_size: width of q and k.
        activation: of the input projections.
        use_bias: biases in the projections (and offsets in the q/k ScaleOffsets).
        normalization: `'squared_relu'` (default), `'softmax'`, `'softmax-fp32'`, `'softmax_plus'`.
        self_attention: q, k and v from one input (see above).
        attention_scale: divide logits by sqrt(key_size).
        attention_dropout: dropout rate on the attention weights.
        kernel_initializer: of the projections.
        factorization: low-rank value path (see above).

    Call: `layer(inputs, mask=None, a_bias=None, p_bias=None, key_mask=None, attention_bias=None)`;
    `inputs` is `[x]` or x (or `[q, k, v]` without self_attention), then the attention bias if
    `a_bias`, then the sinusoidal table if `p_bias='rotary'` (bert4keras3's list form). Without a
    table, `p_bias='rotary'` rotates q and k by their positions here (interleaved pairs, as the
    table would). `key_mask` `(batch, k_len)` (default: the keys' Keras mask) and
    `attention_bias` (a bool mask or an additive bias, e.g. causal) are the keyword form of the mask
    and the bias, as `MultiHeadAttention` takes them.
    """

    def __init__(
        self,
        units,
        key_size,
        activation="swish",
        use_bias=True,
        normalization="squared_relu",
        self_attention=True,
        attention_scale=True,
        attention_dropout=None,
        kernel_initializer="glorot_uniform",
        factorization=False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        check_normalization(normalization)
        self.units = units
        self.key_size = key_size
        self.activation = get_activation(activation)
        self.use_bias = use_bias
        self.normalization = normalization
        self.self_attention = self_attention
        self.attention_scale = attention_scale
        self.attention_dropout = attention_dropout
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.factorization = factorization
        self.supports_masking = True
        self.dropout = keras.layers.Dropout(attention_dropout) if attention_dropout else None
        self.rotary = RotaryEmbedding(interleaved=True)

    def build(self, input_shape):
        shapes = as_shape_list(input_shape)
        q_shape = shapes[0]
        value_width = self.key_size if self.factorization else self.units
        if self.self_attention:
            self.i_dense = self._dense("i_dense", self.units + value_width + self.key_size, q_shape, self.activation)
        else:
            self.i_dense = self._dense("i_dense", self.units + self.key_size, q_shape, self.activation)
            self.k_dense = self._dense("k_dense", self.key_size, shapes[1], self.activation)
            self.v_dense = self._dense("v_dense", value_width, shapes[2], self.activation)
        qk_shape = (*q_shape[:-1], self.key_size)
        self.q_scaleoffset = ScaleOffset(offset=self.use_bias, name="q_scaleoffset", dtype=self.dtype_policy)
        self.k_scaleoffset = ScaleOffset(offset=self.use_bias, name="k_scaleoffset", dtype=self.dtype_policy)
        self.q_scaleoffset.build(qk_shape)
        self.k_scaleoffset.build(qk_shape)
        if self.factorization:
            self.vw_dense = self._dense("vw_dense", self.units, (*q_shape[:-1], self.key_size))
        self.o_dense = self._dense("o_dense", q_shape[-1], (*q_shape[:-1], self.units))

    def _dense(self, name, units, input_shape, activation=None):
        return dense_sublayer(
            self,
            name,
            units,
            input_shape,
            use_bias=self.use_bias,
            kernel_initializer=self.kernel_initializer,
            activation=activation,
        )

    def call(self, inputs, mask=None, a_bias=None, p_bias=None, key_mask=None, attention_bias=None, training=None):
        if p_bias not in (None, "rotary"):
            raise ValueError(f"GatedAttentionUnit supports p_bias='rotary' or None, got {p_bias!r}")
        inputs = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
        masks = list(mask) if isinstance(mask, (list, tuple)) else [mask]
        n = 1 if self.self_attention else 3
        if self.self_attention:
            key_mask = masks[0] if key_mask is None else key_mask
            u, v, qk = ops.split(self.i_dense(inputs[0]), self._split_points(), axis=-1)
            q, k = self.q_scaleoffset(qk), self.k_scaleoffset(qk)
        else:
            key_mask = masks[2] if key_mask is None and len(masks) > 2 else key_mask
            u, q = ops.split(self.i_dense(inputs[0]), [self.units], axis=-1)
            q, k = self.q_scaleoffset(q), self.k_scaleoffset(self.k_dense(inputs[1]))
            v = self.v_dense(inputs[2])
        bias = attention_bias
        if a_bias:
            bias, n = inputs[n], n + 1
        if p_bias == "rotary" and len(inputs) > n:
            q, k = apply_rotary_position_embeddings(inputs[n], q, k)
        elif p_bias == "rotary":
            q, k = self.rotary(q), self.rotary(k)

        scores = ops.einsum("bmd,bnd->bmn", q, k)
        if self.attention_scale:
            scores = scores / math.sqrt(self.key_size)
        weights = attention_normalize(scores, key_mask, -1, self.normalization, bias)
        if self.dropout is not None:
            weights = self.dropout(weights, training=training)
        values = ops.einsum("bmn,bnd->bmd", weights, v)
        if self.factorization:
            values = self.vw_dense(values)
        return self.o_dense(u * values)

    def _split_points(self):
        value_width = self.key_size if self.factorization else self.units
        return [self.units, self.units + value_width]

    def compute_mask(self, inputs, mask=None):
        return mask[0] if isinstance(mask, (list, tuple)) else mask

    def compute_output_shape(self, input_shape):
        return as_shape_list(input_shape)[0]

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "units": self.units,
                "key_size": self.key_size,
                "activation": keras.activations.serialize(self.activation),
                "use_bias": self.use_bias,
                "normalization": self.normalization,
                "self_attention": self.self_attention,
                "attention_scale": self.attention_scale,
                "attention_dropout": self.attention_dropout,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
                "factorization": self.factorization,
            }
        )
        return config
