"""Multi-head attention of bert4keras3: one layer for every family, from BERT to Llama and Gemma.

Grouped-query heads, interleaved ("su") or half-split ("keras") rotary positions, NEZHA, T5 and
DeBERTa (disentangled) relative positions, four normalizations, Gemma 2's logit soft-capping, and
a KV cache written at an index, one for the batch or one per row (static shapes, so it runs inside
a compiled decoding loop on every backend).
"""

import math
import numbers

import keras

from b4k3_layers.input_shapes import as_shape_list
from b4k3_layers.rotary import RotaryEmbedding
from b4k3_layers.sublayers import dense_sublayer
from b4k3_layers.trainability import EinsumDense, KeepsTrainability
from b4k3_ops import ops
from b4k3_ops.attention_scores import check_normalization
from b4k3_ops.backend import align, apply_rotary_position_embeddings, attention_normalize, flash_attention_enabled
from b4k3_ops.cache_writes import write_token_rows

GQA_MODES = ("llama", "gemma")
ROPE_MODES = ("su", "keras")
POSITION_BIASES = ("rotary", "typical_relative", "t5_relative", "disentangled")
# DeBERTa's disentangled terms: content-to-position and position-to-content.
DISENTANGLED_TERMS = ("c2p", "p2c")


def is_positive_number(value):
    """True for a positive int or float (not a bool)."""
    return not isinstance(value, bool) and isinstance(value, numbers.Real) and value > 0


@keras.saving.register_keras_serializable(package="b4k3")
class MultiHeadAttention(KeepsTrainability, keras.layers.Layer):
    """Multi-head attention with bert4keras3's parameters and calling forms.

    `heads` is the number of key/value heads and `query_head` the number of query heads (grouped-
    query attention when larger; it must be a multiple of `heads`). Query head `i` attends with
    key/value head `i // (query_head // heads)`, as in Llama and Gemma; both `GQA_mode`s compute
    exactly that and differ only in how the predecessor laid the computation out.

    Args:
        heads: number of key/value heads (`num_key_value_heads`).
        head_size: size of each value head.
        out_dim: output size; default `heads * head_size`, as bert4keras3 (`heads` being the
            key/value heads: give `out_dim` for grouped-query attention).
        key_size: size of each query/key head; default `head_size`.
        use_bias: biases in the q/k/v projections.
        normalization: `'softmax'`, `'softmax-fp32'`, `'softmax_plus'` or `'squared_relu'`.
        attention_scale: True multiplies the logits by `1 / sqrt(key_size)`, False leaves them
            unscaled, a positive number multiplies them by that number (Gemma 2's
            `query_pre_attn_scalar ** -0.5`, which is not `key_size ** -0.5` in every size).
        attention_dropout: dropout rate on the attention weights.
        return_attention_scores: also return the logits (what RealFormer adds to the next layer).
        kernel_initializer: initializer of the projections.
        o_bias: bias in the output projection; default `use_bias`.
        query_head: number of query heads (`num_query_heads`); default `heads`.
        use_EinsumDense: project with `EinsumDense` (Gemma's layout) instead of `Dense`.
        rope_mode: `'su'` (interleaved pairs, RoFormer's) or `'keras'` (half-split, Llama's), both
            computed here from the positions, `max_wavelength` and `scaling_factor`; `'su'` takes a
            sinusoidal table instead when the caller passes one.
        max_wavelength, scaling_factor: of the rotary embedding.
        GQA_mode: `'llama'` or `'gemma'` (same result); `None`/`False` accepted when not grouped.
        logit_soft_cap: None, or a positive number `c`: the scaled logits become
            `tanh(logits / c) * c` before the bias and mask are applied (Gemma 2's
            `attn_logit_softcapping`, which keeps logits in (-c, c)). The fused flash path is not
            taken when set.
        rope_scaling: Hugging Face's rope scaling dict for the `'keras'` rotary embedding
            (rope_type 'linear' or 'llama3'; see `RotaryEmbedding`).
        flatten_o_dense: bert4keras3's choice between two ways of merging the heads before the
            output projection (`flatten` or `reshape`), which give the same result; kept in the
            config, with no effect.
        pos_att_type: DeBERTa's disentangled terms that `p_bias='disentangled'` adds to the
            logits, among `'c2p'` (each query against the keys' relative embeddings) and `'p2c'`
            (each key against the queries'); both read the relative embedding of the pair's
            distance. Not with grouped-query heads.
        share_att_key: project the relative embeddings with the query and key projections
            (DeBERTa-v3); False gives them projections of their own, `pos_k_dense` (for 'c2p') and
            `pos_q_dense` (for 'p2c').

    Call, keyword form: `layer(query, key=None, value=None, key_mask=None, attention_bias=None,
    p_bias=None, position_bias=None, cache=None, cache_index=None)`. `attention_bias` is a bool
    mask or an additive bias broadcastable to `(batch, heads, q_len, k_len)` (e.g. causal);
    `p_bias` is `'rotary'`, `'typical_relative'` or `'t5_relative'` with `position_bias` its
    table (a relative one `(q_len, k_len, ...)`, or `(batch, q_len, k_len, ...)` when each row
    decodes at its own positions), or `'disentangled'` with `position_bias` the pair `[relative
    embeddings (rows, hidden), row of each (query, key) pair (q_len, k_len) int]` of
    `DebertaRelativeEmbedding` (self-attention: q_len == k_len); `cache` is `(batch, 2, max_len,
    heads, head_size)` (keys, values), written at `cache_index` when given, and returned updated.
    `cache_index` is a Python int or a scalar tensor (every row writes its new tokens from there),
    or a `(batch,)` int tensor: row `b` writes its token `t` at `cache_index[b] + t`, and its
    rotary positions start at `cache_index[b]`, so the rows of a batch can decode at different
    positions. A position outside the cache is not
    written. (With rope_mode `'su'` and a table given, the table sets the positions.)

    Call, bert4keras3's list form: `layer([q, k, v, (bias), (rotary table), (cache), (index),
    (relative table)], a_bias=bool, p_bias=..., use_cache=bool, is_cache_update_index=bool)`.

    Returns the output; then the logits if `return_attention_scores`; then the cache if one was
    given.
    """

    def __init__(
        self,
        heads,
        head_size,
        out_dim=None,
        key_size=None,
        use_bias=True,
        normalization="softmax",
        attention_scale=True,
        attention_dropout=None,
        return_attention_scores=False,
        kernel_initializer="glorot_uniform",
        o_bias=None,
        query_head=None,
        use_EinsumDense=False,
        rope_mode="su",
        max_wavelength=10_000.0,
        scaling_factor=1.0,
        GQA_mode="llama",
        logit_soft_cap=None,
        rope_scaling=None,
        flatten_o_dense=True,
        pos_att_type=(),
        share_att_key=True,
        **kwargs,
    ):
        super().__init__(**kwargs)
        query_head = heads if query_head is None else query_head
        if query_head % heads:
            raise ValueError(f"query_head={query_head} must be a multiple of heads={heads} (the key/value heads)")
        check_normalization(normalization)
        if rope_mode not in ROPE_MODES:
            raise ValueError(f"rope_mode must be one of {ROPE_MODES}, got {rope_mode!r}")
        if GQA_mode not in (*GQA_MODES, None, False):
            raise ValueError(f"GQA_mode must be one of {GQA_MODES}, got {GQA_mode!r}")
        if not (isinstance(attention_scale, bool) or is_positive_number(attention_scale)):
            raise ValueError(f"attention_scale must be True, False or a positive number, got {attention_scale!r}")
        if not (logit_soft_cap is None or is_positive_number(logit_soft_cap)):
            raise ValueError(f"logit_soft_cap must be None or a positive number, got {logit_soft_cap!r}")
        pos_att_type = tuple(pos_att_type or ())
        unknown = [term for term in pos_att_type if term not in DISENTANGLED_TERMS]
        if unknown:
            raise ValueError(f"pos_att_type entries must be among {DISENTANGLED_TERMS}, got {unknown}")
        if pos_att_type and query_head != heads:
            raise ValueError(
                f"pos_att_type needs one key head per query head, got heads={heads}, query_head={query_head}"
            )
        if rope_scaling is not None and rope_mode != "keras":
            raise ValueError(
                f"rope_scaling applies to rope_mode='keras' (with rope_mode={rope_mode!r} the caller passes the "
                f"rotary table), got rope_scaling={rope_scaling!r}"
            )
        self.heads = heads
        self.head_size = head_size
        self.out_dim = out_dim or heads * head_size
        self.key_size = key_size or head_size
        self.use_bias = use_bias
        self.normalization = normalization
        self.attention_scale = attention_scale if isinstance(attention_scale, bool) else float(attention_scale)
        self.attention_dropout = attention_dropout
        self.return_attention_scores = return_attention_scores
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.o_bias = use_bias if o_bias is None else o_bias
        self.query_head = query_head
        self.use_EinsumDense = use_EinsumDense
        self.rope_mode = rope_mode
        self.max_wavelength = max_wavelength
        self.scaling_factor = scaling_factor
        self.GQA_mode = GQA_mode
        self.logit_soft_cap = None if logit_soft_cap is None else float(logit_soft_cap)
        self.rope_scaling = None if rope_scaling is None else dict(rope_scaling)
        self.flatten_o_dense = bool(flatten_o_dense)
        self.pos_att_type = pos_att_type
        self.share_att_key = bool(share_att_key)
        self.supports_masking = True
        self.dropout = keras.layers.Dropout(attention_dropout) if attention_dropout else None
        # 'su' rotates by the caller's sinusoidal table when one is given (bert4keras3's form), else
        # from the positions here, as 'keras' always does.
        self.rotary = RotaryEmbedding(
            max_wavelength, scaling_factor, rope_scaling=rope_scaling, interleaved=rope_mode == "su"
        )

    @property
    def num_query_heads(self):
        return self.query_head

    @property
    def num_key_value_heads(self):
        return self.heads

    def build(self, input_shape):
        shapes = as_shape_list(input_shape)
        q_shape, k_shape, v_shape = shapes[:3] if len(shapes) > 1 else shapes * 3
        out_dim = self.out_dim
        if self.use_EinsumDense:
            bias, o_bias = ("nh" if self.use_bias else None), ("d" if self.o_bias else None)
            projections = {
                "query": ("btd,ndh->btnh", (None, self.query_head, self.key_size), bias, q_shape),
                "key": ("btd,ndh->btnh", (None, self.heads, self.key_size), bias, k_shape),
                "value": ("btd,ndh->btnh", (None, self.heads, self.head_size), bias, v_shape),
            }
            self.q_dense, self.k_dense, self.v_dense = (
                self._einsum_dense(name, equation, shape, bias_axes, input_shape)
                for name, (equation, shape, bias_axes, input_shape) in projections.items()
            )
            self.o_dense = self._einsum_dense(
                "attention_output",
                "btnh,nhd->btd",
                (None, out_dim),
                o_bias,
                (*q_shape[:-1], self.query_head, self.head_size),
            )
        else:
            self.q_dense = self._dense("q_dense", self.key_size * self.query_head, self.use_bias, q_shape)
            self.k_dense = self._dense("k_dense", self.key_size * self.heads, self.use_bias, k_shape)
            self.v_dense = self._dense("v_dense", self.head_size * self.heads, self.use_bias, v_shape)
            o_input = (*q_shape[:-1], self.head_size * self.query_head)
            self.o_dense = self._dense("o_dense", out_dim, self.o_bias, o_input)
        if not self.share_att_key:
            # DeBERTa-v2's own projections of the relative embeddings (rows, hidden).
            table_shape = (None, q_shape[-1])
            if "c2p" in self.pos_att_type:
                self.pos_k_dense = self._dense("pos_k_dense", self.key_size * self.heads, True, table_shape)
            if "p2c" in self.pos_att_type:
                self.pos_q_dense = self._dense("pos_q_dense", self.key_size * self.heads, True, table_shape)

    def projection_roles(self):
        """`{sublayer attribute: 'in' or 'out'}`: the projections into heads and the one back, for
        tensor-parallel sharding (`b4k3_models.get_layout_map`)."""
        return {"q_dense": "in", "k_dense": "in", "v_dense": "in", "o_dense": "out"}

    def _dense(self, name, units, use_bias, input_shape):
        initializer = self.kernel_initializer
        return dense_sublayer(self, name, units, input_shape, use_bias=use_bias, kernel_initializer=initializer)

    def _einsum_dense(self, name, equation, output_shape, bias_axes, input_shape):
        dense = EinsumDense(
            equation,
            output_shape,
            bias_axes=bias_axes,
            kernel_initializer=self.kernel_initializer,
            name=name,
            dtype=self.dtype_policy,
        )
        dense.build(input_shape)
        return dense

    def call(
        self,
        inputs,
        mask=None,
        key=None,
        value=None,
        key_mask=None,
        attention_bias=None,
        p_bias=None,
        position_bias=None,
        cache=None,
        cache_index=None,
        a_bias=None,
        use_cache=False,
        is_cache_update_index=None,
        training=None,
    ):
        if p_bias not in (None, *POSITION_BIASES):
            raise ValueError(f"p_bias must be one of {POSITION_BIASES} or None, got {p_bias!r}")
        if p_bias == "disentangled" and not (isinstance(position_bias, (list, tuple)) and len(position_bias) == 2):
            raise ValueError(
                "p_bias='disentangled' takes position_bias=[relative embeddings, row of each pair] "
                f"(DebertaRelativeEmbedding's outputs), got {type(position_bias).__name__}"
            )
        if isinstance(inputs, (list, tuple)):
            query, key, value, key_mask, attention_bias, position_bias, cache, cache_index = self._unpack_list(
                inputs, mask, a_bias, p_bias, use_cache, is_cache_update_index
            )
        else:
            query = inputs
            key = query if key is None else key
            value = key if value is None else value
        return self._attend(
            query, key, value, key_mask, attention_bias, p_bias, position_bias, cache, cache_index, training
        )

    def _unpack_list(self, inputs, mask, a_bias, p_bias, use_cache, is_cache_update_index):
        """bert4keras3's list form: `[q, k, v, (bias), (rotary), (cache), (index), (relative)]`."""
        query, key, value = inputs[:3]
        rest = list(inputs[3:])
        attention_bias = rest.pop(0) if a_bias else None
        position_bias = None
        if p_bias == "rotary" and (self.rope_mode == "su" or use_cache):
            position_bias = rest.pop(0)  # with rope_mode='keras' and a cache, a placeholder
        cache = rest.pop(0) if use_cache else None
        cache_index = rest.pop(0) if use_cache and is_cache_update_index else None
        if p_bias in ("typical_relative", "t5_relative"):
            position_bias = rest.pop(0)
        if rest:
            raise ValueError(f"MultiHeadAttention got {len(rest)} unused inputs; check a_bias, p_bias and use_cache")
        key_mask = None
        if isinstance(mask, (list, tuple)) and len(mask) > 2:
            key_mask = mask[2] if mask[2] is not None else mask[1]
        return query, key, value, key_mask, attention_bias, position_bias, cache, cache_index

    def _attend(self, query, key, value, key_mask, attention_bias, p_bias, position_bias, cache, cache_index, training):
        groups = self.query_head // self.heads
        qw = self._project(self.q_dense, query, self.query_head, self.key_size)
        index = None if cache_index is None else self._cache_index(cache_index)
        kw = vw = None  # a read-only cache (cross-attention's, `key_value_cache`) holds them: not projected again
        if cache is None or index is not None:
            kw = self._project(self.k_dense, key, self.heads, self.key_size)
            vw = self._project(self.v_dense, value, self.heads, self.head_size)

        if p_bias == "rotary":
            if self.rope_mode == "su" and position_bias is not None:
                rotate = lambda x: apply_rotary_position_embeddings(position_bias, x)  # noqa: E731
            else:
                rotate = lambda x: self.rotary(x, start_index=0 if index is None else index)  # noqa: E731
            qw, kw = rotate(qw), None if kw is None else rotate(kw)

        if cache is not None:
            if self.key_size != self.head_size:
                raise ValueError(
                    f"A KV cache needs key_size == head_size, got key_size={self.key_size}, head_size={self.head_size}"
                )
            if index is not None:
                new = ops.cast(ops.stack([kw, vw], axis=1), cache.dtype)
                if len(index.shape):
                    cache = self._write_rows(cache, index, new)
                else:
                    cache = ops.slice_update(cache, [0, 0, index, 0, 0], new)
            kw, vw = ops.cast(cache[:, 0], qw.dtype), ops.cast(cache[:, 1], qw.dtype)

        if self._use_flash_attention(p_bias, training):
            o = self._flash_attention(qw, kw, vw, key_mask, attention_bias, groups)
            scores = None
        else:
            # Logits (batch, query_head, q_len, k_len); query head k * groups + g uses key/value head k.
            # Batched matmuls over (batch, key/value head), the keys and values transposed to
            # (batch, head, k_len, size): torch's einsum copied the cached keys into a (size, k_len)
            # layout instead, three times slower, most of a decode step's time outside the matmuls.
            grouped_q = ops.flatten(ops.transpose(ops.reshape(qw, (self.heads, groups), 2), (0, 2, 3, 1, 4)), 2, 4)
            keys, values = ops.transpose(kw, (0, 2, 1, 3)), ops.transpose(vw, (0, 2, 1, 3))
            scores = ops.matmul(grouped_q, ops.swapaxes(keys, 2, 3))  # (batch, heads, groups * q_len, k_len)
            scores = ops.flatten(ops.reshape(scores, (groups, -1), 2), 1, 3)
            if p_bias == "typical_relative":
                # (q_len, k_len, head_size), or (batch, q_len, k_len, head_size) with a row's own positions.
                batched = len(position_bias.shape) == 4
                scores = scores + ops.einsum("bqhd,bqkd->bhqk" if batched else "bqhd,qkd->bhqk", qw, position_bias)
            elif p_bias == "t5_relative":
                # (q_len, k_len, heads), or (batch, q_len, k_len, heads) with a row's own positions.
                if len(position_bias.shape) == 4:
                    scores = scores + ops.transpose(position_bias, (0, 3, 1, 2))
                else:
                    scores = scores + ops.expand_dims(ops.transpose(position_bias, (2, 0, 1)), 0)
            elif p_bias == "disentangled":
                scores = scores + self._disentangled_scores(qw, kw, *position_bias, ops.shape(scores))
            if self.attention_scale is True:
                scores = scores / math.sqrt(self.key_size)
            elif self.attention_scale:
                scores = scores * self.attention_scale
            if self.logit_soft_cap is not None:
                scores = ops.tanh(scores / self.logit_soft_cap) * self.logit_soft_cap
            if attention_bias is not None and len(attention_bias.shape) == 3:
                attention_bias = align(attention_bias, [0, 2, 3], 4)
            weights = attention_normalize(scores, key_mask, -1, self.normalization, attention_bias)
            if self.dropout is not None:
                weights = self.dropout(weights, training=training)
            grouped_weights = ops.flatten(ops.reshape(weights, (self.heads, groups), 1), 2, 4)
            o = ops.reshape(ops.matmul(grouped_weights, values), (groups, -1), 2)  # (batch, heads, groups, q_len, size)
            o = ops.flatten(ops.transpose(o, (0, 3, 1, 2, 4)), 2, 4)
            if p_bias == "typical_relative":
                o = o + ops.einsum("bhqk,bqkd->bqhd" if batched else "bhqk,qkd->bqhd", weights, position_bias)

        o = self.o_dense(o if self.use_EinsumDense else ops.flatten(o, 2))
        outputs = [o]
        if self.return_attention_scores:
            outputs.append(scores)
        if cache is not None:
            outputs.append(cache)
        return outputs[0] if len(outputs) == 1 else outputs

    def _disentangled_scores(self, qw, kw, table, rows, shape):
        """DeBERTa's 'c2p' and 'p2c' logits `(batch, heads, q_len, k_len)`: query `i` against the
        relative key of row `rows[i, j]`, and key `j` against the relative query of that row.

        Each side is first scored against every row of the table, `(batch, heads, len, rows)`, then
        the pair's row is gathered: far cheaper than a vector per pair. Row `rows[i, j]` is the
        distance `i - j` as 'p2c' reads it from key `j`'s side too (buckets are symmetric)."""
        scores = 0
        rows = ops.cast(rows, "int32")
        if "c2p" in self.pos_att_type:
            position_keys = self._project_table(self.k_dense if self.share_att_key else self.pos_k_dense, table)
            by_row = ops.einsum("bqhd,rhd->bhqr", qw, position_keys)
            scores = scores + ops.take_along_axis(by_row, ops.broadcast_to(rows, shape), axis=3)
        if "p2c" in self.pos_att_type:
            position_queries = self._project_table(self.q_dense if self.share_att_key else self.pos_q_dense, table)
            by_row = ops.einsum("bkhd,rhd->bhkr", kw, position_queries)
            gathered = ops.take_along_axis(by_row, ops.broadcast_to(ops.transpose(rows), shape), axis=3)
            scores = scores + ops.transpose(gathered, (0, 1, 3, 2))
        return scores

    def _project_table(self, dense, table):
        """The relative embeddings `(rows, hidden)` projected to `(rows, heads, key_size)`."""
        return self._project(dense, table[None], self.heads, self.key_size)[0]

    def key_value_cache(self, key, value=None):
        """The read-only cache `(batch, 2, len, heads, head_size)` of a fixed `key` / `value`
        (default `key`), e.g. an encoder's output for cross-attention: computed once, then passed
        as `cache` without `cache_index` at every step, which projects them no more."""
        value = key if value is None else value
        keys = self._project(self.k_dense, key, self.heads, self.key_size)
        values = self._project(self.v_dense, value, self.heads, self.head_size)
        return ops.stack([keys, values], axis=1)

    @staticmethod
    def _cache_index(cache_index):
        """`cache_index` as int32: a scalar, or a `(batch,)` vector of one index per row. A `(1,)`
        index (bert4keras3's list form passes one) is the scalar it holds."""
        index = ops.cast(cache_index, "int32")
        if len(index.shape) > 1 or (len(index.shape) == 1 and index.shape[0] == 1):
            if any(size != 1 for size in index.shape):
                raise ValueError(f"cache_index must be a scalar or a (batch,) vector, got shape {index.shape}")
            return ops.reshape(index, ())
        return index

    @staticmethod
    def _write_rows(cache, index, new):
        """Writes `new` `(batch, 2, T, heads, size)` into `cache` `(batch, 2, L, heads, size)`, token
        `t` of row `b` at position `index[b] + t`; a token that falls outside the cache is not
        written. The values are copied exactly in any dtype, and the shapes stay static.

        A decode step (`T == 1`) scatters each row's token (`write_token_rows`: in place on torch
        within a generation loop). Longer writes (rare: the prefill writes at a scalar index) read,
        at each position, the token that lands on it (`l - index[b]`): a gather and a select.
        """
        length, steps = ops.shape(cache)[2], ops.shape(new)[2]
        if steps == 1:
            return write_token_rows(cache, index, new)
        token = ops.arange(length, dtype="int32")[None] - index[:, None]  # (batch, L)
        written = ops.logical_and(token >= 0, token < steps)
        token = ops.clip(token, 0, steps - 1)[:, None, :, None, None]
        gathered = ops.take_along_axis(new, token, axis=2)
        return ops.where(written[:, None, :, None, None], gathered, cache)

    def _project(self, dense, x, heads, size):
        """(batch, len, dim) -> (batch, len, heads, size)."""
        projected = dense(x)
        return projected if self.use_EinsumDense else ops.reshape(projected, (heads, size), -1)

    def _use_flash_attention(self, p_bias, training):
        """FLASH_ATTN=1 takes the fused path where it computes the same thing: softmax attention
        with no relative position table, no returned logits, no dropout while training and no
        logit soft-capping."""
        return (
            flash_attention_enabled()
            and self.normalization == "softmax"
            and p_bias in (None, "rotary")
            and not self.return_attention_scores
            and not (self.dropout is not None and training)
            and self.logit_soft_cap is None
        )

    def _flash_attention(self, qw, kw, vw, key_mask, attention_bias, groups):
        if groups > 1:
            kw, vw = ops.repeat(kw, groups, axis=2), ops.repeat(vw, groups, axis=2)
        mask, bias = None, None
        if key_mask is not None:
            mask = align(ops.cast(key_mask, "bool"), [0, 3], 4)
        if attention_bias is not None:
            if len(attention_bias.shape) == 3:
                attention_bias = align(attention_bias, [0, 2, 3], 4)
            if keras.backend.standardize_dtype(attention_bias.dtype) == "bool":
                mask = attention_bias if mask is None else ops.logical_and(mask, attention_bias)
            else:
                bias = ops.cast(attention_bias, qw.dtype)
        if mask is not None:
            mask = ops.broadcast_to(mask, (ops.shape(qw)[0], self.query_head, ops.shape(qw)[1], ops.shape(kw)[1]))
        scale = 1 / math.sqrt(self.key_size) if self.attention_scale is True else (self.attention_scale or 1.0)
        return ops.dot_product_attention(qw, kw, vw, bias=bias, mask=mask, scale=scale)

    def compute_mask(self, inputs, mask=None):
        if isinstance(mask, (list, tuple)):
            return mask[0]
        return mask

    def compute_output_shape(self, input_shape):
        """The output's shape for `[q, k, v]` or `q` (the logits too with `return_attention_scores`)."""
        shapes = as_shape_list(input_shape)
        q_shape, k_shape = shapes[0], shapes[min(1, len(shapes) - 1)]
        output_shape = (*q_shape[:-1], self.out_dim)
        if self.return_attention_scores:
            return output_shape, (q_shape[0], self.query_head, q_shape[1], k_shape[1])
        return output_shape

    def compute_output_spec(self, *args, **kwargs):
        # What comes out depends on call arguments (a cache, the list-form flags), not only on the
        # input shapes: trace `call` rather than asking compute_output_shape.
        return super(keras.layers.Layer, self).compute_output_spec(*args, **kwargs)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "heads": self.heads,
                "head_size": self.head_size,
                "out_dim": self.out_dim,
                "key_size": self.key_size,
                "use_bias": self.use_bias,
                "normalization": self.normalization,
                "attention_scale": self.attention_scale,
                "attention_dropout": self.attention_dropout,
                "return_attention_scores": self.return_attention_scores,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
                "o_bias": self.o_bias,
                "query_head": self.query_head,
                "use_EinsumDense": self.use_EinsumDense,
                "rope_mode": self.rope_mode,
                "max_wavelength": self.max_wavelength,
                "scaling_factor": self.scaling_factor,
                "GQA_mode": self.GQA_mode,
                "logit_soft_cap": self.logit_soft_cap,
                "rope_scaling": None if self.rope_scaling is None else dict(self.rope_scaling),
                "flatten_o_dense": self.flatten_o_dense,
                "pos_att_type": list(self.pos_att_type),
                "share_att_key": self.share_att_key,
            }
        )
        return config
