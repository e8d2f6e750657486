"""Sinusoidal tables and interleaved RoPE against NumPy references written from the math."""

import numpy as np
import pytest
from keras import ops

from b4k3_ops.backend import apply_rotary_position_embeddings, sinusoidal_embeddings


def reference_sinusoidal(positions, dim, base=10000.0):
    frequencies = base ** (-2 * np.arange(dim // 2) / dim)
    angles = positions[..., None] * frequencies
    table = np.empty((*angles.shape[:-1], dim))
    table[..., 0::2], table[..., 1::2] = np.sin(angles), np.cos(angles)
    return table, angles


@pytest.mark.parametrize("base", [10000, 500])
def test_sinusoidal_embeddings_interleave_sin_and_cos(base):
    positions = np.arange(7, dtype="float32")[None]
    expected, _ = reference_sinusoidal(positions, 8, base)
    out = ops.convert_to_numpy(sinusoidal_embeddings(positions, 8, base))
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)


def test_rotary_embedding_rotates_each_feature_pair():
    rng = np.random.default_rng(0)
    batch, length, heads, dim = 2, 5, 3, 8
    q = rng.normal(size=(batch, length, heads, dim)).astype("float32")
    k = rng.normal(size=(batch, length, heads, dim)).astype("float32")
    table, angles = reference_sinusoidal(np.arange(length, dtype="float64")[None], dim)
    # Pair (x0, x1) as the complex number x0 + i x1, multiplied by e^{i angle}.
    rotation = np.exp(1j * angles)[:, :, None, :]
    expected = [(x[..., 0::2] + 1j * x[..., 1::2]) * rotation for x in (q, k)]
    q_out, k_out = apply_rotary_position_embeddings(table.astype("float32"), q, k)
    for out, want in zip((q_out, k_out), expected, strict=True):
        out = ops.convert_to_numpy(out)
        np.testing.assert_allclose(out[..., 0::2], want.real, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(out[..., 1::2], want.imag, rtol=1e-5, atol=1e-5)


def test_rotary_embedding_preserves_relative_dot_products():
    """The point of RoPE: q_m . k_n depends on m - n only."""
    rng = np.random.default_rng(1)
    q, k = rng.normal(size=(2, 16)).astype("float32")
    table = sinusoidal_embeddings(ops.arange(12, dtype="float32")[None], 16)
    q_all = apply_rotary_position_embeddings(table, ops.convert_to_tensor(np.tile(q, (1, 12, 1))))
    k_all = apply_rotary_position_embeddings(table, ops.convert_to_tensor(np.tile(k, (1, 12, 1))))
    scores = ops.convert_to_numpy(ops.einsum("bmd,bnd->mn", q_all, k_all))
    np.testing.assert_allclose(scores[3, 1], scores[10, 8], rtol=1e-4)
    np.testing.assert_allclose(scores[5, 9], scores[2, 6], rtol=1e-4)


def test_rotary_embedding_needs_a_tensor_and_an_even_table():
    with pytest.raises(ValueError, match="at least one"):
        apply_rotary_position_embeddings(np.zeros((1, 2, 4)))
    with pytest.raises(ValueError, match="even"):
        sinusoidal_embeddings(np.arange(3), 5)
