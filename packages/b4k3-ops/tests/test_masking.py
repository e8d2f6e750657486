"""sequence_masking against a NumPy reference written from its definition."""

import numpy as np
import pytest
from keras import ops

from b4k3_ops.backend import infinity, sequence_masking

RNG = np.random.default_rng(0)
X = RNG.normal(size=(2, 4, 4)).astype("float32")
# The second row is left-padded: its first position is padding (the predecessor got that wrong).
MASK = np.array([[1, 1, 1, 0], [0, 1, 1, 1]], dtype="int32")


def reference(x, mask, value, axes):
    keep = np.ones(x.shape, dtype=bool)
    for axis in axes:
        shape = [1] * x.ndim
        shape[0], shape[axis] = x.shape[0], x.shape[axis]
        keep &= mask.astype(bool).reshape(shape)
    return np.where(keep, x, value), keep


@pytest.mark.parametrize(("axis", "axes"), [(None, [1]), (1, [1]), (2, [2]), (-1, [2]), ([1, 2], [1, 2])])
@pytest.mark.parametrize("value", [0, -5.0, "-inf", "inf"])
def test_masks_the_padded_positions_along_the_axes(axis, axes, value):
    number = {"-inf": -infinity(), "inf": infinity()}.get(value, value)
    expected, keep = reference(X, MASK, number, axes)
    out, mask = sequence_masking(X, MASK, value, axis=axis, return_mask=True)
    np.testing.assert_array_equal(ops.convert_to_numpy(out), expected)
    np.testing.assert_array_equal(np.broadcast_to(ops.convert_to_numpy(mask), X.shape), keep)


def test_additive_bias_is_added_before_masking():
    bias = RNG.normal(size=(1, 4, 4)).astype("float32")
    expected, _ = reference(X + bias, MASK, -infinity(), [2])
    out = sequence_masking(X, MASK, "-inf", axis=-1, bias=bias)
    np.testing.assert_allclose(ops.convert_to_numpy(out), expected, rtol=1e-6)


def test_boolean_bias_is_an_extra_mask():
    causal = np.tril(np.ones((4, 4), dtype=bool))[None]
    expected, _ = reference(np.where(causal, X, -infinity()), MASK, -infinity(), [2])
    out = sequence_masking(X, MASK, "-inf", axis=-1, bias=causal)
    np.testing.assert_array_equal(ops.convert_to_numpy(out), expected)
    only_bias = sequence_masking(X, None, "-inf", bias=causal)
    np.testing.assert_array_equal(ops.convert_to_numpy(only_bias), np.where(causal, X, -infinity()))


def test_no_mask_and_no_bias_returns_the_input():
    np.testing.assert_array_equal(ops.convert_to_numpy(sequence_masking(X)), X)


def test_float16_masks_with_a_finite_value():
    out = ops.convert_to_numpy(sequence_masking(X.astype("float16"), MASK, "-inf", axis=-1))
    assert np.isfinite(out).all()
    assert out.min() == np.float16(-infinity("float16"))


def test_unknown_value_is_refused():
    with pytest.raises(ValueError, match="value"):
        sequence_masking(X, MASK, "-infinity")
