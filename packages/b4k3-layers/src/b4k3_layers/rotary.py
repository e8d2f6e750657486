"""Rotary position embeddings (half-split, as Hugging Face Llama, or interleaved pairs, as RoFormer),
with Hugging Face's rope scaling: the positions of every rotary family, applied inside the one
attention layer."""

import math
import numbers

import keras
import numpy as np

from b4k3_ops import ops
from b4k3_ops.backend import align

# The keys each rope_type RotaryEmbedding supports needs; a checkpoint config may also repeat the base.
ROPE_SCALING_KEYS = {
    "default": (),
    "linear": ("factor",),
    "llama3": ("factor", "low_freq_factor", "high_freq_factor", "original_max_position_embeddings"),
}


@keras.saving.register_keras_serializable(package="b4k3")
class RotaryEmbedding(keras.layers.Layer):
    """Rotary position embedding, half-split as in keras-hub and Hugging Face Llama, or interleaved.

    Feature `f` of the first half is paired with feature `f + d/2` (`rotate_half`), and the pair at
    position `p` turns by the angle `p * w_f`, with the inverse frequencies
    `w_f = max_wavelength ** (-2f / (d * scaling_factor))` (bert4keras3's and the spec's
    `scaling_factor` scales the frequency range), or those of `rope_scaling`. With
    `interleaved=True` the pairs are features `(2f, 2f + 1)` instead: RoFormer's ("su") layout,
    what `b4k3_ops.backend.apply_rotary_position_embeddings` computes from a sinusoidal table, here
    from the positions alone (so a KV cache's rows can each start at their own position).

    `rope_scaling` takes Hugging Face's dict as it stands in a checkpoint's config, so that a
    long-context model rotates exactly as it was trained: `{"rope_type": "linear", "factor": f}`
    divides the frequencies by `f`, i.e. the positions (linear position interpolation; older
    configs spell the key "type"), and `{"rope_type": "llama3", "factor", "low_freq_factor", "high_freq_factor",
    "original_max_position_embeddings"}` is Llama 3.1's frequency-dependent scaling (transformers'
    `_compute_llama3_parameters`): wavelengths below `original / high_freq_factor` are kept, those
    above `original / low_freq_factor` divided by `factor`, and those between interpolated. The
    frequencies are computed with NumPy in float32, as transformers does, once per feature size.

    Args:
        max_wavelength: the base of the frequencies (`rope_theta`).
        scaling_factor: the exponents of the frequencies are divided by it (it scales the
            frequency range); to divide the positions, use `rope_scaling={"rope_type": "linear",
            "factor": f}`.
        sequence_axis: axis of the inputs the positions run along.
        feature_axis: axis of the inputs that is rotated (even size).
        rope_scaling: None, or Hugging Face's rope scaling dict of rope_type 'default', 'linear'
            or 'llama3' (see above).
        interleaved: pair features `(2f, 2f + 1)` (RoFormer) instead of `(f, f + d/2)`; the
            feature axis must then be the last one.

    Call arguments:
        inputs: a tensor with a sequence and a feature axis, e.g. `(batch, seq_len, heads, dim)`.
        start_index: position of the first element along the sequence axis: a Python int or a
            scalar tensor (the cache index of a compiled decode loop), or a `(batch,)` tensor of
            one start per row (rows of a batch decoding at different positions; the batch must be
            axis 0, and neither the sequence nor the feature axis).

    Example:
        >>> rope = RotaryEmbedding()
        >>> q = rope(np.ones((2, 16, 4, 8)))  # (2, 16, 4, 8)
        >>> q_next = rope(np.ones((2, 1, 4, 8)), start_index=16)  # the token at position 16
        >>> q_rows = rope(np.ones((2, 1, 4, 8)), start_index=np.array([16, 9]))  # row 1 at position 9
    """

    def __init__(
        self,
        max_wavelength=10000,
        scaling_factor=1.0,
        sequence_axis=1,
        feature_axis=-1,
        rope_scaling=None,
        interleaved=False,
        **kwargs,
    ):
        if interleaved and feature_axis != -1:
            raise ValueError(f"RotaryEmbedding: interleaved pairs need feature_axis=-1, got {feature_axis!r}")
        for name, value in (("max_wavelength", max_wavelength), ("scaling_factor", scaling_factor)):
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or value <= 0:
                raise ValueError(f"RotaryEmbedding: `{name}` must be a positive number, got {value!r}")
        self.check_rope_scaling(rope_scaling, max_wavelength)
        super().__init__(**kwargs)
        self.max_wavelength = max_wavelength
        self.scaling_factor = scaling_factor
        self.sequence_axis = sequence_axis
        self.feature_axis = feature_axis
        self.rope_scaling = None if rope_scaling is None else dict(rope_scaling)
        self.interleaved = interleaved
        self._built_frequencies = None
        # Weightless, so built at once: `Model.quantize` refuses a model with an unbuilt layer, and
        # attention layers compute their rotation without calling this layer through Keras.
        self.built = True

    @staticmethod
    def check_rope_scaling(rope_scaling, max_wavelength):
        """The rope_type of a Hugging Face rope scaling dict; a ValueError if it cannot be applied."""
        if rope_scaling is None:
            return "default"
        if not isinstance(rope_scaling, dict):
            raise ValueError(f"RotaryEmbedding: `rope_scaling` must be None or a dict, got {rope_scaling!r}")
        rope_type = rope_scaling.get("rope_type", rope_scaling.get("type", "default"))
        if rope_type not in ROPE_SCALING_KEYS:
            raise ValueError(
                f"RotaryEmbedding: rope_scaling of rope_type {rope_type!r} is not supported; the supported types "
                f"are {tuple(ROPE_SCALING_KEYS)}"
            )
        needed = ROPE_SCALING_KEYS[rope_type]
        missing = [key for key in needed if key not in rope_scaling]
        unknown = sorted(set(rope_scaling) - {*needed, "rope_type", "type", "rope_theta"})
        if missing or unknown:
            raise ValueError(
                f"RotaryEmbedding: rope_scaling of rope_type {rope_type!r} takes the keys {needed}; "
                f"missing {missing}, unexpected {unknown}, in {rope_scaling!r}"
            )
        for key in needed:
            value = rope_scaling[key]
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or value <= 0:
                raise ValueError(f"RotaryEmbedding: rope_scaling[{key!r}] must be a positive number, got {value!r}")
        if rope_type == "llama3" and rope_scaling["high_freq_factor"] <= rope_scaling["low_freq_factor"]:
            raise ValueError(
                f"RotaryEmbedding: llama3 rope_scaling needs high_freq_factor > low_freq_factor, got {rope_scaling!r}"
            )
        if rope_scaling.get("rope_theta", max_wavelength) != max_wavelength:
            raise ValueError(
                f"RotaryEmbedding: rope_scaling['rope_theta']={rope_scaling['rope_theta']!r} differs from "
                f"max_wavelength={max_wavelength!r}; pass the checkpoint's rope_theta as max_wavelength"
            )
        return rope_type

    def inverse_frequencies(self, dim):
        """The `dim // 2` inverse frequencies as a float32 NumPy array, `rope_scaling` applied."""
        exponents = np.arange(0, dim, 2, dtype="float32") / np.float32(self.scaling_factor) / dim
        frequencies = 1.0 / (float(self.max_wavelength) ** exponents)
        rope_type = self.check_rope_scaling(self.rope_scaling, self.max_wavelength)
        if rope_type == "linear":
            frequencies = frequencies / self.rope_scaling["factor"]
        elif rope_type == "llama3":
            scaling = self.rope_scaling
            factor, old_context_len = scaling["factor"], scaling["original_max_position_embeddings"]
            low_freq_factor, high_freq_factor = scaling["low_freq_factor"], scaling["high_freq_factor"]
            low_freq_wavelength = old_context_len / low_freq_factor
            high_freq_wavelength = old_context_len / high_freq_factor
            wavelength = 2 * math.pi / frequencies
            scaled = np.where(wavelength > low_freq_wavelength, frequencies / factor, frequencies)
            smooth = (old_context_len / wavelength - low_freq_factor) / (high_freq_factor - low_freq_factor)
            smoothed = (1 - smooth) * scaled / factor + smooth * scaled
            is_medium = ~(wavelength < high_freq_wavelength) & ~(wavelength > low_freq_wavelength)
            frequencies = np.where(is_medium, smoothed, scaled)
        return frequencies.astype("float32")

    def axes(self, rank):
        """The sequence and feature axes of a `rank`-axis input, as non-negative numbers."""
        sequence_axis, feature_axis = self.sequence_axis % rank, self.feature_axis % rank
        if sequence_axis == feature_axis:
            raise ValueError(
                f"RotaryEmbedding: `sequence_axis` ({self.sequence_axis}) and `feature_axis` "
                f"({self.feature_axis}) are the same axis of a {rank}-axis input"
            )
        return sequence_axis, feature_axis

    def build(self, input_shape):
        feature_size = input_shape[self.axes(len(input_shape))[1]]
        if feature_size is not None:
            self.feature_frequencies(feature_size)

    def feature_frequencies(self, dim):
        """The inverse frequencies of a `dim`-wide feature axis, computed once per width and kept (the
        layer is built at construction, before its inputs are known). Python floats, not NumPy:
        torch.compile bakes them into its graph (a NumPy attribute breaks the graph), and every
        backend converts them as constants."""
        if dim % 2:
            raise ValueError(
                f"RotaryEmbedding: the feature axis (`feature_axis`={self.feature_axis}) must have an even size, "
                f"got {dim}"
            )
        if self._built_frequencies is None or 2 * len(self._built_frequencies) != dim:
            self._built_frequencies = tuple(self.inverse_frequencies(dim).tolist())
        return self._built_frequencies

    def call(self, inputs, start_index=0):
        rank = len(inputs.shape)
        sequence_axis, feature_axis = self.axes(rank)
        dim = inputs.shape[feature_axis]
        if dim is None:
            raise ValueError(f"RotaryEmbedding: the feature axis of the inputs needs a known size, got {inputs.shape}")
        frequencies = self.feature_frequencies(int(dim))  # int(): a traced size under torch.jit.trace

        start = ops.cast(start_index, "float32")
        if len(start.shape) > 1:
            raise ValueError(
                f"RotaryEmbedding: `start_index` must be a scalar or a (batch,) vector, got shape {start.shape}"
            )
        per_row = len(start.shape) == 1 and start.shape[0] != 1
        if per_row and 0 in (sequence_axis, feature_axis):
            raise ValueError(
                "RotaryEmbedding: a (batch,) `start_index` needs the batch on axis 0, apart from the sequence axis "
                f"({self.sequence_axis}) and the feature axis ({self.feature_axis})"
            )
        # Per row, positions are (batch, seq_len); a (1,) index is the scalar it holds.
        start = start[:, None] if per_row else ops.reshape(start, ())
        positions = ops.arange(ops.shape(inputs)[sequence_axis], dtype="float32") + start
        angles = positions[..., None] * ops.convert_to_tensor(frequencies, "float32")
        # Interleaved: each pair (2f, 2f + 1) turns by angle f; half-split: both halves by the same angles.
        angles = ops.repeat(angles, 2, axis=-1) if self.interleaved else ops.concatenate([angles, angles], axis=-1)
        if feature_axis < sequence_axis:
            angles = ops.swapaxes(angles, -1, -2)
        angles = align(angles, ([0] if per_row else []) + sorted((sequence_axis, feature_axis)), rank)
        if self.interleaved:
            pairs = ops.reshape(inputs, (*ops.shape(inputs)[:-1], dim // 2, 2))
            rotated = ops.reshape(ops.stack([-pairs[..., 1], pairs[..., 0]], axis=-1), ops.shape(inputs))
        else:
            first, second = ops.split(inputs, 2, axis=feature_axis)
            rotated = ops.concatenate([-second, first], axis=feature_axis)
        return inputs * ops.cast(ops.cos(angles), inputs.dtype) + rotated * ops.cast(ops.sin(angles), inputs.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            max_wavelength=self.max_wavelength,
            scaling_factor=self.scaling_factor,
            sequence_axis=self.sequence_axis,
            feature_axis=self.feature_axis,
            rope_scaling=None if self.rope_scaling is None else dict(self.rope_scaling),
            interleaved=self.interleaved,
        )
        return config
