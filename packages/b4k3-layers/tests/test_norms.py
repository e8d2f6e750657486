"""The normalization layers against NumPy references written from their formulas (fp32 tolerance
1e-5), their float32 parts under mixed_bfloat16, and their argument checks."""

import h5py
import keras
import ml_dtypes
import numpy as np
import pytest
from keras import ops
from layer_checks import assert_close, randomized, run_layer_test, weights_of

from b4k3_layers.norms import GroupNorm, LayerNormalization, LlamaLayerNorm, RMSNormalization, ScaleOffset

MIXED = "mixed_bfloat16"
rng = np.random.default_rng(0)
X = rng.normal(size=(2, 5, 8)).astype("float32")
COND = rng.normal(size=(2, 3)).astype("float32")


def rms_normalized(x, epsilon):
    return x / np.sqrt(np.mean(x**2, axis=-1, keepdims=True) + epsilon)


def rounded_to_bfloat16(x):
    """float32 values rounded once to bfloat16 (to nearest even), as float32."""
    return np.asarray(x, np.float32).astype(ml_dtypes.bfloat16).astype(np.float32)


def assert_rounded_once_from_float32(output, reference):
    """`output` is bfloat16 and is the float32 `reference` rounded once. A last-bit difference is
    allowed on under 1% of elements (the float32 summation order can tip a value across a rounding
    boundary); computing in bfloat16 rounds at every step and misses on 10-45% of them."""
    assert keras.backend.standardize_dtype(output.dtype) == "bfloat16"
    got = ops.convert_to_numpy(ops.cast(output, "float32"))
    want = rounded_to_bfloat16(reference)
    np.testing.assert_allclose(got, want, rtol=2**-7, atol=0)
    assert np.mean(got != want) < 0.01


def test_scale_offset_is_gamma_times_x_plus_beta(tmp_path):
    layer = randomized(ScaleOffset(), X.shape)
    w = weights_of(layer)
    output = run_layer_test(lambda: layer, X, tmp_path)
    assert_close(output, X * w["gamma"] + w["beta"])


def test_scale_offset_creates_beta_then_gamma():
    layer = ScaleOffset()
    layer.build(X.shape)
    assert list(weights_of(layer)) == ["beta", "gamma"]


def test_scale_offset_constants_are_applied_without_weights(tmp_path):
    output = run_layer_test(lambda: ScaleOffset(scale=2.5, offset=-0.5), X, tmp_path)
    assert_close(output, X * 2.5 - 0.5)
    layer = ScaleOffset(scale=False, offset=None)
    assert_close(layer(X), X)
    assert layer.weights == []


@pytest.mark.parametrize("hidden_units", [None, 4])
def test_conditional_scale_offset_shifts_gamma_and_beta_by_projections_of_cond(tmp_path, hidden_units):
    def make():
        layer = ScaleOffset(conditional=True, hidden_units=hidden_units, hidden_activation="tanh")
        return randomized(layer, [X.shape, COND.shape])

    layer = make()
    w = weights_of(layer)
    output = run_layer_test(lambda: layer, [X, COND], tmp_path)
    cond = COND if hidden_units is None else np.tanh(COND @ w["hidden_dense/kernel"])
    gamma = w["gamma"] + cond @ w["gamma_dense/kernel"]
    beta = w["beta"] + cond @ w["beta_dense/kernel"]
    assert_close(output, X * gamma[:, None, :] + beta[:, None, :])


def test_conditional_projections_start_at_zero():
    layer = ScaleOffset(conditional=True)
    assert_close(layer([X, COND]), X)


def test_conditional_scale_offset_with_constants_still_takes_the_condition():
    layer = randomized(ScaleOffset(scale=2.0, offset=1.0, conditional=True), [X.shape, COND.shape])
    w = weights_of(layer)
    assert sorted(w) == ["beta_dense/kernel", "gamma_dense/kernel"]
    gamma = 2.0 + COND @ w["gamma_dense/kernel"]
    beta = 1.0 + COND @ w["beta_dense/kernel"]
    assert_close(layer([X, COND]), X * gamma[:, None, :] + beta[:, None, :])


def test_layer_normalization_centres_scales_and_applies_gamma_beta(tmp_path):
    layer = randomized(LayerNormalization(), X.shape)
    w = weights_of(layer)
    output = run_layer_test(lambda: layer, X, tmp_path)
    centred = X - X.mean(axis=-1, keepdims=True)
    assert_close(output, rms_normalized(centred, 1e-7) * w["gamma"] + w["beta"])


def test_layer_normalization_defaults_epsilon_to_keras_epsilon_and_keeps_zero():
    assert LayerNormalization().epsilon == keras.config.epsilon()
    assert LayerNormalization(epsilon=0).epsilon == 0


def test_layer_normalization_gives_zero_not_nan_for_a_constant_row_without_epsilon():
    x = np.ones((2, 8), "float32")
    assert_close(LayerNormalization(epsilon=0)(x), np.zeros((2, 8)))


def test_t5_rms_norm_is_layer_normalization_without_mean_and_offset(tmp_path):
    layer = randomized(LayerNormalization(zero_mean=False, offset=False, epsilon=1e-6), X.shape)
    w = weights_of(layer)
    assert list(w) == ["gamma"]
    output = run_layer_test(lambda: layer, X, tmp_path)
    assert_close(output, rms_normalized(X, 1e-6) * w["gamma"])


def test_conditional_layer_normalization(tmp_path):
    layer = randomized(LayerNormalization(conditional=True, hidden_units=4), [X.shape, COND.shape])
    w = weights_of(layer)
    output = run_layer_test(lambda: layer, [X, COND], tmp_path)
    cond = COND @ w["hidden_dense/kernel"]
    gamma = (w["gamma"] + cond @ w["gamma_dense/kernel"])[:, None, :]
    beta = (w["beta"] + cond @ w["beta_dense/kernel"])[:, None, :]
    centred = X - X.mean(axis=-1, keepdims=True)
    assert_close(output, rms_normalized(centred, 1e-7) * gamma + beta)


def test_rms_normalization_multiplies_by_one_plus_scale(tmp_path):
    layer = randomized(RMSNormalization(), X.shape)
    (scale,) = layer.get_weights()
    output = run_layer_test(lambda: layer, X, tmp_path)
    assert_close(output, rms_normalized(X, 1e-6) * (1 + scale))
    assert_close(RMSNormalization()(X), rms_normalized(X, 1e-6))  # scale starts at zeros


def test_llama_layer_norm_multiplies_by_scale(tmp_path):
    layer = randomized(LlamaLayerNorm(epsilon=1e-5), X.shape)
    (scale,) = layer.get_weights()
    output = run_layer_test(lambda: layer, X, tmp_path)
    assert_close(output, rms_normalized(X, 1e-5) * scale)
    assert_close(LlamaLayerNorm()(X), rms_normalized(X, 1e-6))  # scale starts at ones


def test_rms_normalization_runs_in_float32_under_mixed_bfloat16():
    x = rng.normal(size=(4, 16, 64)).astype("float32")
    layer = randomized(RMSNormalization(dtype=MIXED), x.shape)
    (scale,) = layer.get_weights()
    assert scale.dtype == np.float32
    x_in = rounded_to_bfloat16(x)  # what the layer's bfloat16 input holds
    assert_rounded_once_from_float32(layer(x), rms_normalized(x_in, 1e-6) * (1 + scale))


def test_llama_layer_norm_normalizes_in_float32_then_scales_in_bfloat16():
    x = rng.normal(size=(4, 16, 64)).astype("float32")
    layer = randomized(LlamaLayerNorm(dtype=MIXED), x.shape)
    (scale,) = layer.get_weights()
    normalized = rounded_to_bfloat16(rms_normalized(rounded_to_bfloat16(x), 1e-6))
    # A product of two bfloat16 values is exact in float32, so it too is rounded once.
    assert_rounded_once_from_float32(layer(x), normalized * rounded_to_bfloat16(scale))


def group_normalized(x, head_size, epsilon, scale, offset):
    heads = x.reshape(*x.shape[:-1], -1, head_size)
    mean = heads.mean(axis=-1, keepdims=True)
    variance = ((heads - mean) ** 2).mean(axis=-1, keepdims=True)
    heads = (heads - mean) / np.sqrt(variance + epsilon) * scale + offset
    return heads.reshape(x.shape)


@pytest.mark.parametrize("epsilon", [64e-5, 0.5])
def test_group_norm_normalizes_each_head_then_scales_and_offsets(tmp_path, epsilon):
    layer = randomized(GroupNorm(hidden_size=8, head_size=2, epsilon=epsilon), X.shape)
    w = weights_of(layer)
    assert {name: value.shape for name, value in w.items()} == {
        "scale": (4, 2),
        "offset": (4, 2),
        "head_norm/gamma": (2,),
        "head_norm/beta": (2,),
    }
    output = run_layer_test(lambda: layer, X, tmp_path)
    normalized = group_normalized(X, 2, epsilon, w["head_norm/gamma"], w["head_norm/beta"])
    assert_close(output, (normalized.reshape(2, 5, 4, 2) * w["scale"] + w["offset"]).reshape(X.shape))


def test_group_norm_starts_as_a_plain_per_head_normalization():
    scale, offset = np.ones((2, 4)), np.zeros((2, 4))
    assert_close(GroupNorm(8, 4)(X), group_normalized(X, 4, 64e-5, scale, offset))


def test_group_norm_runs_in_float32_under_mixed_bfloat16():
    x = rng.normal(size=(4, 16, 64)).astype("float32")
    layer = randomized(GroupNorm(64, 16, dtype=MIXED), x.shape)
    w = weights_of(layer)
    normalized = group_normalized(rounded_to_bfloat16(x), 16, 64e-5, w["head_norm/gamma"], w["head_norm/beta"])
    reference = (normalized.reshape(4, 16, 4, 16) * w["scale"] + w["offset"]).reshape(x.shape)
    assert_rounded_once_from_float32(layer(x), reference)


@pytest.mark.parametrize(
    ("arguments", "named"),
    [
        ({"hidden_size": 10, "head_size": 4}, "hidden_size"),
        ({"hidden_size": 8, "head_size": 0}, "head_size"),
        ({"hidden_size": 8.0, "head_size": 4}, "hidden_size"),
    ],
)
def test_group_norm_rejects_bad_sizes(arguments, named):
    with pytest.raises(ValueError, match=named):
        GroupNorm(**arguments)


def test_group_norm_rejects_inputs_of_another_width():
    with pytest.raises(ValueError, match="hidden_size"):
        GroupNorm(hidden_size=16, head_size=4)(X)


def test_conditional_layers_need_two_inputs():
    with pytest.raises(ValueError, match="conditional"):
        ScaleOffset(conditional=True)(X)
    with pytest.raises(ValueError, match="conditional"):
        LayerNormalization(conditional=True)(X)


@pytest.mark.parametrize("make", [ScaleOffset, LayerNormalization, RMSNormalization, LlamaLayerNorm, GroupNorm])
def test_norms_keep_the_mask_of_their_input(make):
    layer = make(8, 4) if make is GroupNorm else make()
    mask = np.ones((2, 5), bool)
    assert layer.supports_masking
    assert layer.compute_mask(X, mask) is mask


def test_conditional_norm_keeps_the_mask_of_x():
    mask = np.ones((2, 5), bool)
    assert LayerNormalization(conditional=True).compute_mask([X, COND], [mask, None]) is mask


def test_group_norm_weights_file_has_bert4keras3s_layout(tmp_path):
    """bert4keras3's GroupNorm saved `scale`, `offset`, then its inner LayerNormalization (attribute
    `group_ln`) with a `(head_size,)` gamma and beta: a file of that layout loads into b4k3's."""
    inputs = keras.Input((5, 8))
    model = keras.Model(inputs, GroupNorm(8, 2, name="norm")(inputs))
    path = tmp_path / "group_norm.weights.h5"
    model.save_weights(path)
    with h5py.File(path, "r") as file:
        layer = file["layers/group_norm"]
        shapes = {name: layer[name].shape for name in ("vars/0", "vars/1", "group_ln/vars/0", "group_ln/vars/1")}
    assert shapes == {"vars/0": (4, 2), "vars/1": (4, 2), "group_ln/vars/0": (2,), "group_ln/vars/1": (2,)}
