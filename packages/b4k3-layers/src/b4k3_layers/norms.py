"""Normalization layers: bert4keras' (conditional) ScaleOffset and LayerNormalization, Gemma's and
Llama's RMS norms, and RWKV's per-head GroupNorm."""

import numbers

import keras

from b4k3_layers.sublayers import dense_sublayer
from b4k3_layers.trainability import KeepsTrainability
from b4k3_ops import ops
from b4k3_ops.activations import get_activation
from b4k3_ops.backend import align


def _rms_normalize_in_float32(x, epsilon):
    """x / sqrt(mean(x ** 2) + epsilon) over the last axis, computed in float32."""
    x = ops.cast(x, "float32")
    return x * ops.rsqrt(ops.mean(ops.square(x), axis=-1, keepdims=True) + epsilon)


@keras.saving.register_keras_serializable(package="b4k3")
class ScaleOffset(KeepsTrainability, keras.layers.Layer):
    """Affine map of the last axis: `x * gamma + beta`, optionally conditioned on a second input.

    With `conditional=True` the layer is called on `[x, cond]` and both gamma and beta are shifted
    by zero-initialised Dense projections of `cond` (the conditional layer norm of bert4keras), so
    training starts from the unconditioned map. `cond` has the batch axis first and features last;
    it is broadcast over the axes of `x` in between.

    Args:
        scale: `True` for a trained `gamma` (initialised to ones), `False`/`None` for none, or a
            number to multiply by as a constant.
        offset: `True` for a trained `beta` (initialised to zeros), `False`/`None` for none, or a
            number to add as a constant.
        conditional: whether the layer is called on `[x, cond]`.
        hidden_units: with `conditional`, the width of a Dense (no bias) that `cond` goes through
            first; `None` for none.
        hidden_activation: activation of that hidden Dense.
        hidden_initializer: kernel initializer of that hidden Dense.

    Example:

    ```python
    x, cond = np.ones((2, 5, 8)), np.ones((2, 3))
    ScaleOffset()(x).shape  # (2, 5, 8)
    ScaleOffset(conditional=True, hidden_units=4)([x, cond]).shape  # (2, 5, 8)
    ```
    """

    def __init__(
        self,
        scale=True,
        offset=True,
        conditional=False,
        hidden_units=None,
        hidden_activation="linear",
        hidden_initializer="glorot_uniform",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.scale = scale
        self.offset = offset
        self.conditional = conditional
        self.hidden_units = hidden_units
        self.hidden_activation = get_activation(hidden_activation)
        self.hidden_initializer = keras.initializers.get(hidden_initializer)

    def _uses(self, value):
        """Whether a `scale`/`offset` setting applies anything: a weight (True) or a constant."""
        return value is not False and value is not None

    def _split(self, inputs):
        """`(x, cond)` from the call's inputs; `cond` is None unless the layer is conditional."""
        if not self.conditional:
            return inputs, None
        # A pair of tensors in `call`, of shapes in `build`; a single shape is a tuple of sizes.
        is_pair = isinstance(inputs, (list, tuple)) and len(inputs) == 2
        if not is_pair or isinstance(inputs[0], (numbers.Integral, type(None))):
            raise ValueError(f"{type(self).__name__} has `conditional=True`: call it on [x, cond], not on one input.")
        return inputs[0], inputs[1]

    def build(self, input_shape):
        x_shape, cond_shape = self._split(input_shape)
        dim = x_shape[-1]
        # beta before gamma: the order bert4keras3 weight files hold them in.
        if self.offset is True:
            self.beta = self.add_weight(name="beta", shape=(dim,), initializer="zeros")
        if self.scale is True:
            self.gamma = self.add_weight(name="gamma", shape=(dim,), initializer="ones")
        if not self.conditional:
            return
        if self.hidden_units is not None:
            self.hidden_dense = self._dense(self.hidden_units, "hidden_dense", cond_shape, self.hidden_activation)
            cond_shape = (*cond_shape[:-1], self.hidden_units)
        if self._uses(self.offset):
            self.beta_dense = self._dense(dim, "beta_dense", cond_shape, initializer="zeros")
        if self._uses(self.scale):
            self.gamma_dense = self._dense(dim, "gamma_dense", cond_shape, initializer="zeros")

    def _dense(self, units, name, input_shape, activation=None, initializer=None):
        initializer = initializer or keras.initializers.serialize(self.hidden_initializer)
        return dense_sublayer(
            self, name, units, input_shape, use_bias=False, kernel_initializer=initializer, activation=activation
        )

    def call(self, inputs):
        return self._scale_offset(*self._split(inputs))

    def _scale_offset(self, x, cond=None):
        """`x * gamma + beta`, gamma and beta shifted by projections of `cond` when given."""
        if cond is not None:
            if self.hidden_units is not None:
                cond = self.hidden_dense(cond)
            cond = align(cond, [*range(len(cond.shape) - 1), -1], len(x.shape))
        if self._uses(self.scale):
            gamma = self.gamma if self.scale is True else self.scale
            x = x * (gamma if cond is None else gamma + self.gamma_dense(cond))
        if self._uses(self.offset):
            beta = self.beta if self.offset is True else self.offset
            x = x + (beta if cond is None else beta + self.beta_dense(cond))
        return x

    def compute_mask(self, inputs, mask=None):
        if self.conditional and mask is not None:
            return mask[0]
        return mask

    def compute_output_shape(self, input_shape):
        return self._split(input_shape)[0]

    def get_config(self):
        return {
            **super().get_config(),
            "scale": self.scale,
            "offset": self.offset,
            "conditional": self.conditional,
            "hidden_units": self.hidden_units,
            "hidden_activation": keras.activations.serialize(self.hidden_activation),
            "hidden_initializer": keras.initializers.serialize(self.hidden_initializer),
        }


@keras.saving.register_keras_serializable(package="b4k3")
class LayerNormalization(ScaleOffset):
    """bert4keras' (conditional) layer normalization: normalise the last axis, then ScaleOffset.

    `x - mean(x)` when `zero_mean`, then divided by `sqrt(mean(x ** 2) + epsilon)` when
    `unit_variance` (a zero denominator gives 0, not NaN). `zero_mean=False, offset=False` is T5's
    RMS norm. The math runs in the layer's compute dtype, as in bert4keras.

    Args:
        zero_mean: whether to subtract the mean of the last axis.
        unit_variance: whether to divide by the root mean square of the last axis.
        epsilon: added to the mean square; `None` for `keras.config.epsilon()` (1e-7 by default).
        **kwargs: the arguments of `ScaleOffset` (`scale`, `offset`, `conditional`, ...) and of
            `keras.layers.Layer`.

    Example:

    ```python
    x = np.random.normal(size=(2, 5, 8))
    LayerNormalization()(x)  # BERT
    LayerNormalization(zero_mean=False, offset=False, epsilon=1e-6)(x)  # T5
    ```
    """

    def __init__(self, zero_mean=True, unit_variance=True, epsilon=None, **kwargs):
        super().__init__(**kwargs)
        self.zero_mean = zero_mean
        self.unit_variance = unit_variance
        self.epsilon = keras.config.epsilon() if epsilon is None else epsilon

    def call(self, inputs):
        x, cond = self._split(inputs)
        if self.zero_mean:
            x = x - ops.mean(x, axis=-1, keepdims=True)
        if self.unit_variance:
            variance = ops.mean(ops.square(x), axis=-1, keepdims=True)
            x = ops.divide_no_nan(x, ops.sqrt(variance + self.epsilon))
        return self._scale_offset(x, cond)

    def get_config(self):
        return {
            **super().get_config(),
            "zero_mean": self.zero_mean,
            "unit_variance": self.unit_variance,
            "epsilon": self.epsilon,
        }


class _RMSNorm(keras.layers.Layer):
    """What the two RMS norms share: `epsilon` (`None` means 1e-6), mask pass-through, shape."""

    def __init__(self, epsilon=1e-6, **kwargs):
        super().__init__(**kwargs)
        self.epsilon = 1e-6 if epsilon is None else epsilon
        self.supports_masking = True

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "epsilon": self.epsilon}


@keras.saving.register_keras_serializable(package="b4k3")
class RMSNormalization(_RMSNorm):
    """Gemma's RMS norm: `x / sqrt(mean(x ** 2) + epsilon) * (1 + scale)`, all in float32.

    The whole computation, the trained `scale` (initialised to zeros) included, runs in float32
    whatever the dtype policy; only the result is cast to the compute dtype.

    Args:
        epsilon: added to the mean square; `None` means the default, 1e-6.

    Example:

    ```python
    RMSNormalization(dtype="mixed_bfloat16")(np.random.normal(size=(2, 5, 8)))  # bfloat16 out
    ```
    """

    def build(self, input_shape):
        # Not autocast: read in the variable dtype (float32), not rounded to the compute dtype.
        self.scale = self.add_weight(name="scale", shape=(input_shape[-1],), initializer="zeros", autocast=False)

    def call(self, x):
        normalized = _rms_normalize_in_float32(x, self.epsilon)
        return ops.cast(normalized * (1 + ops.cast(self.scale, "float32")), self.compute_dtype)


@keras.saving.register_keras_serializable(package="b4k3")
class LlamaLayerNorm(_RMSNorm):
    """Llama's RMS norm: `x / sqrt(mean(x ** 2) + epsilon)` in float32, cast back, times `scale`.

    The normalisation runs in float32 whatever the dtype policy; its result is cast to the compute
    dtype and then multiplied by the trained `scale` (initialised to ones), as Hugging Face's
    LlamaRMSNorm does.

    Args:
        epsilon: added to the mean square; `None` means the default, 1e-6.

    Example:

    ```python
    LlamaLayerNorm(epsilon=1e-5)(np.random.normal(size=(2, 5, 8)))
    ```
    """

    def build(self, input_shape):
        self.scale = self.add_weight(name="scale", shape=(input_shape[-1],), initializer="ones")

    def call(self, x):
        return ops.cast(_rms_normalize_in_float32(x, self.epsilon), self.compute_dtype) * self.scale


@keras.saving.register_keras_serializable(package="b4k3")
class GroupNorm(keras.layers.Layer):
    """RWKV's `ln_x`: a layer norm over each head's features, then a per-head `scale` and `offset`.

    The last axis (`hidden_size` features) is split into heads of `head_size` features; each head
    is normalised to zero mean and unit variance (`epsilon` added to the variance), then multiplied
    by `scale` and shifted by `offset`, both of shape `(hidden_size // head_size, head_size)` and
    initialised to ones and zeros. This is torch's `GroupNorm(num_groups=heads)` on the features.
    It runs in float32 whatever the dtype policy, as RWKV's group norm does under autocast.

    The per-head normalisation is a Keras `LayerNormalization` (`group_ln`, named `head_norm`) with
    its own `(head_size,)` gamma and beta, as bert4keras3 had, so its `.weights.h5` files load. They
    start at ones and zeros and no RWKV checkpoint holds them (its `ln_x` is `scale` and `offset`).

    Args:
        hidden_size: the size of the last axis of the inputs.
        head_size: the features per head; must divide `hidden_size`.
        epsilon: added to each head's variance (RWKV6: 1e-5 * 8 ** 2).

    Example:

    ```python
    GroupNorm(hidden_size=8, head_size=4)(np.random.normal(size=(2, 5, 8)))
    ```
    """

    HEAD_NORM = "head_norm"  # the name of the inner LayerNormalization, whose weights no checkpoint holds

    def __init__(self, hidden_size, head_size, epsilon=64e-5, **kwargs):
        super().__init__(**kwargs)
        for name, value in (("hidden_size", hidden_size), ("head_size", head_size)):
            if not isinstance(value, numbers.Integral) or value < 1:
                raise ValueError(f"GroupNorm: `{name}` must be a positive integer, got {value!r}.")
        if hidden_size % head_size:
            raise ValueError(
                f"GroupNorm: `hidden_size` ({hidden_size}) must be a multiple of `head_size` ({head_size})."
            )
        self.hidden_size = hidden_size
        self.head_size = head_size
        self.epsilon = epsilon
        self.num_heads = hidden_size // head_size
        self.supports_masking = True

    def build(self, input_shape):
        if input_shape[-1] != self.hidden_size:
            raise ValueError(
                f"GroupNorm: the inputs' last axis has {input_shape[-1]} features, "
                f"but `hidden_size` is {self.hidden_size}."
            )
        shape = (self.num_heads, self.head_size)
        self.scale = self.add_weight(name="scale", shape=shape, initializer="ones", autocast=False)
        self.offset = self.add_weight(name="offset", shape=shape, initializer="zeros", autocast=False)
        self.group_ln = keras.layers.LayerNormalization(epsilon=self.epsilon, dtype="float32", name=self.HEAD_NORM)
        self.group_ln.build((*input_shape[:-1], self.num_heads, self.head_size))

    def call(self, x):
        heads = self.group_ln(ops.reshape(ops.cast(x, "float32"), (self.num_heads, self.head_size), -1))
        heads = heads * ops.cast(self.scale, "float32") + ops.cast(self.offset, "float32")
        return ops.cast(ops.flatten(heads, -2), self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {
            **super().get_config(),
            "hidden_size": self.hidden_size,
            "head_size": self.head_size,
            "epsilon": self.epsilon,
        }
