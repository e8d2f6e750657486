"""The Gated Attention Unit (GAU, "Transformer Quality in Linear Time"), as GAU-alpha uses it."""

import math
import warnings

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

    With `self_attention`, one Dense (`i_dense`) gives `u`, `v` and a shared `qk`, and two
    ScaleOffsets make q and k from it. Otherwise the inputs are `[q, k, v]` and each of `u`, q, k
    and `v` has its own Dense (`u_dense`, `q_dense` from the query, `k_dense`, `v_dense`). With
    `factorization` (without `self_attention`, as in bert4keras3) `v` is a linear projection only
    `key_size` wide, widened to `units` after the attention by `vW_dense`. The sublayers carry
    bert4keras3's names, so its `.weights.h5` files load.

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
        factorization: low-rank value path (see above; bert4keras3 ignored it with `self_attention`,
            and so does b4k3, with a warning).

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
        if factorization and self_attention:
            warnings.warn(
                "GatedAttentionUnit: factorization=True has no effect with self_attention=True (bert4keras3 "
                "ignored it too): the shared projection keeps v `units` wide. Pass self_attention=False to factorize.",
                stacklevel=2,
            )
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
        if self.self_attention:
            width = 2 * self.units + self.key_size
            self.i_dense = self._dense("i_dense", width, q_shape, self.activation)
            qk_shape = (*q_shape[:-1], self.key_size)
            self.q_scaleoffset = ScaleOffset(offset=self.use_bias, name="q_scaleoffset", dtype=self.dtype_policy)
            self.k_scaleoffset = ScaleOffset(offset=self.use_bias, name="k_scaleoffset", dtype=self.dtype_policy)
            self.q_scaleoffset.build(qk_shape)
            self.k_scaleoffset.build(qk_shape)
        else:
            self.u_dense = self._dense("u_dense", self.units, q_shape, self.activation)
            self.q_dense = self._dense("q_dense", self.key_size, q_shape, self.activation)
            self.k_dense = self._dense("k_dense", self.key_size, shapes[1], self.activation)
            if self.factorization:
                self.v_dense = self._dense("v_dense", self.key_size, shapes[2], use_bias=False)
                values_shape = (*q_shape[:-1], self.key_size)
                self.vW_dense = self._dense("vW_dense", self.units, values_shape, use_bias=False)
            else:
                self.v_dense = self._dense("v_dense", self.units, shapes[2], self.activation)
        self.o_dense = self._dense("o_dense", q_shape[-1], (*q_shape[:-1], self.units))

    def _dense(self, name, units, input_shape, activation=None, use_bias=None):
        return dense_sublayer(
            self,
            name,
            units,
            input_shape,
            use_bias=self.use_bias if use_bias is None else use_bias,
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
            u, v, qk = ops.split(self.i_dense(inputs[0]), [self.units, 2 * self.units], axis=-1)
            q, k = self.q_scaleoffset(qk), self.k_scaleoffset(qk)
        else:
            key_mask = masks[2] if key_mask is None and len(masks) > 2 else key_mask
            u, q = self.u_dense(inputs[0]), self.q_dense(inputs[0])
            k, v = self.k_dense(inputs[1]), self.v_dense(inputs[2])
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
        if self.factorization and not self.self_attention:
            values = self.vW_dense(values)
        return self.o_dense(u * values)

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
