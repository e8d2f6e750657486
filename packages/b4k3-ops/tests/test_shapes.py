"""Shape helpers against NumPy, on eager tensors and on symbolic Keras inputs."""

import keras
import numpy as np
import pytest
from keras import ops

from b4k3_ops import backend, shapes
from b4k3_ops import ops as b4k3_ops

X = np.arange(2 * 3 * 4 * 6, dtype="float32").reshape(2, 3, 4, 6)


@pytest.mark.parametrize(
    ("start", "end", "shape"),
    [(None, None, (144,)), (1, None, (2, 72)), (1, 3, (2, 12, 6)), (-2, None, (2, 3, 24))],
)
def test_flatten_merges_a_range_of_axes(start, end, shape):
    np.testing.assert_array_equal(ops.convert_to_numpy(backend.flatten(X, start, end)), X.reshape(shape))


def test_reshape_splits_and_merges_axes_in_place():
    out = b4k3_ops.reshape(X, (2, -1), -1)
    np.testing.assert_array_equal(ops.convert_to_numpy(out), X.reshape(2, 3, 4, 2, 3))
    out = b4k3_ops.reshape(X, (-1,), 2, (3, 2), 3)
    np.testing.assert_array_equal(ops.convert_to_numpy(out), X.reshape(2, 3, 4, 3, 2))
    np.testing.assert_array_equal(ops.convert_to_numpy(b4k3_ops.reshape(X, (6, 24))), X.reshape(6, 24))


def test_reshape_refuses_two_unknown_sizes():
    with pytest.raises(ValueError, match="one -1"):
        b4k3_ops.reshape(X, (-1, -1), -1)


def test_helpers_work_on_symbolic_inputs_with_unknown_batch():
    inputs = keras.Input((3, 4, 6))
    assert backend.flatten(inputs, 2).shape == (None, 3, 24)
    assert b4k3_ops.reshape(inputs, (2, 3), -1).shape == (None, 3, 4, 2, 3)
    assert backend.align(inputs, [0, 2, 3, 4], 5).shape == (None, 1, 3, 4, 6)


def test_merging_two_unknown_sizes_is_a_symbolic_shape():
    # Batch and length unknown, the length merged with a known axis: only a symbolic tensor can say so.
    inputs = keras.Input((None, 4, 6))
    assert backend.flatten(inputs, 1, 3).shape == (None, None, 6)
    assert b4k3_ops.reshape(inputs, (2, -1), 1).shape == (None, 2, None, 4, 6)
    with pytest.raises(ValueError, match="more than one unknown"):
        shapes._reshaped(X, [None, None, 6])


def test_align_is_a_batched_expand_dims():
    mask = np.array([[1, 0, 1], [0, 1, 1]], dtype="float32")
    out = ops.convert_to_numpy(backend.align(mask, [0, 2], 4))
    np.testing.assert_array_equal(out, mask[:, None, :, None])
    out = ops.convert_to_numpy(backend.align(mask, [0, -1], 3))
    np.testing.assert_array_equal(out, mask[:, None, :])


def test_align_refuses_unordered_axes():
    with pytest.raises(ValueError, match="increasing"):
        backend.align(np.zeros((2, 3)), [2, 0], 3)


@pytest.mark.parametrize(("length", "n", "padded"), [(5, 4, 8), (8, 4, 8), (1, 3, 3)])
def test_divisible_temporal_padding_pads_zeros_on_the_right(length, n, padded):
    x = np.random.default_rng(0).normal(size=(2, length, 3)).astype("float32")
    out = ops.convert_to_numpy(backend.divisible_temporal_padding(x, n))
    expected = np.concatenate([x, np.zeros((2, padded - length, 3), "float32")], axis=1)
    np.testing.assert_array_equal(out, expected)


def test_root_mean_square():
    x = np.random.default_rng(1).normal(size=(3, 5)).astype("float32")
    out = ops.convert_to_numpy(backend.root_mean_square(x, axis=-1, keepdims=True))
    np.testing.assert_allclose(out, np.sqrt((x**2).mean(-1, keepdims=True)), rtol=1e-6)
