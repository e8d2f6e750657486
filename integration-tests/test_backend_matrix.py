"""Each environment of the test matrix really runs Keras on the backend it is named for."""

import importlib
import os

import keras
import numpy as np

NATIVE_TENSOR_TYPES = {"jax": ("jax", "Array"), "torch": ("torch", "Tensor"), "tensorflow": ("tensorflow", "Tensor")}


def test_keras_runs_on_the_requested_backend():
    requested = os.environ.get("KERAS_BACKEND", "tensorflow")
    assert keras.backend.backend() == requested


def test_backend_computes_on_its_own_tensors():
    product = keras.ops.matmul(keras.ops.ones((2, 3)), keras.ops.ones((3, 4)))
    module, type_name = NATIVE_TENSOR_TYPES[keras.backend.backend()]
    assert isinstance(product, getattr(importlib.import_module(module), type_name))
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(product), np.full((2, 4), 3.0))
