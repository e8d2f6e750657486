"""bert4keras3.backend's names in b4k3_ops.backend: `keras`, `K`, `ops` and the helpers its users
import, each checked against a NumPy reference of bert4keras3's semantics; its string names
resolve in Keras after `register_custom_objects()`, and `set_gelu` switches what 'gelu' means."""

import keras
import numpy as np
import pytest

from b4k3_ops import backend
from b4k3_ops.backend import (
    K,
    Sinusoidal,
    batch_gather,
    gelu_erf,
    gelu_tanh,
    get_sequence_masking,
    int_shape,
    is_tf_keras,
    leaky_relu,
    ops,
    piecewise_linear,
    recompute_grad,
    register_custom_objects,
    search_layer,
    set_gelu,
    swish,
)
from b4k3_ops.keras_tables import restore_keras_name

RNG = np.random.default_rng(0)
X = RNG.normal(size=(2, 5, 4)).astype("float32")


def close(actual, expected, tolerance=1e-5):
    np.testing.assert_allclose(ops.convert_to_numpy(actual), expected, rtol=tolerance, atol=tolerance)


def test_the_first_imports_of_bert4keras3_code_work():
    assert backend.keras is keras
    assert K.floatx() == keras.backend.floatx()
    assert K.epsilon() == keras.backend.epsilon()
    assert K.dtype(ops.ones(2)) == ops.ones(2).dtype
    assert K.dtype(3.0) is None
    assert ops.flatten is not None
    assert is_tf_keras is False


def test_activations_match_their_formulas():
    from math import erf

    exact = 0.5 * X * (1 + np.vectorize(erf)(X / np.sqrt(2)))
    tanh = 0.5 * X * (1 + np.tanh(np.sqrt(2 / np.pi) * (X + 0.044715 * X**3)))
    close(gelu_erf(X), exact)
    close(gelu_tanh(X), tanh)
    close(swish(X), X / (1 + np.exp(-X)))
    close(leaky_relu(X), np.where(X > 0, X, 0.2 * X))
    close(leaky_relu(X, alpha=0.1), np.where(X > 0, X, 0.1 * X))


@pytest.mark.parametrize(
    ("schedule", "from_zero"), [({1000: 1, 2000: 0.1}, True), ({10: 2.0, 20: 1.0, 40: 0.5}, False)]
)
def test_piecewise_linear_interpolates_the_schedule(schedule, from_zero):
    steps = np.array([0, 5, 10, 15, 500, 1000, 1500, 2000, 2500, 30, 40, 50], dtype="float32")
    points = sorted(schedule.items())
    if from_zero:
        points = [(0, 0.0), *points]
    expected = np.interp(steps, [p for p, _ in points], [v for _, v in points])  # constant outside
    close(piecewise_linear(steps, schedule, from_zero), expected)


def test_batch_gather_is_tf_batch_gather():
    params = RNG.normal(size=(2, 3, 6, 4)).astype("float32")
    indices = RNG.integers(0, 6, size=(2, 3, 5))
    expected = np.stack([np.stack([params[b, r][indices[b, r]] for r in range(3)]) for b in range(2)])
    close(batch_gather(params, indices), expected)
    flat = RNG.normal(size=(2, 6)).astype("float32")
    close(batch_gather(flat, indices[:, 0]), np.take_along_axis(flat, indices[:, 0], axis=1))


def test_get_sequence_masking_is_the_mask_sequence_masking_applies():
    mask = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])
    causal = np.tril(np.ones((5, 5), dtype=bool))
    scores = RNG.normal(size=(2, 3, 5, 5)).astype("float32")
    full = get_sequence_masking(scores, mask, "-inf", -1, causal)
    expected = mask[:, None, None, :].astype(bool) & causal
    np.testing.assert_array_equal(ops.convert_to_numpy(full), np.broadcast_to(expected, (2, 1, 5, 5)).astype("int32"))
    assert get_sequence_masking(scores) is None


def test_sinusoidal_initializer_is_the_interleaved_table():
    table = ops.convert_to_numpy(Sinusoidal()((6, 8)))
    angles = np.arange(6)[:, None] * 10000 ** (-2 * np.arange(4) / 8)
    close(table, np.stack([np.sin(angles), np.cos(angles)], -1).reshape(6, 8))


def test_search_layer_finds_a_layer_upstream_of_a_tensor():
    inputs = keras.Input((5, 4))
    hidden = keras.layers.Dense(3, name="Hidden")(inputs)
    inner = keras.Model(inputs, hidden, name="Inner")
    outer_input = keras.Input((5, 4))
    outputs = keras.layers.Dense(2, name="Output")(keras.layers.ReLU(name="Act")(inner(outer_input)))
    assert search_layer(outputs, "Act").name == "Act"
    assert search_layer(outputs, "Hidden").name == "Hidden"
    assert search_layer(outputs, "Nowhere") is None


def test_int_shape_and_recompute_grad():
    assert int_shape(keras.Input((None, 4))) == (None, None, 4)
    assert int_shape(ops.ones((2, 3))) == (2, 3)

    def call(x):
        return x

    assert recompute_grad(call) is call


@pytest.fixture
def registered():
    register_custom_objects()
    yield
    for kind, names in {
        "activations": ("gelu_erf", "gelu_tanh", "root_mean_square"),
        "losses": ("multilabel_categorical_crossentropy",),
    }.items():
        for name in names:
            restore_keras_name(kind, name)
    for name in ("Sinusoidal", "initializer"):
        keras.saving.get_custom_objects().pop(name, None)


def test_bert4keras3_names_resolve_in_layers_configs_and_compile(registered):
    layer = keras.layers.Dense(3, activation="gelu_tanh", kernel_initializer="initializer")
    close(layer.activation(X), ops.convert_to_numpy(gelu_tanh(X)))
    assert isinstance(layer.kernel_initializer, keras.initializers.GlorotUniform)
    for name in ("swish", "leaky_relu"):  # Keras' own, bert4keras3's meaning
        close(keras.activations.get(name)(X), ops.convert_to_numpy(backend.custom_objects[name](X)))
    embedding = keras.layers.Embedding(6, 8, embeddings_initializer="Sinusoidal")
    embedding.build((None,))
    close(embedding.embeddings, ops.convert_to_numpy(Sinusoidal()((6, 8))))
    rebuilt = keras.layers.Dense.from_config({**keras.layers.Dense(3).get_config(), "activation": "gelu_tanh"})
    assert rebuilt.activation is gelu_tanh

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    model.compile(optimizer="sgd", loss="multilabel_categorical_crossentropy")
    targets = np.array([[1, 0, 1], [0, 1, 0]], dtype="float32")
    inputs = X[:, 0]
    loss = model.evaluate(inputs, targets, verbose=0)
    logits = ops.convert_to_numpy(model(inputs))
    expected = np.mean(
        [
            np.log(1 + np.exp(s[t == 0]).sum()) + np.log(1 + np.exp(-s[t == 1]).sum())
            for s, t in zip(logits, targets, strict=True)
        ]
    )
    np.testing.assert_allclose(loss, expected, rtol=1e-5)


def test_names_are_not_registered_at_import():
    with pytest.raises(ValueError, match="gelu_tanh"):
        keras.activations.get("gelu_tanh")


def test_set_gelu_switches_what_gelu_means():
    try:
        set_gelu("tanh")
        close(keras.layers.Dense(3, activation="gelu").activation(X), ops.convert_to_numpy(gelu_tanh(X)))
        set_gelu("erf")
        close(keras.activations.get("gelu")(X), ops.convert_to_numpy(gelu_erf(X)))
        assert keras.activations.get("gelu") is keras.activations.gelu
    finally:
        set_gelu("erf")
    with pytest.raises(ValueError, match="'erf' or 'tanh'"):
        set_gelu("sigmoid")
