"""The masks of a model: padding (and its extension over cached keys), causal (language model,
sliding window) and UniLM masks computed from its inputs, the sum of attention logits that
residual attention (RealFormer) passes from layer to layer, the sum that keeps Keras' padding mask
flowing to the outputs, the soft cap that bounds logits, and the zeroing of padded positions."""

import keras

from b4k3_ops import ops
from b4k3_ops.numerics import infinity


@keras.saving.register_keras_serializable(package="b4k3")
class PaddingMask(keras.layers.Layer):
    """`(batch, len)` bool mask of the real tokens: ids other than `pad_token_id`.

    The first position always counts as real, as `Embedding(mask_zero=True)` has it in bert4keras
    (a decoder may start from the pad id).
    """

    def __init__(self, pad_token_id=0, **kwargs):
        super().__init__(**kwargs)
        self.pad_token_id = pad_token_id

    def call(self, token_ids):
        real = ops.not_equal(token_ids, self.pad_token_id)
        return ops.concatenate([ops.ones_like(real[:, :1]), real[:, 1:]], axis=1)

    def compute_output_spec(self, token_ids):
        return keras.KerasTensor(token_ids.shape, dtype="bool")

    def get_config(self):
        return {**super().get_config(), "pad_token_id": self.pad_token_id}


@keras.saving.register_keras_serializable(package="b4k3")
class CachedKeyMask(keras.layers.Layer):
    """`[cached sequence (batch, n, dim), key mask (batch, len)]` -> `(batch, n + len)` bool: the key
    mask of an attention whose keys start with the cached sequence (`build(attention_caches=...)`),
    every cached position real."""

    def call(self, inputs):
        cached, key_mask = inputs
        return ops.concatenate([ops.ones_like(cached[..., 0], dtype="bool"), ops.cast(key_mask, "bool")], axis=1)

    def compute_output_spec(self, inputs):
        cached, key_mask = inputs
        steps = None if None in (cached.shape[1], key_mask.shape[1]) else cached.shape[1] + key_mask.shape[1]
        return keras.KerasTensor((key_mask.shape[0], steps), dtype="bool")


@keras.saving.register_keras_serializable(package="b4k3")
class CausalMask(keras.layers.Layer):
    """`(len, len)` bool mask: position `i` attends to positions `j <= i` (a language model);
    with a `window`, only to the last `window` of them (`i - window < j <= i`, sliding-window
    attention)."""

    def __init__(self, window=None, **kwargs):
        super().__init__(**kwargs)
        self.window = window

    def call(self, token_ids):
        positions = ops.arange(ops.shape(token_ids)[1])
        mask = positions[None, :] <= positions[:, None]
        if self.window is not None:
            mask = ops.logical_and(mask, positions[None, :] > positions[:, None] - self.window)
        return mask

    def compute_output_spec(self, token_ids):
        length = token_ids.shape[1]
        return keras.KerasTensor((length, length), dtype="bool")

    def get_config(self):
        return {**super().get_config(), "window": self.window}


@keras.saving.register_keras_serializable(package="b4k3")
class UniLMMask(keras.layers.Layer):
    """`(batch, len, len)` bool mask of UniLM (https://arxiv.org/abs/1905.03197) from segment ids.

    The source (segment 0) attends to itself both ways, the target (segment 1) to the source and
    causally to itself: with `c = cumsum(segment_ids)`, `i` attends to `j` when `c[j] <= c[i]`.
    With `segment_attention=True` the rule is `segment[j] <= segment[i]` instead (every target
    token sees the whole target).
    """

    def __init__(self, segment_attention=False, **kwargs):
        super().__init__(**kwargs)
        self.segment_attention = segment_attention

    def call(self, segment_ids):
        counts = ops.cast(segment_ids, "int32")
        if not self.segment_attention:
            counts = ops.cumsum(counts, axis=1)
        return counts[:, None, :] <= counts[:, :, None]

    def compute_output_spec(self, segment_ids):
        batch, length = segment_ids.shape
        return keras.KerasTensor((batch, length, length), dtype="bool")

    def get_config(self):
        return {**super().get_config(), "segment_attention": self.segment_attention}


@keras.saving.register_keras_serializable(package="b4k3")
class ResidualAttentionBias(keras.layers.Layer):
    """The attention bias of a RealFormer layer, from `[scores]` or `[scores, bias]`: the previous
    layer's logits plus the model's own bias (a bool mask becomes 0 where allowed and a large
    negative value where not)."""

    def call(self, inputs):
        scores, bias = inputs if len(inputs) == 2 else (inputs[0], None)
        if bias is None:
            return scores
        if keras.backend.standardize_dtype(bias.dtype) == "bool":
            bias = ops.where(bias, 0.0, -infinity(scores.dtype))
        if len(bias.shape) == 3:
            bias = bias[:, None]
        return scores + ops.cast(bias, scores.dtype)

    def compute_output_spec(self, inputs):
        return keras.KerasTensor(inputs[0].shape, dtype=inputs[0].dtype)


@keras.saving.register_keras_serializable(package="b4k3")
class MaskedAdd(keras.layers.Add):
    """`Add` that keeps the padding mask when only some inputs carry one (token embeddings plus
    segment embeddings): the AND of the masks present, as Keras 2 did, so the mask of the token
    ids still reaches the model's outputs (Keras 3's `Add` drops it)."""

    def compute_mask(self, inputs, mask=None):
        masks = [each for each in mask or [] if each is not None]
        if not masks:
            return None
        output_mask = masks[0]
        for each in masks[1:]:
            output_mask = ops.logical_and(output_mask, each)
        return output_mask


@keras.saving.register_keras_serializable(package="b4k3")
class SoftCap(keras.layers.Layer):
    """`tanh(x / cap) * cap`: logits squashed smoothly into (-cap, cap) (Gemma2), in float32."""

    def __init__(self, cap, **kwargs):
        super().__init__(**kwargs)
        self.cap = cap
        self.supports_masking = True

    def call(self, x):
        x = ops.cast(x, "float32")
        return ops.tanh(x / self.cap) * self.cap

    def compute_output_spec(self, x):
        return keras.KerasTensor(x.shape, dtype="float32")

    def get_config(self):
        return {**super().get_config(), "cap": self.cap}


@keras.saving.register_keras_serializable(package="b4k3")
class ZeroPadded(keras.layers.Layer):
    """`x * mask[..., None]` for `[x, mask]`: hidden states `(batch, len, dim)` zero at the padded
    positions of the bool `mask` `(batch, len)` (DeBERTa's embeddings, which its convolution reads
    across positions). Keeps the padding mask of `x`."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def call(self, inputs):
        x, mask = inputs
        return x * ops.cast(mask, x.dtype)[..., None]

    def compute_mask(self, inputs, mask=None):
        return mask[0] if isinstance(mask, (list, tuple)) else mask

    def compute_output_spec(self, inputs):
        return keras.KerasTensor(inputs[0].shape, dtype=inputs[0].dtype)
