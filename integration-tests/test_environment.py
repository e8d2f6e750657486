"""Each environment of the test matrix runs Keras on the backend it is named for, from installed
packages that carry precompiled bytecode."""

import importlib
import importlib.util
import os
import pathlib

import keras
import numpy as np
import pytest

NATIVE_TENSOR_TYPES = {"jax": ("jax", "Array"), "torch": ("torch", "Tensor"), "tensorflow": ("tensorflow", "Tensor")}


def test_keras_runs_on_the_requested_backend():
    requested = os.environ.get("KERAS_BACKEND", "tensorflow")
    assert keras.backend.backend() == requested


def test_backend_computes_on_its_own_tensors():
    product = keras.ops.matmul(keras.ops.ones((2, 3)), keras.ops.ones((3, 4)))
    module, type_name = NATIVE_TENSOR_TYPES[keras.backend.backend()]
    assert isinstance(product, getattr(importlib.import_module(module), type_name))
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(product), np.full((2, 4), 3.0))


@pytest.mark.parametrize("module", ["keras.src.layers.core.dense", "torch.nn.modules.linear"])
def test_installed_packages_carry_precompiled_bytecode(module):
    """Installers must compile bytecode: where PYTHONDONTWRITEBYTECODE is set, nothing else will,
    and every test run would import 2-3x slower."""
    source = pathlib.Path(importlib.util.find_spec(module).origin)
    assert pathlib.Path(importlib.util.cache_from_source(source)).is_file(), f"no bytecode for {source}"
