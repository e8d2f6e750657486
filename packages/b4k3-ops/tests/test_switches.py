"""The ENABLE_LORA / FLASH_ATTN / TF_KERAS switches, and that keras.ops is left untouched."""

import os
import subprocess
import sys

import keras
import pytest

from b4k3_ops import backend, ops
from b4k3_ops.switches import env_flag


@pytest.mark.parametrize(("value", "expected"), [("1", True), ("true", True), ("ON", True), ("0", False), ("", False)])
def test_switches_are_read_when_asked(monkeypatch, value, expected):
    monkeypatch.setenv("ENABLE_LORA", value)
    monkeypatch.setenv("FLASH_ATTN", value)
    assert backend.lora_model is expected
    assert backend.enable_flashatt is expected


def test_a_switch_that_is_not_boolean_is_an_error(monkeypatch):
    monkeypatch.setenv("ENABLE_LORA", "maybe")
    with pytest.raises(ValueError, match="ENABLE_LORA='maybe'"):
        env_flag("ENABLE_LORA")


@pytest.mark.parametrize("variables", [{"TF_KERAS": "1"}, {"KERAS_BACKEND": "tfkeras"}])
def test_keras_2_switches_are_refused_at_import(variables):
    result = subprocess.run(
        [sys.executable, "-c", "import b4k3_ops"], env={**os.environ, **variables}, capture_output=True, text=True
    )
    assert result.returncode != 0
    assert "Keras 3 only" in result.stderr


def test_keras_ops_is_not_patched():
    assert not hasattr(keras.ops, "flatten")
    assert ops.reshape is not keras.ops.reshape
    assert ops.matmul is keras.ops.matmul
