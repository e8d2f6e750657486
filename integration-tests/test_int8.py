"""int8 is Keras' own `Model.quantize('int8')`: it quantizes every family's projections and
embeddings, the outputs stay close to float32, and b4k3-generate decodes a quantized Llama.

Tolerances, stated against the float32 model: the outputs of the tiny random families within 3%
of their largest value (measured at most 1.1%, RoFormerV2); the tiny Llama loaded from a Hugging
Face checkpoint (weights of std 0.2, logits up to ~4) within 8% (measured 5.1%), and its greedy
choice along float32's greedy continuation the same at 90% of the steps or more (measured 97.9%,
47 of 48, on jax, torch and tensorflow; a tiny random model has near ties).
"""

import warnings

import keras
import numpy as np
import pytest
from family_checks import save_llm
from tiny_families import TINY_FAMILIES, tiny_inputs, tiny_model

from b4k3_generate import generate
from b4k3_layers.lora import LORA_LAYERS
from b4k3_models import build_transformer_model

FAMILY_RTOL = 0.03
LLAMA_RTOL = 0.08
GREEDY_AGREEMENT = 0.9
NEW_TOKENS = 12


def quantized(model):
    """`model` after `quantize('int8')`, without Keras' warning for each layer that has no int8 form."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        model.quantize("int8")
    return model


def outputs(model, inputs):
    return keras.ops.convert_to_numpy(model(inputs, training=False))


@pytest.mark.parametrize("family", sorted(TINY_FAMILIES))
def test_every_projection_and_embedding_is_int8_and_outputs_stay_close(family):
    model = tiny_model(family)
    inputs = tiny_inputs(model)
    expected = outputs(model, inputs)
    quantized(model)
    layers = [layer for layer in model._flatten_layers() if isinstance(layer, LORA_LAYERS)]
    assert layers
    assert all(layer.quantization_mode == "int8" for layer in layers)
    assert np.abs(outputs(model, inputs) - expected).max() <= FAMILY_RTOL * np.abs(expected).max()


def greedy_choices(llama, prompts, generated):
    """Each row's greedy choice at every generated step given the tokens before it: the argmax of
    `llama`'s full pass (no cache) over the prompts (all of one length) and the generated tokens."""
    tokens = np.concatenate([prompts, np.asarray(generated)[:, :-1]], axis=1).astype("int32")
    return outputs(llama.model, tokens)[:, prompts.shape[1] - 1 :].argmax(-1).tolist()


@pytest.fixture(scope="module")
def llama(tmp_path_factory):
    """(the tiny Llama's float32 logits and greedy tokens, the same Llama quantized, its inputs)."""
    directory = save_llm("llama_gqa", tmp_path_factory.mktemp("llama"))[0]
    llama = build_transformer_model(checkpoint_path=directory, with_lm="linear", return_keras_model=False)
    rng = np.random.default_rng(0)
    tokens = rng.integers(0, 64, (4, 16)).astype("int32")
    prompts = rng.integers(0, 64, (4, 4)).astype("int32")
    expected = {"logits": outputs(llama.model, tokens), "greedy": generate(llama, prompts.tolist(), NEW_TOKENS)}
    quantized(llama.model)
    return expected, llama, {"tokens": tokens, "prompts": prompts, "directory": directory}


def test_quantized_llama_logits_and_greedy_choices_stay_close(llama):
    expected, int8, inputs = llama
    logits = outputs(int8.model, inputs["tokens"])
    assert np.abs(logits - expected["logits"]).max() <= LLAMA_RTOL * np.abs(expected["logits"]).max()
    choices = greedy_choices(int8, inputs["prompts"], expected["greedy"])
    pairs = [
        pair for row, fp32 in zip(choices, expected["greedy"], strict=True) for pair in zip(row, fp32, strict=True)
    ]
    assert np.mean([int8_token == fp32_token for int8_token, fp32_token in pairs]) >= GREEDY_AGREEMENT


def test_generate_decodes_the_quantized_llama_with_its_cache(llama):
    _, int8, inputs = llama
    tokens = generate(int8, inputs["prompts"].tolist(), max_new_tokens=NEW_TOKENS)
    assert greedy_choices(int8, inputs["prompts"], tokens) == tokens


def test_a_checkpoint_into_a_quantized_model_is_a_clear_error(llama):
    _, int8, inputs = llama
    with pytest.raises(ValueError, match=r"already quantized .*load the checkpoint into the float model"):
        int8.load_weights_from_checkpoint(inputs["directory"])


def test_a_quantized_model_round_trips_through_a_keras_file(tmp_path):
    model = quantized(tiny_model("llama"))
    inputs = tiny_inputs(model)
    model.save(tmp_path / "int8.keras")
    reloaded = keras.saving.load_model(tmp_path / "int8.keras")
    assert reloaded.get_layer("Decoder-Output-LM").quantization_mode == "int8"
    assert reloaded.get_layer("Transformer-0-MultiHeadSelfAttention").q_dense.quantization_mode == "int8"
    np.testing.assert_array_equal(outputs(reloaded, inputs), outputs(model, inputs))
