"""A LoRA fine-tuned BERT or Llama saved as `.keras` reloads with exactly the weights it trained
before (the adapters nested in its attention and feed-forward layers among them), and the same
outputs. Its adapters alone round-trip through a small file onto the base model, and merge into
the base weights."""

import json

import keras
import numpy as np
import pytest
from family_checks import TINY_BERT, TINY_LLAMA

from b4k3_layers import enable_lora, load_lora_adapters, merge_lora_adapters, save_lora_adapters
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


def lora_model(family, tmp_path):
    """The tiny `family` model built from its config (base weights drawn from seed 0), and the config's path."""
    config_path = tmp_path / "config.json"
    config_path.write_text(json.dumps(CONFIGS[family]))
    keras.utils.set_random_seed(0)
    model = build_transformer_model(config_path=config_path)
    return model, config_path


@pytest.mark.parametrize("family", sorted(CONFIGS))
def test_adapters_alone_round_trip_through_a_small_file_and_merge_into_the_base_weights(family, tmp_path):
    model, config_path = lora_model(family, tmp_path)
    base_paths = [weight.path for weight in model.weights]
    tokens = np.random.default_rng(0).integers(1, 60, (2, 7))
    inputs = [tokens, np.zeros_like(tokens)] if family == "bert" else tokens
    enable_lora(model, rank=2)
    rng = np.random.default_rng(1)
    for weight in model.trainable_weights:  # as if trained: adapters (the second matrices start at 0) and norms
        weight.assign(weight + rng.normal(scale=0.1, size=weight.shape))
    trainable = {weight.path for weight in model.trainable_weights}
    expected = keras.ops.convert_to_numpy(model(inputs))

    save_lora_adapters(model, tmp_path / "adapter.lora.h5")
    model.save_weights(tmp_path / "model.weights.h5")
    assert (tmp_path / "adapter.lora.h5").stat().st_size < (tmp_path / "model.weights.h5").stat().st_size / 3

    keras.utils.set_random_seed(0)
    base = build_transformer_model(config_path=config_path)
    load_lora_adapters(base, tmp_path / "adapter.lora.h5")
    assert {weight.path for weight in base.trainable_weights} == trainable
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(base(inputs)), expected)

    merged = merge_lora_adapters(base)
    assert merged
    assert [weight.path for weight in base.weights] == base_paths
    np.testing.assert_allclose(keras.ops.convert_to_numpy(base(inputs)), expected, rtol=1e-5, atol=1e-5)


def test_adapters_of_layers_the_model_lacks_are_named(tmp_path):
    model, _ = lora_model("llama", tmp_path)
    enable_lora(model, rank=2)
    save_lora_adapters(model, tmp_path / "adapter.lora.h5")
    bert, _ = lora_model("bert", tmp_path)
    with pytest.raises(
        ValueError, match=r"adapters or weights of layers the model does not have: \['Decoder-Output-LM'"
    ):
        load_lora_adapters(bert, tmp_path / "adapter.lora.h5")
