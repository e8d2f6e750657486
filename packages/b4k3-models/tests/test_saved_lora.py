"""A LoRA fine-tuned BERT or Llama saved as `.keras` reloads with exactly the weights it trained
before (the adapters nested in its attention and feed-forward layers among them), and the same
outputs."""

import json

import keras
import numpy as np
import pytest
from family_checks import TINY_BERT, TINY_LLAMA

from b4k3_layers import enable_lora
from b4k3_models import build_transformer_model

CONFIGS = {"bert": TINY_BERT, "llama": {**TINY_LLAMA, "model_type": "llama"}}


@pytest.mark.parametrize("family", sorted(CONFIGS))
def test_reloaded_lora_model_has_the_same_trainable_weights_and_outputs(family, tmp_path):
    config_path = tmp_path / "config.json"
    config_path.write_text(json.dumps(CONFIGS[family]))
    model = build_transformer_model(config_path=config_path)
    enable_lora(model, rank=2)
    trainable = {weight.path for weight in model.trainable_weights}
    assert any("MultiHeadSelfAttention/q_dense/lora_kernel_a" in path for path in trainable)
    assert any("FeedForward/" in path and "lora_kernel_b" in path for path in trainable)
    tokens = np.random.default_rng(0).integers(1, 60, (2, 7))
    inputs = [tokens, np.zeros_like(tokens)] if family == "bert" else tokens
    expected = keras.ops.convert_to_numpy(model(inputs))

    model.save(tmp_path / "lora.keras")
    reloaded = keras.saving.load_model(tmp_path / "lora.keras")

    assert {weight.path for weight in reloaded.trainable_weights} == trainable
    np.testing.assert_allclose(keras.ops.convert_to_numpy(reloaded(inputs)), expected, rtol=1e-5, atol=1e-5)
