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
    h = swish(x @ w["i_dense/kernel"] + w["i_dense/bias"])
    u, v, qk = h[..., :units], h[..., units : 2 * units], h[..., 2 * units :]
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
    return (u * (attention @ v)) @ w["o_dense/kernel"] + w["o_dense/bias"]


def test_self_attention_matches_the_formula(tmp_path):
    layer = GatedAttentionUnit(units=16, key_size=8)
    out = run_layer_test(lambda: layer, X, tmp_path)
    assert_close(out, reference(layer, X))
    assert_close(layer([X], mask=[KEY_MASK]), reference(layer, X, key_mask=KEY_MASK))
    assert sorted(weights_of(layer)) == [
        "i_dense/bias",
        "i_dense/kernel",
        "k_scaleoffset/beta",
        "k_scaleoffset/gamma",
        "o_dense/bias",
        "o_dense/kernel",
        "q_scaleoffset/beta",
        "q_scaleoffset/gamma",
    ]


def test_factorization_with_self_attention_is_ignored_with_a_warning():
    """bert4keras3 factorized only without `self_attention`; its files of a self-attention GAU built
    with `factorization=True` hold the unfactorized weights, so b4k3 builds those, and says so."""
    with pytest.warns(UserWarning, match="self_attention=False to factorize"):
        layer = GatedAttentionUnit(units=16, key_size=8, factorization=True)
    assert_close(layer(X), reference(layer, X))
    assert "vW_dense/kernel" not in weights_of(layer)


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


def cross_reference(layer, x, y):
    """bert4keras3's `self_attention=False` GAU: u, q, k and v each from its own Dense, softmax."""
    w = weights_of(layer)
    u = swish(x @ w["u_dense/kernel"] + w["u_dense/bias"])
    q = swish(x @ w["q_dense/kernel"] + w["q_dense/bias"])
    k = swish(y @ w["k_dense/kernel"] + w["k_dense/bias"])
    v = y @ w["v_dense/kernel"] if layer.factorization else swish(y @ w["v_dense/kernel"] + w["v_dense/bias"])
    scores = np.einsum("bmd,bnd->bmn", q, k) / np.sqrt(layer.key_size)
    attention = np.exp(scores - scores.max(-1, keepdims=True))
    values = attention / attention.sum(-1, keepdims=True) @ v
    if layer.factorization:
        values = values @ w["vW_dense/kernel"]
    return (u * values) @ w["o_dense/kernel"] + w["o_dense/bias"]


@pytest.mark.parametrize(
    ("factorization", "weights"),
    [
        (False, ["k_dense", "o_dense", "q_dense", "u_dense", "v_dense"]),
        (True, ["k_dense", "o_dense", "q_dense", "u_dense", "v_dense", "vW_dense"]),
    ],
)
def test_cross_attention_takes_query_key_and_value(factorization, weights, tmp_path):
    """The sublayers bert4keras3 had (so its files load): no bias in the factorized v and vW."""
    y = RNG.normal(size=(2, 7, 12)).astype("float32")
    layer = GatedAttentionUnit(
        units=16, key_size=8, self_attention=False, normalization="softmax", factorization=factorization
    )
    out = run_layer_test(lambda: layer, [X, y, y], tmp_path)
    assert_close(out, cross_reference(layer, X, y))
    assert sorted({path.split("/")[0] for path in weights_of(layer)}, key=str.lower) == weights
    assert ("v_dense/bias" in weights_of(layer)) is not factorization


def test_bad_arguments():
    with pytest.raises(ValueError, match="normalization"):
        GatedAttentionUnit(units=4, key_size=4, normalization="relu")
    layer = GatedAttentionUnit(units=4, key_size=4)
    with pytest.raises(ValueError, match="p_bias"):
        layer(keras.ops.ones((1, 3, 4)), p_bias="t5_relative")
