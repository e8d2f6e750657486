"""Position-wise feed-forward layers: bert4keras' FeedForward (plain or gated) and the Gemma and
Llama variants, all one block: `output(act_0(input_0(x)) * act_1(input_1(x)) * ...)`."""

import numbers

import keras

from b4k3_layers.sublayers import dense_sublayer
from b4k3_layers.trainability import KeepsTrainability
from b4k3_ops import ops
from b4k3_ops.activations import gelu_tanh, get_activation


@keras.saving.register_keras_serializable(package="b4k3")
class FeedForward(KeepsTrainability, keras.layers.Layer):
    """The transformer feed-forward block: Dense(units) -> activation -> Dense(input dim).

    With a list of activations it is a gated linear unit (https://arxiv.org/abs/2002.05202): one
    input Dense per activation, `i0_dense`, `i1_dense`, ..., whose activated outputs are
    multiplied together before the output Dense `o_dense`. The output has the input's shape.

    Args:
        units: the hidden width.
        activation: an activation, or a non-empty list of them (one per input Dense).
        use_bias: whether the Dense layers have biases.
        kernel_initializer: the initializer of the Dense kernels.

    Example:

    ```python
    x = np.random.normal(size=(2, 5, 8))
    FeedForward(32, activation="gelu")(x).shape  # (2, 5, 8)
    FeedForward(32, activation=["silu", "linear"])(x)  # SwiGLU
    ```
    """

    def __init__(self, units, activation="relu", use_bias=True, kernel_initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        if not isinstance(units, numbers.Integral) or units < 1:
            raise ValueError(f"{type(self).__name__}: `units` must be a positive integer, got {units!r}.")
        activation = list(activation) if isinstance(activation, (list, tuple)) else [activation]
        if not activation:
            raise ValueError(f"{type(self).__name__}: `activation` is an empty list; give at least one activation.")
        self.units = units
        self.activation = [get_activation(each) for each in activation]
        self.use_bias = use_bias
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.supports_masking = True

    def _dense_names(self):
        """The attribute names of the input Dense layers and of the output one; they are the paths
        of the weights in `.weights.h5` files, kept from bert4keras3 so its files load."""
        return [f"i{index}_dense" for index in range(len(self.activation))], "o_dense"

    def _activate(self, activation, x):
        return activation(x)

    def projection_roles(self):
        """`{sublayer attribute: 'in' or 'out'}` for tensor-parallel sharding (`b4k3_models.get_layout_map`)."""
        input_names, output_name = self._dense_names()
        return {**dict.fromkeys(input_names, "in"), output_name: "out"}

    def build(self, input_shape):
        input_names, output_name = self._dense_names()
        for name in input_names:
            setattr(self, name, self._dense(self.units, name, input_shape))
        hidden_shape = (*input_shape[:-1], self.units)
        setattr(self, output_name, self._dense(input_shape[-1], output_name, hidden_shape))

    def _dense(self, units, name, input_shape):
        return dense_sublayer(
            self,
            name.lstrip("_"),
            units,
            input_shape,
            use_bias=self.use_bias,
            kernel_initializer=keras.initializers.serialize(self.kernel_initializer),
        )

    def call(self, inputs):
        input_names, output_name = self._dense_names()
        hidden = None
        for name, activation in zip(input_names, self.activation, strict=True):
            projected = getattr(self, name)(inputs)
            if activation is not keras.activations.linear:
                projected = self._activate(activation, projected)
            hidden = projected if hidden is None else hidden * projected
        return getattr(self, output_name)(hidden)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {
            **super().get_config(),
            "units": self.units,
            "activation": [keras.activations.serialize(each) for each in self.activation],
            "use_bias": self.use_bias,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
        }


@keras.saving.register_keras_serializable(package="b4k3")
class GemmaFeedForward(FeedForward):
    """Gemma's feed-forward block: `o_dense(gelu_tanh(i0_dense(x)) * i1_dense(x))`.

    `FeedForward(units, activation=["gelu", "linear"])` with the tanh approximation of GELU.

    Args:
        units: the hidden width.
        use_bias: whether the Dense layers have biases.
        kernel_initializer: the initializer of the Dense kernels.

    Example:

    ```python
    GemmaFeedForward(32, use_bias=False)(np.random.normal(size=(2, 5, 8))).shape  # (2, 5, 8)
    ```
    """

    def __init__(self, units, use_bias=True, kernel_initializer="glorot_uniform", **kwargs):
        super().__init__(units, [gelu_tanh, "linear"], use_bias, kernel_initializer, **kwargs)

    def get_config(self):
        config = super().get_config()
        del config["activation"]
        return config


@keras.saving.register_keras_serializable(package="b4k3")
class LLamaFeedForward(FeedForward):
    """Llama's feed-forward block: `down(activation(gate(x)) * up(x))`, the activation in float32.

    The activation runs in float32 whatever the dtype policy (as torch's SiLU does in bfloat16),
    then its result is cast back to the compute dtype. The Dense layers are the attributes
    `_feedforward_gate_dense`, `_feedforward_intermediate_dense` (up) and
    `_feedforward_output_dense` (down), as in bert4keras3.

    Args:
        units: the hidden width.
        activation: the gate's activation (Llama: "silu"); the default "relu" is bert4keras3's.
        use_bias: whether the Dense layers have biases.
        kernel_initializer: the initializer of the Dense kernels.

    Example:

    ```python
    LLamaFeedForward(32, activation="silu", use_bias=False)(np.random.normal(size=(2, 5, 8)))
    ```
    """

    def __init__(self, units, activation="relu", use_bias=True, kernel_initializer="glorot_uniform", **kwargs):
        if isinstance(activation, (list, tuple)):
            if len(activation) != 1:
                raise ValueError(f"LLamaFeedForward: `activation` is one activation (the gate's), got {activation!r}.")
            activation = activation[0]
        super().__init__(units, [activation, "linear"], use_bias, kernel_initializer, **kwargs)

    def _dense_names(self):
        return ["_feedforward_gate_dense", "_feedforward_intermediate_dense"], "_feedforward_output_dense"

    def _activate(self, activation, x):
        return ops.cast(activation(ops.cast(x, "float32")), self.compute_dtype)

    def get_config(self):
        return {**super().get_config(), "activation": keras.activations.serialize(self.activation[0])}
