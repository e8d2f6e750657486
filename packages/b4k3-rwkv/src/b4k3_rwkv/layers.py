"""The layers of RWKV6 (`bert4keras3.layers.Rwkv_layer`): `DecomposerDense`, `TimeShift`,
`ChannelMix` and `TimeMix`, with bert4keras3's names and parameters.

Both mixing layers read the previous token through a time shift, so each carries a state from one
call to the next: the previous token's input (`(batch, hidden)`), and for `TimeMix` the wkv state
too (`(batch, heads, head_size, head_size)`). Called with `cache=`, a layer starts from the given
state and returns `(output, new state)`; without it, it starts from zeros, or from its trainable
initial state once `enable_state_tuning` has added one.
"""

import numbers

import keras

from b4k3_layers import GroupNorm
from b4k3_layers.sublayers import dense_sublayer
from b4k3_layers.trainability import KeepsTrainability
from b4k3_ops import ops
from b4k3_rwkv.wkv import KERNELS, wkv6


def _check_sizes(owner, **sizes):
    for name, value in sizes.items():
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
            raise ValueError(f"{owner}: `{name}` must be a positive integer, got {value!r}")


def last_valid(x, lengths):
    """`(batch, hidden)`: each row's input at its last valid position (`lengths - 1`), or the last
    position when `lengths` is None. What the next call's time shift reads."""
    if lengths is None:
        return x[:, -1]
    index = ops.maximum(ops.cast(lengths, "int32") - 1, 0)
    return ops.take_along_axis(x, index[:, None, None], axis=1)[:, 0]


def valid_positions(x, lengths):
    """`(batch, T, 1)` bool: the positions before each row's length (all when `lengths` is None)."""
    if lengths is None:
        return None
    return (ops.arange(ops.shape(x)[1], dtype="int32")[None, :] < ops.cast(lengths, "int32")[:, None])[..., None]


@keras.saving.register_keras_serializable(package="b4k3")
class DecomposerDense(KeepsTrainability, keras.layers.Layer):
    """RWKV6's low-rank projection `dense_b(tanh(dense_a(x)))` (a LoRA-like pair).

    Args:
        hidden_size: the output size (the high rank).
        decomposer_size: the low rank in between.
        use_bias: whether `dense_b` has a bias (in RWKV6 it holds the static mix or decay).
    """

    def __init__(self, hidden_size, decomposer_size, use_bias=False, name="decomposed_dense", **kwargs):
        super().__init__(name=name, **kwargs)
        _check_sizes(type(self).__name__, hidden_size=hidden_size, decomposer_size=decomposer_size)
        self.hidden_size = hidden_size
        self.decomposer_size = decomposer_size
        self.use_bias = use_bias

    def build(self, input_shape):
        common = {"kernel_initializer": "glorot_uniform"}
        self.dense_a = dense_sublayer(self, "dense_a", self.decomposer_size, input_shape, use_bias=False, **common)
        hidden_shape = (*input_shape[:-1], self.decomposer_size)
        self.dense_b = dense_sublayer(self, "dense_b", self.hidden_size, hidden_shape, use_bias=self.use_bias, **common)

    def call(self, inputs):
        return self.dense_b(ops.tanh(self.dense_a(inputs)))

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.hidden_size)

    def get_config(self):
        return {
            **super().get_config(),
            "hidden_size": self.hidden_size,
            "decomposer_size": self.decomposer_size,
            "use_bias": self.use_bias,
        }


@keras.saving.register_keras_serializable(package="b4k3")
class TimeShift(keras.layers.Layer):
    """RWKV's time shift: `previous - x`, where `previous` holds at each position the input of the
    position before, and at the first one `cache_x` (`(batch, 1, hidden)`) or zeros."""

    def __init__(self, name="time_shift", **kwargs):
        super().__init__(name=name, **kwargs)

    def call(self, inputs, cache_x=None):
        first = ops.zeros_like(inputs[:, :1]) if cache_x is None else ops.cast(cache_x, inputs.dtype)
        return ops.concatenate([first, inputs[:, :-1]], axis=1) - inputs

    def compute_output_shape(self, input_shape):
        return input_shape


class StatefulMix(KeepsTrainability, keras.layers.Layer):
    """What `TimeMix` and `ChannelMix` share: the time shift with its state, and state tuning."""

    def __init__(self, hidden_size, **kwargs):
        super().__init__(**kwargs)
        self.hidden_size = hidden_size
        self.time_shift = TimeShift()
        self.initial_shift = None

    def enable_state_tuning(self, time_shift_tuning=False):
        """Freezes the layer's weights (LoRA adapters excepted) and, with `time_shift_tuning`, adds
        the trainable initial time-shift state `initial_shift` `(1, hidden)`, zeros at first."""
        for weight in self.weights:
            if "lora_" not in weight.path:
                weight.trainable = False
        if time_shift_tuning:
            self.add_initial_shift()

    def add_initial_shift(self):
        """Adds `initial_shift`, the time-shift state every text starts from (zeros until trained
        or loaded), once."""
        if self.initial_shift is None:
            self.initial_shift = self.add_state_weight("initial_shift", (1, self.hidden_size))

    def add_state_weight(self, name, shape):
        """A float32 weight of zeros added to the built layer (unlocking its tracker for it, as
        Keras' own `enable_lora` does)."""
        self._tracker.unlock()
        try:
            return self.add_weight(name=name, shape=shape, initializer="zeros", autocast=False)
        finally:
            self._tracker.lock()

    enable_state_tunig = enable_state_tuning  # bert4keras3's spelling

    def shift_state(self, x, cache):
        """The previous token's input for the first position, `(batch, 1, hidden)` (None: zeros)."""
        if cache is not None:
            return cache[:, None]
        if self.initial_shift is not None:
            return ops.broadcast_to(self.initial_shift, (ops.shape(x)[0], self.hidden_size))[:, None]
        return None

    def compute_output_shape(self, input_shape):
        return input_shape


@keras.saving.register_keras_serializable(package="b4k3")
class ChannelMix(StatefulMix):
    """RWKV6's feed-forward: `sigmoid(dense_r(xr)) * dense_v(relu(dense_k(xk)) ** 2)`, where `xk`
    and `xr` mix each token with the previous one (`time_mix_k`, `time_mix_r`).

    Args:
        hidden_size: the size of the inputs.
        expand_size: the hidden width.

    Call arguments:
        inputs: `(batch, T, hidden)`; with `rnn_mode=True` (bert4keras3's decoding form) a pair
            `[x, last_x]` of `(batch, 1, hidden)` tensors, `last_x` the previous token's input.
        cache: the previous token's input `(batch, hidden)`: returns `(output, new cache)`.
        lengths: `(batch,)` valid tokens per row (with `cache`): the new cache is the input at
            each row's last valid position.
    """

    def __init__(self, hidden_size, expand_size, **kwargs):
        super().__init__(hidden_size, **kwargs)
        _check_sizes(type(self).__name__, hidden_size=hidden_size, expand_size=expand_size)
        self.expand_size = expand_size

    def build(self, input_shape):
        if isinstance(input_shape, (list, tuple)) and isinstance(input_shape[0], (list, tuple)):
            input_shape = input_shape[0]
        self.time_mix_k = self.add_weight(name="time_mix_k", shape=(self.hidden_size,), initializer="zeros")
        self.time_mix_r = self.add_weight(name="time_mix_r", shape=(self.hidden_size,), initializer="zeros")
        hidden_shape = (*input_shape[:-1], self.expand_size)
        dense = {"use_bias": False, "kernel_initializer": "glorot_uniform"}
        self.dense_k = dense_sublayer(self, "dense_k", self.expand_size, input_shape, **dense)
        self.dense_v = dense_sublayer(self, "dense_v", self.hidden_size, hidden_shape, **dense)
        self.dense_r = dense_sublayer(self, "dense_r", self.hidden_size, input_shape, **dense)

    def projection_roles(self):
        """`{sublayer attribute: 'in' or 'out'}` for tensor-parallel sharding (`b4k3_models.get_layout_map`);
        the receptance `dense_r` stays whole."""
        return {"dense_k": "in", "dense_v": "out"}

    def call(self, inputs, rnn_mode=False, cache=None, lengths=None):
        if rnn_mode:
            x, last_x = inputs
            return self.call(x, cache=last_x[:, 0])[0]
        x = inputs
        shifted = self.time_shift(x, self.shift_state(x, cache))
        k = ops.square(ops.relu(self.dense_k(x + shifted * self.time_mix_k)))
        output = ops.sigmoid(self.dense_r(x + shifted * self.time_mix_r)) * self.dense_v(k)
        return output if cache is None else (output, last_valid(x, lengths))

    def get_config(self):
        return {**super().get_config(), "hidden_size": self.hidden_size, "expand_size": self.expand_size}


# The five data-dependent mixes of TimeMix, in the order of the official `time_maa_w1` columns.
MIXES = ("w", "k", "v", "r", "g")


@keras.saving.register_keras_serializable(package="b4k3")
class TimeMix(StatefulMix):
    """RWKV6's token mixing (its "attention"): receptance, key, value and gate projections of the
    token mixed with the previous one by data-dependent low-rank mixes, a data-dependent decay, the
    wkv operator over heads, a per-head group norm, the gate and the output projection.

    Args:
        rwkv_kernel: the wkv form: 'chunked' (parallel within chunks; default for sequences) or
            'recurrent' (one token per step); one token always takes the one-step form.
        hidden_size: the size of the inputs.
        decomposer_size: the rank of the five token-mix projections (`time_maa_w1`).
        head_size: the features per head (RWKV6: 64).
        time_decay_size: the rank of the decay projection (`time_decay_w1`).
        chunk_size: tokens per chunk of the chunked form.

    Call arguments:
        inputs: `(batch, T, hidden)`.
        cache: `(previous token's input (batch, hidden), wkv state (batch, heads, head_size,
            head_size))`: returns `(output, new cache)`.
        lengths: `(batch,)` valid tokens per row (with `cache`): later positions leave the state
            as it is, and the new shift state is each row's last valid input.
    """

    def __init__(
        self,
        rwkv_kernel,
        hidden_size,
        decomposer_size,
        head_size,
        time_decay_size=64,
        chunk_size=32,
        **kwargs,
    ):
        super().__init__(hidden_size, **kwargs)
        owner = type(self).__name__
        _check_sizes(
            owner,
            hidden_size=hidden_size,
            decomposer_size=decomposer_size,
            head_size=head_size,
            time_decay_size=time_decay_size,
            chunk_size=chunk_size,
        )
        if rwkv_kernel not in KERNELS:
            raise ValueError(f"{owner}: rwkv_kernel must be one of {sorted(KERNELS)}, got {rwkv_kernel!r}")
        if hidden_size % head_size:
            raise ValueError(f"{owner}: hidden_size={hidden_size} is not a multiple of head_size={head_size}")
        self.rwkv_kernel = rwkv_kernel
        self.decomposer_size = decomposer_size
        self.head_size = head_size
        self.heads = hidden_size // head_size
        self.time_decay_size = time_decay_size
        self.chunk_size = chunk_size
        self.initial_state = None

    def build(self, input_shape):
        size = self.hidden_size
        self.time_mix_x = self.add_weight(name="time_mix_x", shape=(size,), initializer="zeros")
        for mix in MIXES:
            layer = DecomposerDense(size, self.decomposer_size, use_bias=True, name=f"decomposed_dense_x{mix}")
            layer.build(input_shape)
            setattr(self, f"decomposed_dense_x{mix}", layer)
        self.decomposed_dense_w = DecomposerDense(size, self.time_decay_size, use_bias=True, name="decomposed_dense_w")
        self.decomposed_dense_w.build(input_shape)
        for name in ("r", "k", "v", "g", "o"):
            dense = dense_sublayer(
                self, f"dense_{name}", size, input_shape, use_bias=False, kernel_initializer="glorot_uniform"
            )
            setattr(self, f"dense_{name}", dense)
        self.time_faaaa = self.add_weight(name="time_faaaa", shape=(self.heads, self.head_size), initializer="zeros")
        self.group_ln = GroupNorm(size, self.head_size, name="group_ln")
        self.group_ln.build(input_shape)

    def enable_state_tuning(self, time_shift_tuning=False):
        """Freezes the layer's weights (LoRA adapters excepted) and adds the trainable initial wkv
        state `initial_state` `(1, heads, head_size, head_size)`, zeros at first; with
        `time_shift_tuning` also the initial time-shift state."""
        super().enable_state_tuning(time_shift_tuning)
        self.add_initial_state()

    def add_initial_state(self):
        """Adds `initial_state`, the wkv state every text starts from (zeros until trained or
        loaded), once."""
        if self.initial_state is None:
            self.initial_state = self.add_state_weight("initial_state", (1, self.heads, self.head_size, self.head_size))

    enable_state_tunig = enable_state_tuning  # bert4keras3's spelling

    def projection_roles(self):
        """`{sublayer attribute: 'in' or 'out'}` for tensor-parallel sharding (`b4k3_models.get_layout_map`):
        receptance, key, value and gate split by heads, the output projection by its input rows."""
        return {"dense_r": "in", "dense_k": "in", "dense_v": "in", "dense_g": "in", "dense_o": "out"}

    def wkv_state(self, x, cache):
        if cache is not None:
            return cache
        shape = (ops.shape(x)[0], self.heads, self.head_size, self.head_size)
        if self.initial_state is not None:
            return ops.broadcast_to(self.initial_state, shape)
        return ops.zeros(shape, "float32")

    def call(self, inputs, cache=None, lengths=None):
        x = inputs
        shift_cache, state_cache = (None, None) if cache is None else cache
        shifted = self.time_shift(x, self.shift_state(x, shift_cache))
        mixed = x + shifted * self.time_mix_x
        xw, xk, xv, xr, xg = (x + shifted * getattr(self, f"decomposed_dense_x{mix}")(mixed) for mix in MIXES)
        r, k, v = self.dense_r(xr), self.dense_k(xk), self.dense_v(xv)
        gate = ops.silu(self.dense_g(xg))
        log_w = -ops.exp(ops.cast(self.decomposed_dense_w(xw), "float32"))
        valid = valid_positions(x, lengths)
        if valid is not None:  # padding past a row's length leaves its state as it is
            k, v, log_w = ops.where(valid, k, 0), ops.where(valid, v, 0), ops.where(valid, log_w, 0)
        heads = [ops.reshape(t, (ops.shape(x)[0], -1, self.heads, self.head_size)) for t in (r, k, v, log_w)]
        y, state = wkv6(*heads, self.time_faaaa, self.wkv_state(x, state_cache), self.rwkv_kernel, self.chunk_size)
        y = self.group_ln(ops.reshape(y, ops.shape(x)))
        output = self.dense_o(ops.cast(y, gate.dtype) * gate)
        return output if cache is None else (output, (last_valid(x, lengths), state))

    def get_config(self):
        return {
            **super().get_config(),
            "rwkv_kernel": self.rwkv_kernel,
            "hidden_size": self.hidden_size,
            "decomposer_size": self.decomposer_size,
            "head_size": self.head_size,
            "time_decay_size": self.time_decay_size,
            "chunk_size": self.chunk_size,
        }
