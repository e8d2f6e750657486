"""Every family round-trips through Keras' own formats: a `.keras` file (`keras.saving.save_model` /
`load_model`, every b4k3 layer registered) reloads a model with identical outputs, and a
`.weights.h5` file loads into a freshly built model of the same config (other random weights)."""

import keras
import numpy as np
import pytest
from tiny_families import TINY_FAMILIES, tiny_inputs, tiny_model


def outputs(model, inputs):
    return keras.ops.convert_to_numpy(model(inputs, training=False))


@pytest.mark.parametrize("family", sorted(TINY_FAMILIES))
def test_keras_and_weights_files_reload_the_same_model(family, tmp_path):
    model = tiny_model(family)
    inputs = tiny_inputs(model)
    expected = outputs(model, inputs)
    keras.saving.save_model(model, tmp_path / "model.keras")
    model.save_weights(tmp_path / "model.weights.h5")

    reloaded = keras.saving.load_model(tmp_path / "model.keras")
    assert type(reloaded) is type(model)
    assert [weight.path for weight in reloaded.weights] == [weight.path for weight in model.weights]
    np.testing.assert_array_equal(outputs(reloaded, inputs), expected)

    fresh = tiny_model(family, seed=1)
    assert not np.array_equal(outputs(fresh, inputs), expected)
    fresh.load_weights(tmp_path / "model.weights.h5")
    np.testing.assert_array_equal(outputs(fresh, inputs), expected)
