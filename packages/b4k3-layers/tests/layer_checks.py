"""The checks every b4k3 layer passes; each layer's test file calls `run_layer_test` and then
tests only what is special about that layer (its math, against a NumPy reference)."""

import keras
import numpy as np
from keras import ops


def to_numpy(x):
    return keras.tree.map_structure(ops.convert_to_numpy, x)


def assert_close(actual, expected, rtol=1e-5, atol=1e-5):
    """fp32 tolerance of the parity tests: 1e-5 relative and absolute, elementwise."""
    for got, want in zip(keras.tree.flatten(to_numpy(actual)), keras.tree.flatten(expected), strict=True):
        np.testing.assert_allclose(got, want, rtol=rtol, atol=atol)


def compiled(function):
    """`function` compiled the way each backend compiles a decode step: `jax.jit`, `tf.function`;
    as is on torch (eager)."""
    if keras.backend.backend() == "jax":
        import jax

        return jax.jit(function)
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        return tf.function(function)
    return function


def run_layer_test(make_layer, inputs, tmp_path, call_kwargs=None, rtol=1e-5, atol=1e-5):
    """Builds `make_layer()`, calls it on `inputs` (NumPy arrays, or a list of them) and checks:

    - `compute_output_shape` agrees with the output;
    - `from_config(get_config())` with the same weights gives the same output;
    - a functional model around the layer, saved as `.keras` and loaded, gives the same output.

    Returns the output as NumPy.
    """
    call_kwargs = call_kwargs or {}
    layer = make_layer()
    output = layer(inputs, **call_kwargs)
    input_shapes = [tuple(x.shape) for x in inputs] if isinstance(inputs, (list, tuple)) else tuple(inputs.shape)
    outputs = output if isinstance(output, (list, tuple)) else [output]
    expected = layer.compute_output_shape(input_shapes)
    expected = [expected] if len(outputs) == 1 else expected
    assert [tuple(shape) for shape in expected] == [tuple(x.shape) for x in outputs]

    clone = type(layer).from_config(layer.get_config())
    clone(inputs, **call_kwargs)
    clone.set_weights(layer.get_weights())
    assert_close(clone(inputs, **call_kwargs), to_numpy(output), rtol, atol)

    symbolic = keras.tree.map_structure(lambda x: keras.Input(batch_shape=x.shape, dtype=str(x.dtype)), inputs)
    model = keras.Model(symbolic, layer(symbolic, **call_kwargs))
    path = tmp_path / "layer.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert_close(loaded(inputs), to_numpy(output), rtol, atol)
    return to_numpy(output)


def randomized(layer, input_shape, seed=1, scale=1.0):
    """`layer` built for `input_shape` with every weight drawn at random (biases and gains too,
    which start at zeros and ones), so the math is checked with more than its initial values."""
    layer.build(input_shape)
    draw = np.random.default_rng(seed)
    layer.set_weights([draw.normal(scale=scale, size=w.shape).astype("float32") for w in layer.get_weights()])
    return layer


def weights_of(layer):
    """The layer's weights as NumPy by path below the layer: `{"gamma": ..., "q_dense/kernel": ...}`."""
    return {v.path.removeprefix(f"{layer.name}/"): ops.convert_to_numpy(v) for v in layer.weights}


def recording(factory):
    """A `make_layer` for `run_layer_test` that keeps the layers it makes (to read their weights)."""
    made = []

    def make():
        made.append(factory())
        return made[-1]

    return make, made
