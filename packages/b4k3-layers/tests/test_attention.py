"""MultiHeadAttention against a NumPy reference written from the math (fp32, 1e-5 tolerance),
in both calling forms, with grouped heads, rotary and relative positions, all normalizations,
Gemma 2's logit scale and soft-capping, and a KV cache fed token by token, with one index for the
batch or one per row."""

import keras
import numpy as np
import pytest
from layer_checks import assert_close, compiled, run_layer_test, to_numpy, weights_of

from b4k3_layers.attention import MultiHeadAttention

RNG = np.random.default_rng(0)
BATCH, LENGTH, HIDDEN = 2, 6, 16
X = RNG.normal(size=(BATCH, LENGTH, HIDDEN)).astype("float32")
Y = RNG.normal(size=(BATCH, LENGTH + 2, HIDDEN)).astype("float32")
KEY_MASK = np.array([[1] * LENGTH, [1] * (LENGTH - 2) + [0] * 2], dtype=bool)
CAUSAL = np.tril(np.ones((LENGTH, LENGTH), dtype=bool))
# Llama 3.1's rope scaling, shrunk so that the head size 8's wavelengths fall in all three ranges.
LLAMA3_SCALING = {
    "rope_type": "llama3",
    "factor": 8.0,
    "low_freq_factor": 1.0,
    "high_freq_factor": 4.0,
    "original_max_position_embeddings": 16,
}


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


def rotate_half_split(x, start=0, base=10000.0, frequencies=None):
    """Llama's RoPE: feature i pairs with i + D/2; `start` a number or one per row."""
    dim = x.shape[-1]
    if frequencies is None:
        frequencies = base ** (-2 * np.arange(dim // 2) / dim)
    starts = np.broadcast_to(np.asarray(start, dtype="float64"), (x.shape[0],))
    angles = (starts[:, None] + np.arange(x.shape[1]))[..., None] * frequencies  # (B, L, D/2)
    z = (x[..., : dim // 2] + 1j * x[..., dim // 2 :]) * np.exp(1j * angles)[:, :, None, :]
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
        frequencies = layer.rotary.inverse_frequencies(key_size).astype("float64")  # rope_scaling applied
        qw, kw = (rotate_half_split(x, rope_start, frequencies=frequencies) for x in (qw, kw))
    groups = query_head // heads
    kw, vw = np.repeat(kw, groups, axis=2), np.repeat(vw, groups, axis=2)  # query head i -> kv head i // groups
    scores = np.einsum("bqhd,bkhd->bhqk", qw, kw)
    if relative_kind == "typical_relative":
        scores = scores + np.einsum("bqhd,qkd->bhqk", qw, relative)
    elif relative_kind == "t5_relative":
        scores = scores + relative.transpose(2, 0, 1)[None]
    if layer.attention_scale is True:
        scores = scores / np.sqrt(key_size)
    elif layer.attention_scale:
        scores = scores * layer.attention_scale
    if layer.logit_soft_cap is not None:
        scores = np.tanh(scores / layer.logit_soft_cap) * layer.logit_soft_cap
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
        {"attention_scale": 0.2},
        {"heads": 2, "query_head": 4, "attention_scale": 0.5, "logit_soft_cap": 0.8},  # Gemma 2's
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


def test_su_rotary_without_a_table_rotates_by_the_positions():
    """rope_mode 'su' without a table computes the table's rotation itself, so a KV cache can
    start each row at its own position."""
    layer = make(key_size=8)
    out = layer(X, attention_bias=CAUSAL, p_bias="rotary")
    assert_close(out, reference(layer, X, X, X, bias=CAUSAL, rotary="su")[0])


@pytest.mark.parametrize("rope_mode", ["su", "keras"])
def test_rotary_cache_rows_at_their_own_positions_match_their_full_pass(rope_mode):
    """Each row decodes from its own cache index (row 1 two positions behind row 0)."""
    layer = make(rope_mode=rope_mode)
    full = to_numpy(layer(X, attention_bias=CAUSAL, p_bias="rotary"))
    cache = np.zeros((BATCH, 2, LENGTH, layer.heads, layer.head_size), "float32")
    starts = np.array([2, 0], dtype="int32")
    prompt = np.stack([X[0, :3], X[1, :3]])
    _, cache = layer(prompt, attention_bias=CAUSAL[:3], p_bias="rotary", cache=cache, cache_index=0)
    for offset in range(3):
        index = starts + 1 + offset
        step = np.stack([X[row, index[row] : index[row] + 1] for row in range(BATCH)])
        visible = (np.arange(LENGTH)[None] <= index[:, None])[:, None, :]
        out, cache = layer(step, attention_bias=visible, p_bias="rotary", cache=cache, cache_index=index)
        for row in range(BATCH):
            assert_close(out[row], full[row, index[row] : index[row] + 1])


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
        ({"attention_scale": 0}, "attention_scale"),
        ({"attention_scale": -0.5}, "attention_scale"),
        ({"attention_scale": "sqrt"}, "attention_scale"),
        ({"logit_soft_cap": 0.0}, "logit_soft_cap"),
        ({"logit_soft_cap": True}, "logit_soft_cap"),
        ({"rope_scaling": {"rope_type": "linear", "factor": 2.0}}, "rope_mode='keras'"),
        ({"rope_mode": "keras", "rope_scaling": {"rope_type": "yarn", "factor": 2.0}}, "'yarn' is not supported"),
        ({"pos_att_type": ["c2p", "p2p"]}, r"pos_att_type entries must be among \('c2p', 'p2c'\), got \['p2p'\]"),
        ({"heads": 2, "query_head": 4, "pos_att_type": ["c2p"]}, "one key head per query head"),
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
    with pytest.raises(ValueError, match=r"p_bias='disentangled' takes position_bias=\[relative embeddings"):
        layer(X, p_bias="disentangled", position_bias=np.zeros((4, 8), "float32"))


def test_mixed_bfloat16_policy_computes_in_bfloat16_with_float32_softmax():
    layer = make(heads=2, query_head=4, normalization="softmax-fp32", dtype="mixed_bfloat16")
    out = layer(X, attention_bias=CAUSAL)
    assert keras.backend.standardize_dtype(out.dtype) == "bfloat16"
    assert all(keras.backend.standardize_dtype(w.dtype) == "float32" for w in layer.weights)
    expected = reference(layer, X, X, X, bias=CAUSAL)[0]
    np.testing.assert_allclose(to_numpy(out).astype("float32"), expected, atol=0.1, rtol=0.05)


def test_logit_soft_cap_caps_the_returned_logits_and_saves(tmp_path):
    layer = make(heads=2, query_head=4, attention_scale=0.5, logit_soft_cap=0.8, return_attention_scores=True)
    out, scores = run_layer_test(lambda: layer, [X, Y, Y], tmp_path)
    expected_out, expected_scores = reference(layer, X, Y, Y)
    assert_close(out, expected_out)
    assert_close(scores, expected_scores)
    assert np.abs(scores).max() <= 0.8  # float32 tanh of a large logit rounds to exactly 1
    assert layer.get_config()["logit_soft_cap"] == 0.8
    assert layer.get_config()["attention_scale"] == 0.5


def test_flash_attention_switch_leaves_soft_capped_attention_alone(monkeypatch):
    layer = make(heads=2, query_head=4, logit_soft_cap=0.5)
    monkeypatch.setenv("FLASH_ATTN", "1")
    assert_close(layer(X, attention_bias=CAUSAL), reference(layer, X, X, X, bias=CAUSAL)[0])


def test_keras_rotary_with_llama3_rope_scaling(tmp_path):
    layer = make(heads=2, query_head=4, rope_mode="keras", rope_scaling=LLAMA3_SCALING)
    run_layer_test(lambda: layer, X, tmp_path, call_kwargs={"p_bias": "rotary"})
    expected = reference(layer, X, X, X, bias=CAUSAL, rotary="keras")[0]
    assert_close(layer(X, attention_bias=CAUSAL, p_bias="rotary"), expected)
    plain = make(heads=2, query_head=4, rope_mode="keras")
    plain([X, X, X])
    plain.set_weights(layer.get_weights())
    assert not np.allclose(to_numpy(plain(X, attention_bias=CAUSAL, p_bias="rotary")), expected, atol=1e-3)


# A KV cache index per row: the rows of a batch decoding at different positions.


def visible(positions):
    """`(batch, T, LENGTH)` bool mask over a cache of LENGTH slots: the query at `positions[b, t]`
    sees key j iff j <= that position."""
    return np.arange(LENGTH)[None, None] <= np.asarray(positions)[..., None]


def as_float32(x):
    return to_numpy(keras.ops.cast(x, "float32"))


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_per_row_cache_index_writes_each_row_where_its_scalar_index_writes(dtype):
    """The cache exactly (in its own dtype), the outputs to 1e-5: row b of a call with `cache_index`
    `[3, 1]` is row b of the same call with the scalar `cache_index[b]`."""
    layer = make(heads=2, query_head=4)
    cache = keras.ops.cast(RNG.normal(size=(BATCH, 2, LENGTH, 2, 8)), dtype)  # old values stay where not written
    index = np.array([3, 1], dtype="int32")
    steps = X[:, :2]
    positions = index[:, None] + np.arange(2)
    out, written = layer(steps, attention_bias=visible(positions), cache=cache, cache_index=index)
    for row, start in enumerate(index):
        row_out, row_written = layer(steps, attention_bias=visible(positions[row]), cache=cache, cache_index=int(start))
        np.testing.assert_array_equal(as_float32(written)[row], as_float32(row_written)[row])
        assert_close(as_float32(out)[row], as_float32(row_out)[row])


def test_per_row_cache_index_writes_nothing_past_the_end():
    layer = make()
    cache = np.zeros((BATCH, 2, LENGTH, 4, 8), "float32")
    _, written = layer(X[:, :2], cache=cache, cache_index=np.array([LENGTH - 1, 0], dtype="int32"))
    written = to_numpy(written) != 0
    assert written[0, :, LENGTH - 1].all()
    assert not written[0, :, : LENGTH - 1].any()
    assert written[1, :, :2].all()
    assert not written[1, :, 2:].any()


def test_rows_decoding_at_different_positions_match_their_full_pass():
    """Row 0 has a 2-token prompt, row 1 a 4-token one: one prefill call for both (row 0's last two
    slots get padding, hidden by its mask, then overwritten by its own tokens), then token by token,
    each row at its own position. Every real token's output is the causal full pass's, 1e-5."""
    layer = make(heads=2, query_head=4, rope_mode="keras")
    full = to_numpy(layer(X, attention_bias=CAUSAL, p_bias="rotary"))
    prompt = X[:, :4].copy()
    prompt[0, 2:] = RNG.normal(size=(2, HIDDEN))
    cache = np.zeros((BATCH, 2, LENGTH, 2, 8), "float32")
    out, cache = layer(
        prompt,
        attention_bias=visible(np.tile(np.arange(4), (BATCH, 1))),
        p_bias="rotary",
        cache=cache,
        cache_index=np.zeros(BATCH, "int32"),
    )
    assert_close(to_numpy(out)[0, :2], full[0, :2])
    assert_close(to_numpy(out)[1], full[1, :4])
    for step in range(2):
        index = np.array([2, 4], dtype="int32") + step
        token = X[np.arange(BATCH), index][:, None]
        mask = visible(index[:, None])
        out, cache = layer(token, attention_bias=mask, p_bias="rotary", cache=cache, cache_index=index)
        for row, position in enumerate(index):
            assert_close(to_numpy(out)[row], full[row, position : position + 1])


def test_per_row_cache_index_inside_a_compiled_loop():
    """Row 1 starts two tokens ahead (its prompt is in the cache; row 0's slots hold padding), and a
    compiled loop decodes both with `cache_index = t + offsets`, a traced (batch,) vector."""
    layer = make(heads=2, query_head=4, rope_mode="keras", rope_scaling=LLAMA3_SCALING)
    full = to_numpy(layer(X, attention_bias=CAUSAL, p_bias="rotary"))
    prompt = X[:, :2].copy()
    prompt[0] = RNG.normal(size=(2, HIDDEN))
    cache = np.zeros((BATCH, 2, LENGTH, 2, 8), "float32")
    _, cache = layer(prompt, attention_bias=CAUSAL[:2], p_bias="rotary", cache=cache, cache_index=0)
    steps = LENGTH - 2

    @compiled
    def decode(x, cache, offsets):
        def step(t, state):
            cache, outputs = state
            index = t + offsets
            token = keras.ops.take_along_axis(x, keras.ops.broadcast_to(index[:, None, None], (BATCH, 1, HIDDEN)), 1)
            mask = keras.ops.arange(LENGTH)[None, None] <= index[:, None, None]
            out, cache = layer(token, attention_bias=mask, p_bias="rotary", cache=cache, cache_index=index)
            return cache, keras.ops.slice_update(outputs, [0, t, 0], out)

        return keras.ops.fori_loop(0, steps, step, (cache, keras.ops.zeros((BATCH, steps, HIDDEN))))[1]

    convert = keras.ops.convert_to_tensor
    outputs = to_numpy(decode(convert(X), cache, convert(np.array([0, 2], dtype="int32"))))
    assert_close(outputs[0], full[0, :steps])
    assert_close(outputs[1], full[1, 2:])


def test_cache_index_must_be_a_scalar_or_one_per_row():
    layer = make()
    with pytest.raises(ValueError, match="cache_index"):
        layer(X[:, :1], cache=np.zeros((BATCH, 2, LENGTH, 4, 8), "float32"), cache_index=np.zeros((2, 2), "int32"))


def test_default_out_dim_is_heads_times_head_size():
    """bert4keras3's default: `heads * head_size` (here 4 * 8 = 32 from 16 input features)."""
    layer = make()
    assert layer.out_dim == 32
    assert tuple(layer(X).shape) == (BATCH, LENGTH, 32)
    assert make(out_dim=HIDDEN)(X).shape[-1] == HIDDEN
