"""Embedding layers against NumPy references written from the math, fp32 tolerance 1e-5 (relative
and absolute); the T5 buckets and the scaled rotary frequencies also against Hugging Face's own
functions where transformers is installed. The common Keras checks come from
`layer_checks.run_layer_test`."""

import math

import keras
import numpy as np
import pytest
from keras import ops
from layer_checks import assert_close, compiled, recording, run_layer_test, to_numpy

from b4k3_layers.embeddings import (
    DebertaRelativeEmbedding,
    Embedding,
    PositionEmbedding,
    RelativePositionEmbedding,
    RelativePositionEmbeddingT5,
    SinusoidalPositionEmbedding,
)
from b4k3_layers.rotary import RotaryEmbedding
from b4k3_ops.positions import apply_rotary_position_embeddings, sinusoidal_embeddings

RNG = np.random.default_rng(0)
X = RNG.normal(size=(2, 6, 8)).astype("float32")
CUSTOM_IDS = np.array([[3, 0, 1, 5, 5, 2], [0, 1, 2, 3, 4, 5]], dtype="int32")


def reference_merge(x, positions, merge_mode):
    """`positions` is `(batch or 1, seq_len, dim)`; 'zero' returns them as they are (bert4keras3:
    `(1, seq_len, dim)` for counted positions)."""
    if merge_mode == "add":
        return x + positions
    if merge_mode == "mul":
        return x * (1 + positions)
    if merge_mode == "zero":
        return positions
    positions = np.broadcast_to(positions, (*x.shape[:2], positions.shape[-1]))
    return np.concatenate([x, positions], axis=-1)


def reference_sinusoidal(positions, dim):
    """`[sin(p w_0), cos(p w_0), sin(p w_1), ...]`, `w_i = 10000 ** (-2i / dim)`."""
    angles = positions[..., None] * 10000.0 ** (-2 * np.arange(dim // 2) / dim)
    table = np.empty((*angles.shape[:-1], dim))
    table[..., 0::2], table[..., 1::2] = np.sin(angles), np.cos(angles)
    return table


# Embedding


def test_embedding_looks_up_rows_of_the_table(tmp_path):
    ids = np.array([[1, 4, 0], [9, 9, 2]], dtype="int32")
    make, made = recording(lambda: Embedding(10, 4))
    out = run_layer_test(make, ids, tmp_path)
    assert_close(out, to_numpy(made[0].embeddings.value)[ids])


def test_embedding_dense_mode_is_a_tied_lm_head(tmp_path):
    """mode='dense' is `x @ E.T`, in eager calls and in a saved and reloaded model."""
    layer = Embedding(10, 8)
    layer.build()
    table = to_numpy(layer.embeddings.value)
    assert_close(layer(X, mode="dense"), X @ table.T)
    assert layer.compute_output_shape(X.shape, mode="dense") == (2, 6, 10)

    ids = keras.Input((None,), dtype="int32")
    model = keras.Model(ids, layer(layer(ids), mode="dense"))
    token_ids = np.array([[1, 2, 3], [4, 5, 0]], dtype="int32")
    expected = table[token_ids] @ table.T
    assert_close(model(token_ids), expected)
    model.save(tmp_path / "tied.keras")
    assert_close(keras.saving.load_model(tmp_path / "tied.keras")(token_ids), expected)


def test_embedding_mask_keeps_the_first_position_for_a_t5_start_token():
    layer = Embedding(10, 4, mask_zero=True)
    ids = np.array([[0, 4, 0, 0], [3, 0, 2, 0]], dtype="int32")
    expected = np.array([[True, True, False, False], [True, False, True, False]])
    np.testing.assert_array_equal(to_numpy(layer.compute_mask(ops.convert_to_tensor(ids))), expected)


def test_embedding_dense_mode_passes_the_hidden_states_mask_on():
    mask = ops.convert_to_tensor(np.array([[True] * 6, [True] * 3 + [False] * 3]))
    for layer in (Embedding(10, 8), Embedding(10, 8, mask_zero=True)):
        assert layer.compute_mask(ops.convert_to_tensor(X), mask) is mask


def test_embedding_rejects_an_unknown_mode():
    with pytest.raises(ValueError, match="mode"):
        Embedding(10, 8)(X, mode="reverse")


# PositionEmbedding


@pytest.mark.parametrize("custom_position_ids", [False, True])
@pytest.mark.parametrize("merge_mode", ["add", "mul", "zero", "concat"])
def test_position_embedding_merges_table_rows(merge_mode, custom_position_ids, tmp_path):
    make, made = recording(
        lambda: PositionEmbedding(
            8, 8, merge_mode, embeddings_initializer="uniform", custom_position_ids=custom_position_ids
        )
    )
    inputs = [X, CUSTOM_IDS] if custom_position_ids else X
    out = run_layer_test(make, inputs, tmp_path)
    table = to_numpy(made[0].embeddings.value)
    positions = table[CUSTOM_IDS] if custom_position_ids else table[None, :6]
    assert_close(out, reference_merge(X, positions, merge_mode))


@pytest.mark.parametrize(("hierarchical", "alpha"), [(True, 0.4), (0.25, 0.25)])
def test_hierarchical_position_embedding_extends_the_table(hierarchical, alpha, tmp_path):
    """Positions 0..10 from a 4-row table: `a * emb[p // 4] + (1 - a) * emb[p % 4]`."""
    x = RNG.normal(size=(2, 11, 8)).astype("float32")
    make, made = recording(lambda: PositionEmbedding(4, 8, hierarchical=hierarchical, embeddings_initializer="uniform"))
    out = run_layer_test(make, x, tmp_path)
    table = to_numpy(made[0].embeddings.value).astype("float64")
    emb = (table - alpha * table[0]) / (1 - alpha)
    p = np.arange(11)
    expected = alpha * emb[p // 4] + (1 - alpha) * emb[p % 4]
    assert_close(out, x + expected[None])
    assert_close(out[:, :4], x[:, :4] + table[None])  # the first rows are the table itself


def test_hierarchical_position_embedding_with_custom_position_ids(tmp_path):
    ids = np.array([[0, 7, 15, 4, 9, 12]], dtype="int32")
    make, made = recording(
        lambda: PositionEmbedding(
            4, 8, "zero", hierarchical=True, embeddings_initializer="uniform", custom_position_ids=True
        )
    )
    out = run_layer_test(make, [X[:1], ids], tmp_path)
    table = to_numpy(made[0].embeddings.value).astype("float64")
    emb = (table - 0.4 * table[0]) / 0.6
    assert_close(out, 0.4 * emb[ids // 4] + 0.6 * emb[ids % 4])


@pytest.mark.parametrize(
    "make_layer",
    [lambda **kwargs: PositionEmbedding(16, 8, **kwargs), lambda **kwargs: SinusoidalPositionEmbedding(8, **kwargs)],
    ids=["learned", "sinusoidal"],
)
def test_absolute_position_embeddings_pass_the_padding_mask_on(make_layer):
    mask = ops.convert_to_tensor(np.array([[True] * 6, [True] * 3 + [False] * 3]))
    assert make_layer().supports_masking
    assert make_layer().compute_mask(ops.convert_to_tensor(X), mask) is mask
    assert make_layer(custom_position_ids=True).compute_mask([X, None], [mask, None]) is mask


def test_position_embedding_refuses_a_sequence_longer_than_its_table():
    with pytest.raises(ValueError, match="longer than the 4 positions"):
        PositionEmbedding(4, 8)(X)
    assert PositionEmbedding(4, 8, hierarchical=True)(X).shape == X.shape


def test_position_embedding_rejects_bad_arguments():
    with pytest.raises(ValueError, match="merge_mode"):
        PositionEmbedding(8, 8, merge_mode="sum")
    with pytest.raises(ValueError, match="hierarchical"):
        PositionEmbedding(8, 8, hierarchical=1.0)
    with pytest.raises(ValueError, match="input_dim"):
        PositionEmbedding(0, 8)
    with pytest.raises(ValueError, match="output_dim"):
        PositionEmbedding(8, -1)
    with pytest.raises(ValueError, match="custom_position_ids"):
        PositionEmbedding(8, 8, custom_position_ids=True)(X)
    with pytest.raises(ValueError, match="custom_position_ids"):
        PositionEmbedding(8, 8)([X, CUSTOM_IDS])


# SinusoidalPositionEmbedding


@pytest.mark.parametrize("custom_position_ids", [False, True])
@pytest.mark.parametrize("merge_mode", ["add", "mul", "zero", "concat"])
def test_sinusoidal_position_embedding_merges_interleaved_sin_cos(merge_mode, custom_position_ids, tmp_path):
    def make():
        return SinusoidalPositionEmbedding(8, merge_mode, custom_position_ids=custom_position_ids)

    inputs = [X, CUSTOM_IDS] if custom_position_ids else X
    out = run_layer_test(make, inputs, tmp_path)
    positions = CUSTOM_IDS if custom_position_ids else np.arange(6)[None]
    assert_close(out, reference_merge(X, reference_sinusoidal(positions.astype("float64"), 8), merge_mode))
    if merge_mode == "zero":  # bert4keras3's shape: one row of positions unless the ids are per row
        assert out.shape == ((2 if custom_position_ids else 1), 6, 8)


def test_sinusoidal_position_embedding_needs_an_even_output_dim():
    with pytest.raises(ValueError, match="output_dim"):
        SinusoidalPositionEmbedding(7)
    with pytest.raises(ValueError, match="merge_mode"):
        SinusoidalPositionEmbedding(8, merge_mode="none")


# RelativePositionEmbedding


def test_relative_position_embedding_clips_key_minus_query(tmp_path):
    q, v = X[:, :5], RNG.normal(size=(2, 9, 3)).astype("float32")
    make, made = recording(lambda: RelativePositionEmbedding(7, 4, embeddings_initializer="uniform"))
    out = run_layer_test(make, [q, v], tmp_path)
    table = to_numpy(made[0].embeddings.value)
    i, j = np.arange(5)[:, None], np.arange(9)[None]
    assert out.shape == (5, 9, 4)
    assert_close(out, table[np.clip(j - i, -3, 3) + 3])


def deberta_rows(length, span, buckets, max_position):
    """NumPy transcription of DeBERTa's row of each (query, key) pair: `i - j`, log-bucketed past
    `buckets // 2` when `buckets > 0`, offset by `span` and clipped to the table."""
    relative = np.arange(length)[:, None] - np.arange(length)[None]
    if buckets > 0:
        mid = buckets // 2
        distance = np.where(np.abs(relative) < mid, mid - 1, np.abs(relative)).astype("float32")
        logarithmic = np.ceil(np.log(distance / mid) / np.log((max_position - 1) / mid) * (mid - 1)) + mid
        relative = np.where(distance <= mid, relative, logarithmic * np.sign(relative)).astype(int)
    return np.clip(relative + span, 0, 2 * span - 1)


@pytest.mark.parametrize(("buckets", "max_position", "span", "layer_norm"), [(6, 16, 6, True), (-1, 3, 3, False)])
def test_deberta_relative_embedding_gives_its_table_and_each_pairs_row(
    buckets, max_position, span, layer_norm, tmp_path
):
    make, made = recording(
        lambda: DebertaRelativeEmbedding(
            4, max_position, position_buckets=buckets, layer_norm=layer_norm, embeddings_initializer="uniform"
        )
    )
    table, rows = run_layer_test(make, np.zeros((2, 11), dtype="int32"), tmp_path)
    weights = to_numpy(made[0].embeddings.value)
    if layer_norm:
        centred = weights - weights.mean(-1, keepdims=True)
        weights = centred / np.sqrt((centred**2).mean(-1, keepdims=True) + 1e-7)
    assert_close(table, weights)
    np.testing.assert_array_equal(rows, deberta_rows(11, span, buckets, max_position))


def test_deberta_relative_embedding_needs_more_positions_than_exact_buckets():
    with pytest.raises(ValueError, match="max_relative_positions=4 must exceed position_buckets // 2 \\+ 1 = 4"):
        DebertaRelativeEmbedding(8, 4, position_buckets=6)


def test_relative_position_embedding_rejects_bad_sizes():
    with pytest.raises(ValueError, match="input_dim"):
        RelativePositionEmbedding(0, 4)
    with pytest.raises(ValueError, match="output_dim"):
        RelativePositionEmbedding(8, 2.5)


# RelativePositionEmbeddingT5


def hf_t5_buckets(relative_position, bidirectional, num_buckets, max_distance):
    """NumPy port of Hugging Face's `T5Attention._relative_position_bucket` (float32 log, as HF)."""
    buckets = np.zeros_like(relative_position)
    if bidirectional:
        num_buckets //= 2
        buckets += (relative_position > 0).astype(relative_position.dtype) * num_buckets
        relative_position = np.abs(relative_position)
    else:
        relative_position = -np.minimum(relative_position, 0)
    max_exact = num_buckets // 2
    is_small = relative_position < max_exact
    with np.errstate(divide="ignore"):
        scaled = np.log(relative_position.astype("float32") / np.float32(max_exact))
    scaled = scaled / np.float32(math.log(max_distance / max_exact)) * np.float32(num_buckets - max_exact)
    if_large = max_exact + np.where(is_small, 0, scaled).astype(relative_position.dtype)
    if_large = np.minimum(if_large, num_buckets - 1)
    return buckets + np.where(is_small, relative_position, if_large)


T5_CASES = [
    # (q_len, v_len, num_buckets, max_distance, bidirectional)
    (150, 150, 32, 128, True),
    (150, 150, 32, 128, False),
    (3, 140, 32, 128, True),
    (40, 7, 16, 20, False),
]


@pytest.mark.parametrize(("q_len", "v_len", "num_buckets", "max_distance", "bidirectional"), T5_CASES)
def test_t5_relative_buckets_match_hugging_face_formula(
    q_len, v_len, num_buckets, max_distance, bidirectional, tmp_path
):
    q, v = np.zeros((1, q_len, 2), "float32"), np.zeros((1, v_len, 2), "float32")
    make, made = recording(
        lambda: RelativePositionEmbeddingT5(
            num_buckets, 3, max_distance, bidirectional, embeddings_initializer="uniform"
        )
    )
    out = run_layer_test(make, [q, v], tmp_path)
    relative = np.arange(v_len)[None] - np.arange(q_len)[:, None]  # key position minus query position
    expected_buckets = hf_t5_buckets(relative, bidirectional, num_buckets, max_distance)
    np.testing.assert_array_equal(to_numpy(made[0].compute_position_ids([q, v])), expected_buckets)
    assert_close(out, to_numpy(made[0].embeddings.value)[expected_buckets])


@pytest.mark.parametrize("bidirectional", [True, False])
def test_t5_relative_buckets_match_hugging_face_itself(bidirectional):
    modeling_t5 = pytest.importorskip("transformers.models.t5.modeling_t5")
    torch = pytest.importorskip("torch")
    relative = np.arange(300)[None] - np.arange(300)[:, None]
    expected = modeling_t5.T5Attention._relative_position_bucket(
        torch.tensor(relative), bidirectional=bidirectional, num_buckets=32, max_distance=128
    ).numpy()
    layer = RelativePositionEmbeddingT5(32, 4, bidirectional=bidirectional)
    x = np.zeros((1, 300, 2), "float32")
    np.testing.assert_array_equal(to_numpy(layer.compute_position_ids([x, x])), expected)


def test_t5_relative_position_embedding_rejects_bad_arguments():
    with pytest.raises(ValueError, match="input_dim"):
        RelativePositionEmbeddingT5(3, 4)
    with pytest.raises(ValueError, match="max_distance"):
        RelativePositionEmbeddingT5(32, 4, max_distance=8)


# RotaryEmbedding


def reference_rotary(x, start_index=0, max_wavelength=10000.0, scaling_factor=1.0):
    """HF Llama's rotation, `x` as `(batch, seq_len, ..., dim)`: feature f pairs with f + dim/2;
    `scaling_factor` divides the exponent range, as bert4keras3's (keras_nlp's) RotaryEmbedding."""
    seq_len, dim = x.shape[1], x.shape[-1]
    positions = np.arange(seq_len) + start_index
    angles = positions[:, None] * max_wavelength ** (-np.arange(0, dim, 2) / scaling_factor / dim)
    angles = angles.reshape(seq_len, *[1] * (x.ndim - 3), dim // 2)
    first, second = x[..., : dim // 2], x[..., dim // 2 :]
    cos, sin = np.cos(angles), np.sin(angles)
    return np.concatenate([first * cos - second * sin, second * cos + first * sin], axis=-1)


QKV = RNG.normal(size=(2, 7, 3, 8)).astype("float32")


@pytest.mark.parametrize(
    "arguments", [{}, {"max_wavelength": 500, "scaling_factor": 2.0}, {"max_wavelength": 10000, "scaling_factor": 4}]
)
def test_rotary_embedding_rotates_half_split_pairs(arguments, tmp_path):
    out = run_layer_test(lambda: RotaryEmbedding(**arguments), QKV, tmp_path)
    assert_close(out, reference_rotary(QKV, **arguments))


def test_interleaved_rotary_embedding_is_roformers(tmp_path):
    """`interleaved=True` pairs features (2f, 2f + 1): the rotation the sinusoidal table gives
    RoFormer (`apply_rotary_position_embeddings`), here from a start index per row."""
    out = run_layer_test(
        lambda: RotaryEmbedding(interleaved=True), QKV, tmp_path, call_kwargs={"start_index": np.array([3, 0])}
    )
    for row, start in enumerate((3, 0)):
        table = sinusoidal_embeddings(np.arange(start, start + QKV.shape[1]), QKV.shape[-1])[None]
        assert_close(out[row : row + 1], apply_rotary_position_embeddings(table, QKV[row : row + 1]))
    with pytest.raises(ValueError, match="feature_axis=-1"):
        RotaryEmbedding(interleaved=True, feature_axis=1)


def test_rotary_embedding_with_a_start_index(tmp_path):
    out = run_layer_test(lambda: RotaryEmbedding(), QKV, tmp_path, call_kwargs={"start_index": 5})
    assert_close(out, reference_rotary(QKV, start_index=5))


def test_rotary_embedding_on_other_axes(tmp_path):
    """Features on axis 1 and positions on axis 3, the feature axis before the sequence axis."""
    x = np.transpose(QKV, (0, 3, 2, 1))  # (batch, dim, heads, seq_len)
    out = run_layer_test(lambda: RotaryEmbedding(sequence_axis=3, feature_axis=1), x, tmp_path)
    assert_close(out, np.transpose(reference_rotary(QKV), (0, 3, 2, 1)))


@pytest.mark.parametrize("as_tensor", [False, True])
def test_rotary_embedding_cached_decoding_matches_full_sequence(as_tensor):
    """Position p computed alone with start_index=p is row p of the full-sequence result."""
    rope = RotaryEmbedding()
    full = to_numpy(rope(QKV))
    for p in range(QKV.shape[1]):
        start_index = ops.convert_to_tensor(p, dtype="int32") if as_tensor else p
        assert_close(rope(QKV[:, p : p + 1], start_index=start_index), full[:, p : p + 1])


def test_rotary_embedding_start_index_inside_a_compiled_loop():
    """A decode loop (`ops.fori_loop`, traced under JAX) passes the loop counter as start_index."""
    rope = RotaryEmbedding()
    batch, seq_len, heads, dim = QKV.shape
    x = ops.convert_to_tensor(QKV)

    def step(p, out):
        token = ops.slice(x, (0, p, 0, 0), (batch, 1, heads, dim))
        return ops.slice_update(out, (0, p, 0, 0), rope(token, start_index=p))

    out = ops.fori_loop(0, seq_len, step, ops.zeros_like(x))
    assert_close(out, reference_rotary(QKV))


def test_rotary_embedding_rejects_bad_arguments():
    with pytest.raises(ValueError, match="feature_axis"):
        RotaryEmbedding()(np.zeros((1, 4, 7), "float32"))
    with pytest.raises(ValueError, match="sequence_axis"):
        RotaryEmbedding(sequence_axis=2, feature_axis=-1)(np.zeros((1, 4, 8), "float32"))
    with pytest.raises(ValueError, match="max_wavelength"):
        RotaryEmbedding(max_wavelength=0)
    with pytest.raises(ValueError, match="scaling_factor"):
        RotaryEmbedding(scaling_factor=-1.0)


# RotaryEmbedding: Hugging Face rope scaling and per-row start positions

LLAMA3_SCALING = {
    "rope_type": "llama3",
    "factor": 8.0,
    "low_freq_factor": 1.0,
    "high_freq_factor": 4.0,
    # With dim 16 and base 10000 the wavelengths run from 6 to 20000: some below original / high
    # (64, kept), one between (interpolated) and the rest above original / low (256, divided).
    "original_max_position_embeddings": 256,
}


def rotate_with_frequencies(x, frequencies, start_index=0):
    """`reference_rotary` with given inverse frequencies; `start_index` a number or one per row."""
    starts = np.broadcast_to(np.asarray(start_index, dtype="float64"), (x.shape[0],))
    angles = (starts[:, None] + np.arange(x.shape[1]))[..., None] * frequencies  # (batch, seq_len, dim/2)
    angles = angles.reshape(*angles.shape[:2], *[1] * (x.ndim - 3), -1)
    dim = x.shape[-1]
    first, second = x[..., : dim // 2], x[..., dim // 2 :]
    cos, sin = np.cos(angles), np.sin(angles)
    return np.concatenate([first * cos - second * sin, second * cos + first * sin], axis=-1)


@pytest.mark.parametrize(
    "rope_scaling", [LLAMA3_SCALING, {"type": "linear", "factor": 4.0}, {"rope_type": "linear", "factor": 2}]
)
def test_rotary_embedding_scaled_frequencies_match_transformers(rope_scaling, tmp_path):
    """Reference: transformers' `ROPE_INIT_FUNCTIONS` for a LlamaConfig with head_dim 16; the
    frequencies to 1e-6 relative, the rotation at positions 300.. to 1e-4 (float32 angles)."""
    transformers = pytest.importorskip("transformers")
    pytest.importorskip("torch")
    from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS

    config = transformers.LlamaConfig(
        hidden_size=32, num_attention_heads=2, head_dim=16, rope_theta=10000.0, rope_scaling=dict(rope_scaling)
    )
    rope_type = rope_scaling.get("rope_type", rope_scaling.get("type"))
    expected, _ = ROPE_INIT_FUNCTIONS[rope_type](config, "cpu")
    make, made = recording(lambda: RotaryEmbedding(rope_scaling=rope_scaling))
    x = RNG.normal(size=(2, 5, 3, 16)).astype("float32")
    out = run_layer_test(make, x, tmp_path, call_kwargs={"start_index": 300})
    frequencies = made[0].inverse_frequencies(16)
    assert frequencies.dtype == np.float32
    np.testing.assert_allclose(frequencies, expected.numpy(), rtol=1e-6)
    assert_close(out, rotate_with_frequencies(x, expected.numpy().astype("float64"), 300), rtol=1e-4, atol=1e-4)


def test_linear_rope_scaling_divides_the_positions():
    """Hugging Face's linear rope scaling: position p turns as position p / factor does unscaled."""
    x = RNG.normal(size=(2, 8, 3, 16)).astype("float32")
    linear = RotaryEmbedding(rope_scaling={"rope_type": "linear", "factor": 4.0})(x)
    frequencies = 10000.0 ** (-np.arange(0, 16, 2) / 16) / 4.0
    assert_close(linear, rotate_with_frequencies(x, frequencies, 0))
    assert_close(RotaryEmbedding(rope_scaling={"rope_type": "default"})(x), reference_rotary(x))


@pytest.mark.parametrize(
    ("arguments", "x", "transpose"),
    [
        ({}, QKV, None),  # (batch, seq_len, heads, dim)
        ({"feature_axis": 2}, np.transpose(QKV, (0, 1, 3, 2)), (0, 1, 3, 2)),  # (batch, seq_len, dim, heads)
        ({"sequence_axis": 3, "feature_axis": 1}, np.transpose(QKV, (0, 3, 2, 1)), (0, 3, 2, 1)),
    ],
)
def test_rotary_embedding_per_row_start_equals_each_row_alone(arguments, x, transpose, tmp_path):
    starts = np.array([5, 0], dtype="int32")
    out = run_layer_test(lambda: RotaryEmbedding(**arguments), x, tmp_path, call_kwargs={"start_index": starts})
    rope = RotaryEmbedding(**arguments)
    for row, start in enumerate(starts):
        np.testing.assert_array_equal(out[row : row + 1], to_numpy(rope(x[row : row + 1], start_index=int(start))))
    expected = np.concatenate([reference_rotary(QKV[row : row + 1], start) for row, start in enumerate(starts)])
    assert_close(out, expected if transpose is None else np.transpose(expected, transpose))


def test_rotary_embedding_per_row_start_inside_a_compiled_loop():
    """Rows decoding at different positions: the loop passes `starts + p` (a traced (batch,) vector).
    Tolerance 1e-4, the float32 angles at position 100."""
    rope = RotaryEmbedding(rope_scaling=LLAMA3_SCALING)
    batch, seq_len, heads, dim = QKV.shape
    starts = np.array([100, 3], dtype="int32")

    @compiled
    def decode(x, starts):
        def step(p, out):
            token = ops.slice(x, (0, p, 0, 0), (batch, 1, heads, dim))
            return ops.slice_update(out, (0, p, 0, 0), rope(token, start_index=starts + p))

        return ops.fori_loop(0, seq_len, step, ops.zeros_like(x))

    out = decode(ops.convert_to_tensor(QKV), ops.convert_to_tensor(starts))
    expected = rotate_with_frequencies(QKV, rope.inverse_frequencies(dim).astype("float64"), starts)
    assert_close(out, expected, rtol=1e-4, atol=1e-4)


def test_rotary_embedding_one_element_start_is_a_scalar():
    """A `(1,)` start (bert4keras3's list form passes the cache index so) applies to every row."""
    rope = RotaryEmbedding(sequence_axis=0, feature_axis=-1)  # no batch axis: only a scalar start fits
    x = QKV[0]
    assert_close(rope(x, start_index=np.array([4])), to_numpy(rope(x, start_index=4)))


@pytest.mark.parametrize(
    ("rope_scaling", "message"),
    [
        ({"rope_type": "dynamic", "factor": 2.0}, "'dynamic' is not supported.*'llama3'"),
        ({"rope_type": "yarn", "factor": 4.0}, "'yarn' is not supported"),
        ({"type": "longrope", "factor": 4.0}, "'longrope' is not supported"),
        ({"rope_type": "llama3", "factor": 8.0}, "missing.*low_freq_factor"),
        ({"rope_type": "linear", "factor": 2.0, "partial_rotary_factor": 0.5}, "unexpected.*partial_rotary_factor"),
        ({"rope_type": "linear", "factor": 0}, "factor"),
        ({**LLAMA3_SCALING, "low_freq_factor": 4.0}, "high_freq_factor > low_freq_factor"),
        ({"rope_type": "linear", "factor": 2.0, "rope_theta": 500000.0}, "rope_theta"),
        ("linear", "dict"),
    ],
)
def test_rotary_embedding_rejects_rope_scaling_it_cannot_apply(rope_scaling, message):
    with pytest.raises(ValueError, match=message):
        RotaryEmbedding(rope_scaling=rope_scaling)


def test_rotary_embedding_rejects_per_row_starts_it_cannot_place():
    with pytest.raises(ValueError, match="batch on axis 0"):
        RotaryEmbedding(sequence_axis=0)(np.zeros((4, 2, 8), "float32"), start_index=np.array([0, 1]))
    with pytest.raises(ValueError, match="scalar or a"):
        RotaryEmbedding()(QKV, start_index=np.zeros((2, 1), "int32"))
