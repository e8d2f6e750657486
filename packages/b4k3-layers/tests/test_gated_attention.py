"""GatedAttentionUnit against a NumPy reference written from the GAU formula (fp32, 1e-5)."""

import keras
import numpy as np
import pytest
from layer_checks import assert_close, run_layer_test, weights_of

from b4k3_layers.gated_attention import GatedAttentionUnit

RNG = np.random.default_rng(0)
X = RNG.normal(size=(2, 5, 12)).astype("float32")
KEY_MASK = np.array([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]], dtype=bool)
CAUSAL = np.tril(np.ones((5, 5), dtype=bool))


def swish(x):
    return x / (1 + np.exp(-x))


def rotate(x, dim):
    angles = np.arange(x.shape[1])[:, None] * 10000.0 ** (-2 * np.arange(dim // 2) / dim)
    z = (x[..., 0::2] + 1j * x[..., 1::2]) * np.exp(1j * angles)[None]
    out = np.empty_like(x)
    out[..., 0::2], out[..., 1::2] = z.real, z.imag
    return out


def table(length, dim):
    angles = np.arange(length)[:, None] * 10000.0 ** (-2 * np.arange(dim // 2) / dim)
    t = np.empty((length, dim))
    t[:, 0::2], t[:, 1::2] = np.sin(angles), np.cos(angles)
    return t[None].astype("float32")


def reference(layer, x, key_mask=None, bias=None, rotary=False):
    w = weights_of(layer)
    units, key_size = layer.units, layer.key_size
    value_width = key_size if layer.factorization else units
    h = swish(x @ w["i_dense/kernel"] + w["i_dense/bias"])
    u, v, qk = h[..., :units], h[..., units : units + value_width], h[..., units + value_width :]
    q = qk * w["q_scaleoffset/gamma"] + w["q_scaleoffset/beta"]
    k = qk * w["k_scaleoffset/gamma"] + w["k_scaleoffset/beta"]
    if rotary:
        q, k = rotate(q, key_size), rotate(k, key_size)
    scores = np.einsum("bmd,bnd->bmn", q, k) / np.sqrt(key_size)
    keep = np.ones(scores.shape, dtype=bool)
    if key_mask is not None:
        keep &= key_mask[:, None, :]
    if bias is not None:
        keep &= bias
    n = scores.shape[-1] if key_mask is None else key_mask.sum(-1)[:, None, None]
    attention = np.maximum(np.where(keep, scores, 0), 0) ** 2 / n  # squared_relu
    values = attention @ v
    if layer.factorization:
        values = values @ w["vw_dense/kernel"] + w["vw_dense/bias"]
    return (u * values) @ w["o_dense/kernel"] + w["o_dense/bias"]


@pytest.mark.parametrize("factorization", [False, True])
def test_self_attention_matches_the_formula(factorization, tmp_path):
    layer = GatedAttentionUnit(units=16, key_size=8, factorization=factorization)
    out = run_layer_test(lambda: layer, X, tmp_path)
    assert_close(out, reference(layer, X))
    assert_close(layer([X], mask=[KEY_MASK]), reference(layer, X, key_mask=KEY_MASK))


def test_causal_bias_and_rotary_positions():
    layer = GatedAttentionUnit(units=16, key_size=8)
    out = layer([X, CAUSAL, table(5, 8)], a_bias=True, p_bias="rotary")
    assert_close(out, reference(layer, X, bias=CAUSAL, rotary=True))


def test_keyword_form_rotates_by_positions_without_a_table():
    """`key_mask`, `attention_bias` and `p_bias='rotary'` without a table: the same as the list
    form given the sinusoidal table (what GAU-alpha's blocks call)."""
    layer = GatedAttentionUnit(units=16, key_size=8)
    out = layer(X, key_mask=KEY_MASK, attention_bias=CAUSAL, p_bias="rotary")
    assert_close(out, reference(layer, X, key_mask=KEY_MASK, bias=CAUSAL, rotary=True))


def test_cross_attention_takes_query_key_and_value(tmp_path):
    y = RNG.normal(size=(2, 7, 12)).astype("float32")
    layer = GatedAttentionUnit(units=16, key_size=8, self_attention=False, normalization="softmax")
    out = run_layer_test(lambda: layer, [X, y, y], tmp_path)
    w = weights_of(layer)
    h = swish(X @ w["i_dense/kernel"] + w["i_dense/bias"])
    u, q = h[..., :16], h[..., 16:] * w["q_scaleoffset/gamma"] + w["q_scaleoffset/beta"]
    k = swish(y @ w["k_dense/kernel"] + w["k_dense/bias"]) * w["k_scaleoffset/gamma"] + w["k_scaleoffset/beta"]
    v = swish(y @ w["v_dense/kernel"] + w["v_dense/bias"])
    scores = np.einsum("bmd,bnd->bmn", q, k) / np.sqrt(8)
    attention = np.exp(scores - scores.max(-1, keepdims=True))
    attention /= attention.sum(-1, keepdims=True)
    assert_close(out, (u * (attention @ v)) @ w["o_dense/kernel"] + w["o_dense/bias"])


def test_bad_arguments():
    with pytest.raises(ValueError, match="normalization"):
        GatedAttentionUnit(units=4, key_size=4, normalization="relu")
    layer = GatedAttentionUnit(units=4, key_size=4)
    with pytest.raises(ValueError, match="p_bias"):
        layer(keras.ops.ones((1, 3, 4)), p_bias="t5_relative")
