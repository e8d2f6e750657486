"""MultiHeadAttention against a NumPy reference written from the math (fp32, 1e-5 tolerance),
in both calling forms, with grouped heads, rotary and relative positions, all normalizations, and
a KV cache fed token by token."""

import keras
import numpy as np
import pytest
from layer_checks import assert_close, run_layer_test, to_numpy, weights_of

from b4k3_layers.attention import MultiHeadAttention

RNG = np.random.default_rng(0)
BATCH, LENGTH, HIDDEN = 2, 6, 16
X = RNG.normal(size=(BATCH, LENGTH, HIDDEN)).astype("float32")
Y = RNG.normal(size=(BATCH, LENGTH + 2, HIDDEN)).astype("float32")
KEY_MASK = np.array([[1] * LENGTH, [1] * (LENGTH - 2) + [0] * 2], dtype=bool)
CAUSAL = np.tril(np.ones((LENGTH, LENGTH), dtype=bool))


def softmax(x):
    x = x - x.max(-1, keepdims=True)
    return np.exp(x) / np.exp(x).sum(-1, keepdims=True)


def sinusoidal_table(length, dim, base=10000.0):
    angles = np.arange(length)[:, None] * base ** (-2 * np.arange(dim // 2) / dim)
    table = np.empty((length, dim))
    table[:, 0::2], table[:, 1::2] = np.sin(angles), np.cos(angles)
    return table[None].astype("float32"), angles


def rotate_interleaved(x, angles):
    """(x0, x1) pairs as complex numbers times e^{i angle}; x is (B, L, H, D), angles (L, D/2)."""
    z = (x[..., 0::2] + 1j * x[..., 1::2]) * np.exp(1j * angles)[None, :, None, :]
    out = np.empty_like(x)
    out[..., 0::2], out[..., 1::2] = z.real, z.imag
    return out


def rotate_half_split(x, start=0, base=10000.0):
    """Llama's RoPE: feature i pairs with i + D/2."""
    dim = x.shape[-1]
    angles = (start + np.arange(x.shape[1]))[:, None] * base ** (-2 * np.arange(dim // 2) / dim)
    z = (x[..., : dim // 2] + 1j * x[..., dim // 2 :]) * np.exp(1j * angles)[None, :, None, :]
    return np.concatenate([z.real, z.imag], axis=-1)


def reference(layer, q, k, v, key_mask=None, bias=None, rotary=None, relative=None, relative_kind=None, rope_start=0):
    """Attention computed from the layer's weights with NumPy alone."""
    weights = weights_of(layer)
    heads, query_head, key_size, head_size = layer.heads, layer.query_head, layer.key_size, layer.head_size

    def project(name, x, n, size):
        y = x @ weights[f"{name}/kernel"] + weights.get(f"{name}/bias", 0)
        return y.reshape(*x.shape[:2], n, size)

    qw = project("q_dense", q, query_head, key_size)
    kw = project("k_dense", k, heads, key_size)
    vw = project("v_dense", v, heads, head_size)
    if rotary == "su":
        _, angles = sinusoidal_table(q.shape[1], key_size)
        qw, kw = rotate_interleaved(qw, angles), rotate_interleaved(kw, angles)
    elif rotary == "keras":
        qw, kw = rotate_half_split(qw, rope_start), rotate_half_split(kw, rope_start)
    groups = query_head // heads
    kw, vw = np.repeat(kw, groups, axis=2), np.repeat(vw, groups, axis=2)  # query head i -> kv head i // groups
    scores = np.einsum("bqhd,bkhd->bhqk", qw, kw)
    if relative_kind == "typical_relative":
        scores = scores + np.einsum("bqhd,qkd->bhqk", qw, relative)
    elif relative_kind == "t5_relative":
        scores = scores + relative.transpose(2, 0, 1)[None]
    if layer.attention_scale:
        scores = scores / np.sqrt(key_size)
    keep = np.ones(scores.shape, dtype=bool)
    if key_mask is not None:
        keep &= key_mask[:, None, None, :]
    if bias is not None and bias.dtype == bool:
        keep &= bias
    elif bias is not None:
        scores = scores + bias
    # n: the number of real keys (the key mask only, as bert4keras: a causal bias does not change it)
    n = scores.shape[-1] if key_mask is None else key_mask.sum(-1)[:, None, None, None]
    if layer.normalization in ("softmax", "softmax-fp32"):
        attention = softmax(np.where(keep, scores, -1e12))
    elif layer.normalization == "squared_relu":
        attention = np.maximum(np.where(keep, scores, 0), 0) ** 2 / n
    else:
        attention = softmax(np.where(keep, scores, -1e12) * np.log(np.maximum(n, 16)) / np.log(512))
    o = np.einsum("bhqk,bkhd->bqhd", attention, vw)
    if relative_kind == "typical_relative":
        o = o + np.einsum("bhqk,qkd->bqhd", attention, relative)
    o = o.reshape(*o.shape[:2], -1)
    return o @ weights["o_dense/kernel"] + weights.get("o_dense/bias", 0), scores


def make(**kwargs):
    defaults = {"heads": 4, "head_size": 8, "kernel_initializer": "glorot_normal"}
    return MultiHeadAttention(**{**defaults, **kwargs})


def test_list_form_with_a_key_mask_matches_numpy(tmp_path):
    layer = make()
    out = run_layer_test(lambda: layer, [X, Y, Y], tmp_path)
    assert_close(out, reference(layer, X, Y, Y)[0])
    masked = layer([X, X, X], mask=[None, None, KEY_MASK])
    assert_close(masked, reference(layer, X, X, X, key_mask=KEY_MASK)[0])
    assert_close(layer(X, key_mask=KEY_MASK), reference(layer, X, X, X, key_mask=KEY_MASK)[0])


def test_keyword_form_saves_and_loads(tmp_path):
    layer = make(heads=2, query_head=4, rope_mode="keras")
    out = run_layer_test(lambda: layer, X, tmp_path)
    assert_close(out, reference(layer, X, X, X)[0])


@pytest.mark.parametrize(
    "kwargs",
    [
        {"key_size": 4, "out_dim": 10},
        {"heads": 2, "query_head": 4, "GQA_mode": "llama"},
        {"heads": 2, "query_head": 4, "GQA_mode": "gemma"},
        {"heads": 1, "query_head": 4, "use_bias": False, "o_bias": True},
        {"normalization": "squared_relu"},
        {"normalization": "softmax_plus"},
        {"normalization": "softmax-fp32", "attention_scale": False},
    ],
)
def test_variants_match_numpy(kwargs, tmp_path):
    layer = make(**kwargs)
    layer([X, X, X])
    assert_close(layer(X, key_mask=KEY_MASK), reference(layer, X, X, X, key_mask=KEY_MASK)[0])
    assert_close(layer(X, attention_bias=CAUSAL), reference(layer, X, X, X, bias=CAUSAL)[0])


def test_einsum_dense_layout_computes_the_same_attention():
    dense = make(heads=2, query_head=4, use_bias=False)
    einsum = make(heads=2, query_head=4, use_bias=False, use_EinsumDense=True)
    dense([X, X, X])
    einsum([X, X, X])
    for name, heads in (("q_dense", 4), ("k_dense", 2), ("v_dense", 2)):
        kernel = to_numpy(getattr(dense, name).kernel).reshape(HIDDEN, heads, 8).transpose(1, 0, 2)
        getattr(einsum, name).kernel.assign(kernel)
    einsum.o_dense.kernel.assign(to_numpy(dense.o_dense.kernel).reshape(4, 8, HIDDEN))
    assert len(einsum.weights) == len(dense.weights) == 4
    assert_close(einsum(X, attention_bias=CAUSAL), to_numpy(dense(X, attention_bias=CAUSAL)))


def test_su_rotary_from_a_sinusoidal_input():
    layer = make(key_size=8)
    table, _ = sinusoidal_table(LENGTH, 8)
    out = layer([X, X, X, CAUSAL, table], a_bias=True, p_bias="rotary")
    assert_close(out, reference(layer, X, X, X, bias=CAUSAL, rotary="su")[0])


def test_keras_rotary_is_half_split():
    layer = make(heads=2, query_head=4, rope_mode="keras")
    out = layer(X, attention_bias=CAUSAL, p_bias="rotary")
    assert_close(out, reference(layer, X, X, X, bias=CAUSAL, rotary="keras")[0])


def test_relative_positions():
    layer = make()
    layer([X, X, X])
    typical = RNG.normal(size=(LENGTH, LENGTH, 8)).astype("float32")
    out = layer([X, X, X, typical], p_bias="typical_relative")
    assert_close(out, reference(layer, X, X, X, relative=typical, relative_kind="typical_relative")[0])
    t5 = RNG.normal(size=(LENGTH, LENGTH, 4)).astype("float32")
    out = layer(X, p_bias="t5_relative", position_bias=t5, key_mask=KEY_MASK)
    expected = reference(layer, X, X, X, key_mask=KEY_MASK, relative=t5, relative_kind="t5_relative")[0]
    assert_close(out, expected)


def test_returns_the_logits_when_asked(tmp_path):
    layer = make(return_attention_scores=True)
    out, scores = run_layer_test(lambda: layer, [X, X, X], tmp_path)
    expected_out, expected_scores = reference(layer, X, X, X)
    assert_close(out, expected_out)
    assert_close(scores, expected_scores)


@pytest.mark.parametrize(
    ("kwargs", "p_bias"), [({}, None), ({"heads": 2, "query_head": 4, "rope_mode": "keras"}, "rotary")]
)
def test_cache_fed_token_by_token_equals_the_full_pass(kwargs, p_bias):
    layer = make(**kwargs)
    full = to_numpy(layer(X, attention_bias=CAUSAL, p_bias=p_bias))
    cache = np.zeros((BATCH, 2, LENGTH, layer.heads, layer.head_size), "float32")
    for t in range(LENGTH):
        visible = (np.arange(LENGTH) <= t)[None, None, :]
        out, cache = layer(X[:, t : t + 1], attention_bias=visible, p_bias=p_bias, cache=cache, cache_index=t)
        assert_close(out, full[:, t : t + 1])


def test_cache_in_the_list_form_with_an_index_tensor():
    layer = make()
    full = to_numpy(layer([X, X, X, CAUSAL], a_bias=True))
    cache = np.zeros((BATCH, 2, LENGTH, 4, 8), "float32")
    for t in range(LENGTH):
        visible = (np.arange(LENGTH) <= t)[None]
        step = X[:, t : t + 1]
        out, cache = layer(
            [step, step, step, visible, cache, np.array([t])], a_bias=True, use_cache=True, is_cache_update_index=True
        )
        assert_close(out, full[:, t : t + 1])


def test_cache_updates_inside_a_compiled_loop():
    layer = make(heads=2, query_head=4, rope_mode="keras")
    full = to_numpy(layer(X, attention_bias=CAUSAL, p_bias="rotary"))

    def step(t, state):
        cache, outputs = state
        token = keras.ops.slice(keras.ops.convert_to_tensor(X), [0, t, 0], [BATCH, 1, HIDDEN])
        visible = keras.ops.expand_dims(keras.ops.arange(LENGTH) <= t, 0)
        out, cache = layer(token, attention_bias=visible, p_bias="rotary", cache=cache, cache_index=t)
        return cache, keras.ops.slice_update(outputs, [0, t, 0], out)

    cache = keras.ops.zeros((BATCH, 2, LENGTH, 2, 8))
    _, outputs = keras.ops.fori_loop(0, LENGTH, step, (cache, keras.ops.zeros((BATCH, LENGTH, HIDDEN))))
    assert_close(outputs, full)


def test_flash_attention_switch_matches_the_default_path(monkeypatch):
    layer = make(heads=2, query_head=4)
    default = to_numpy(layer(X, attention_bias=CAUSAL, key_mask=KEY_MASK))
    monkeypatch.setenv("FLASH_ATTN", "1")
    assert_close(layer(X, attention_bias=CAUSAL, key_mask=KEY_MASK), default)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"heads": 3, "query_head": 4}, "query_head"),
        ({"normalization": "sparsemax"}, "normalization"),
        ({"rope_mode": "yarn"}, "rope_mode"),
        ({"GQA_mode": "mistral"}, "GQA_mode"),
    ],
)
def test_bad_arguments_name_themselves(kwargs, message):
    with pytest.raises(ValueError, match=message):
        make(**kwargs)


def test_cache_needs_equal_key_and_head_sizes():
    layer = make(key_size=4)
    with pytest.raises(ValueError, match="key_size"):
        layer(X[:, :1], cache=np.zeros((BATCH, 2, LENGTH, 4, 8), "float32"), cache_index=0)


def test_unknown_position_bias_and_leftover_inputs_are_refused():
    layer = make()
    with pytest.raises(ValueError, match="p_bias"):
        layer(X, p_bias="alibi")
    with pytest.raises(ValueError, match="unused inputs"):
        layer([X, X, X, CAUSAL])


def test_mixed_bfloat16_policy_computes_in_bfloat16_with_float32_softmax():
    layer = make(heads=2, query_head=4, normalization="softmax-fp32", dtype="mixed_bfloat16")
    out = layer(X, attention_bias=CAUSAL)
    assert keras.backend.standardize_dtype(out.dtype) == "bfloat16"
    assert all(keras.backend.standardize_dtype(w.dtype) == "float32" for w in layer.weights)
    expected = reference(layer, X, X, X, bias=CAUSAL)[0]
    np.testing.assert_allclose(to_numpy(out).astype("float32"), expected, atol=0.1, rtol=0.05)
