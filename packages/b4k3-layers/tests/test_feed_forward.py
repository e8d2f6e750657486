"""The feed-forward layers against NumPy references written from their formulas (fp32 tolerance
1e-5), LLamaFeedForward's float32 activation under mixed_bfloat16, and the argument checks."""

import keras
import ml_dtypes
import numpy as np
import pytest
from keras import ops
from layer_checks import assert_close, randomized, run_layer_test, weights_of

from b4k3_layers.feed_forward import FeedForward, GemmaFeedForward, LLamaFeedForward

rng = np.random.default_rng(0)
X = rng.normal(size=(2, 5, 8)).astype("float32")


def dense(w, name, x):
    return x @ w[f"{name}/kernel"] + w.get(f"{name}/bias", 0)


def relu(x):
    return np.maximum(x, 0)


def silu(x):
    return x / (1 + np.exp(-x))


def gelu_tanh(x):
    return 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x**3)))


def test_feed_forward_is_two_dense_layers_around_the_activation(tmp_path):
    layer = randomized(FeedForward(16), X.shape)
    w = weights_of(layer)
    assert list(w) == ["i0_dense/kernel", "i0_dense/bias", "o_dense/kernel", "o_dense/bias"]
    output = run_layer_test(lambda: layer, X, tmp_path)
    assert_close(output, dense(w, "o_dense", relu(dense(w, "i0_dense", X))))


def test_feed_forward_with_a_list_of_activations_multiplies_the_gates(tmp_path):
    layer = randomized(FeedForward(16, activation=["silu", "linear", "tanh"], use_bias=False), X.shape)
    w = weights_of(layer)
    assert sorted(w) == ["i0_dense/kernel", "i1_dense/kernel", "i2_dense/kernel", "o_dense/kernel"]
    output = run_layer_test(lambda: layer, X, tmp_path)
    hidden = silu(dense(w, "i0_dense", X)) * dense(w, "i1_dense", X) * np.tanh(dense(w, "i2_dense", X))
    assert_close(output, dense(w, "o_dense", hidden))


def test_feed_forward_output_has_the_input_width():
    assert FeedForward(32)(np.ones((3, 7), "float32")).shape == (3, 7)


def test_gemma_feed_forward_uses_the_tanh_gelu(tmp_path):
    layer = randomized(GemmaFeedForward(16), X.shape)
    w = weights_of(layer)
    output = run_layer_test(lambda: layer, X, tmp_path)
    hidden = gelu_tanh(dense(w, "i0_dense", X)) * dense(w, "i1_dense", X)
    assert_close(output, dense(w, "o_dense", hidden))
    assert "activation" not in layer.get_config()


def test_llama_feed_forward_is_down_of_activated_gate_times_up(tmp_path):
    layer = randomized(LLamaFeedForward(16, activation="silu"), X.shape)
    w = weights_of(layer)
    assert sorted(w) == sorted(
        f"feedforward_{name}_dense/{kind}" for name in ("gate", "intermediate", "output") for kind in ("kernel", "bias")
    )
    output = run_layer_test(lambda: layer, X, tmp_path)
    hidden = silu(dense(w, "feedforward_gate_dense", X)) * dense(w, "feedforward_intermediate_dense", X)
    assert_close(output, dense(w, "feedforward_output_dense", hidden))


def test_llama_feed_forward_keeps_the_bert4keras3_defaults():
    config = LLamaFeedForward(16).get_config()
    assert (config["activation"], config["use_bias"]) == ("relu", True)


def test_llama_feed_forward_computes_its_activation_in_float32_under_mixed_bfloat16():
    seen = []

    def recording_silu(x):
        seen.append(keras.backend.standardize_dtype(x.dtype))
        return ops.silu(x)

    layer = LLamaFeedForward(16, activation=recording_silu, dtype="mixed_bfloat16")
    output = layer(X)
    assert seen == ["float32"]
    assert keras.backend.standardize_dtype(output.dtype) == "bfloat16"


def test_llama_feed_forward_rounds_the_float32_silu_once():
    # Identity kernels and no biases make the bfloat16 Dense layers exact, so the output is
    # bf16(bf16(silu(x)) * x) with silu computed in float32 and rounded once.
    x = rng.normal(scale=3, size=(4, 16, 64)).astype("float32")
    layer = LLamaFeedForward(64, activation="silu", use_bias=False, dtype="mixed_bfloat16")
    layer.build(x.shape)
    layer.set_weights([np.eye(64, dtype="float32")] * 3)
    x_in = x.astype(ml_dtypes.bfloat16).astype(np.float32)
    gate = silu(x_in).astype(ml_dtypes.bfloat16).astype(np.float32)
    expected = (gate * x_in).astype(ml_dtypes.bfloat16).astype(np.float32)
    output = layer(x)
    got = ops.convert_to_numpy(ops.cast(output, "float32"))
    np.testing.assert_allclose(got, expected, rtol=2**-7, atol=0)
    assert np.mean(got != expected) < 0.01


@pytest.mark.parametrize("make", [FeedForward, GemmaFeedForward, LLamaFeedForward])
def test_dense_layers_follow_the_dtype_policy(make):
    layer = make(16, dtype="mixed_bfloat16")
    assert keras.backend.standardize_dtype(layer(X).dtype) == "bfloat16"
    assert {v.dtype for v in layer.weights} == {"float32"}


@pytest.mark.parametrize(
    ("make", "named"),
    [
        (lambda: FeedForward(16, activation=[]), "activation"),
        (lambda: FeedForward(0), "units"),
        (lambda: GemmaFeedForward(None), "units"),
        (lambda: LLamaFeedForward(16, activation=["silu", "linear"]), "activation"),
    ],
)
def test_bad_arguments_are_refused(make, named):
    with pytest.raises(ValueError, match=named):
        make()
