"""Llama, Qwen2, Gemma and Gemma2 loaded from Hugging Face checkpoints give Hugging Face's logits.

Reference: the `*ForCausalLM` model that saved the checkpoint (transformers, eager attention,
float32) on a right-padded batch of rows of different lengths; compared at the real positions
within 1e-5 relative / 1e-4 absolute. Token 0 pads the batch and is also a real token inside
the prompts: b4k3's decoders mask nothing but the future.
"""

import json

import numpy as np
import pytest
import torch
from family_checks import (
    TINY_LLAMA,
    TINY_MODELS,
    assert_matches,
    hf_logits,
    predict,
    ragged_batch,
    run_family_parity_test,
    save_llm,
)

from b4k3_models import Gemma, Gemma2, Llama, build_transformer_model


@pytest.fixture(scope="module")
def batch():
    return ragged_batch(TINY_LLAMA["vocab_size"])


@pytest.mark.parametrize("name", sorted(TINY_MODELS))
def test_logits_match_hf_on_a_ragged_batch(saved, batch, name):
    directory, reference = saved(name)
    ids, mask = batch
    run_family_parity_test(directory, ids, hf_logits(reference, ids, mask), mask, with_lm="linear")


# name -> (family, query heads, key/value heads, head size, tied output)
EXPECTED_SHAPES = {
    "llama_gqa": (Llama, 4, 2, 8, False),
    "llama_tied": (Llama, 4, 2, 8, True),
    "llama_biases": (Llama, 4, 2, 16, False),
    "qwen2": (Llama, 4, 2, 8, False),
    "gemma": (Gemma, 4, 1, 16, True),
    "gemma2": (Gemma2, 4, 2, 16, True),
}


@pytest.mark.parametrize("name", sorted(EXPECTED_SHAPES))
def test_hf_config_chooses_the_family_and_heads(saved, name):
    directory, _ = saved(name)
    family, query_heads, key_value_heads, head_size, tied = EXPECTED_SHAPES[name]
    transformer = build_transformer_model(checkpoint_path=directory, with_lm="linear", return_keras_model=False)
    assert type(transformer) is family
    assert (transformer.query_head, transformer.num_attention_heads) == (query_heads, key_value_heads)
    assert (transformer.attention_head_size, transformer.share_embedding) == (head_size, tied)


@pytest.mark.parametrize(
    ("name", "biases"),
    [("qwen2", (True, False, False)), ("llama_biases", (True, True, True)), ("llama_gqa", (False, False, False))],
)
def test_hf_config_chooses_the_biases(saved, name, biases):
    directory, _ = saved(name)
    transformer = build_transformer_model(checkpoint_path=directory, with_lm="linear", return_keras_model=False)
    assert (transformer.use_bias, transformer.o_bias, transformer.use_dense_bias) == biases


def test_qwen2_rope_theta_is_read(saved):
    directory, _ = saved("qwen2")
    transformer = build_transformer_model(checkpoint_path=directory, with_lm="linear", return_keras_model=False)
    assert transformer.max_wavelength == 1_000.0


@pytest.mark.parametrize("model", ["llama", "yi"])
def test_explicit_model_name_reads_a_llama_directory(saved, batch, model):
    directory, reference = saved("llama_gqa")
    ids, mask = batch
    keras_model = build_transformer_model(checkpoint_path=directory, model=model, with_lm="linear")
    assert_matches(predict(keras_model, ids), hf_logits(reference, ids, mask), mask)


def test_sharded_checkpoint_matches_hf(tmp_path, batch):
    directory, reference = save_llm("gemma2", tmp_path, max_shard_size="20KB")
    assert (directory / "model.safetensors.index.json").is_file()
    assert len(list(directory.glob("model-*.safetensors"))) > 1
    ids, mask = batch
    model = build_transformer_model(checkpoint_path=directory, with_lm="linear")
    assert_matches(predict(model, ids), hf_logits(reference, ids, mask), mask)


# What a reference must be sensitive to, as `from_pretrained` overrides that switch it off:
# without this check, a b4k3 model that ignored the setting could still match.
SWITCHED_OFF = [
    ("llama_gqa", {"rope_parameters": {"rope_type": "default", "rope_theta": 10_000.0}}),
    ("llama_biases", {"rope_parameters": {"rope_type": "default", "rope_theta": 10_000.0}}),
    ("gemma2", {"attn_logit_softcapping": None}),
    ("gemma2", {"final_logit_softcapping": None}),
    ("gemma2", {"sliding_window": 64}),  # longer than the batch: no window
]


@pytest.mark.parametrize(("name", "override"), SWITCHED_OFF)
def test_the_references_exercise_rope_scaling_soft_caps_and_the_window(saved, batch, name, override):
    directory, reference = saved(name)
    ids, mask = batch
    other = type(reference).from_pretrained(directory, attn_implementation="eager", **override).eval()
    difference = np.abs(hf_logits(other, ids, mask)[mask] - hf_logits(reference, ids, mask)[mask]).max()
    assert difference > 1e-2, f"{name}: {override} changes the logits by only {difference}"


@pytest.mark.parametrize("name", ["llama_gqa", "gemma2"])
def test_softmax_head_matches_hf(saved, batch, name):
    directory, reference = saved(name)
    ids, mask = batch
    model = build_transformer_model(checkpoint_path=directory, with_lm=True)
    expected = torch.softmax(torch.tensor(hf_logits(reference, ids, mask)), dim=-1).numpy()
    assert_matches(predict(model, ids), expected, mask)


@pytest.mark.parametrize("name", ["llama_gqa", "gemma2"])
def test_without_lm_head_the_final_hidden_states_match_hf(saved, batch, name):
    """`with_lm=False`: the normalized last hidden states; the checkpoint's output matrix (its
    own in an untied Llama) is expected in the checkpoint, not an error."""
    directory, reference = saved(name)
    ids, mask = batch
    with torch.no_grad():
        hidden = reference.model(input_ids=torch.tensor(ids, dtype=torch.long), attention_mask=torch.tensor(mask))
    decoder = build_transformer_model(checkpoint_path=directory, with_lm=False)
    assert_matches(predict(decoder, ids), hidden.last_hidden_state.numpy(), mask)


@pytest.mark.parametrize("name", ["llama_gqa", "qwen2"])
def test_transformers_4_rope_keys_are_read(saved, batch, tmp_path, name):
    """Configs written by transformers 4 keep `rope_theta` at the top and the scaling under
    `rope_scaling` (or null) instead of transformers 5's `rope_parameters`."""
    directory, reference = saved(name)
    config = json.loads((directory / "config.json").read_text())
    rope = config.pop("rope_parameters")
    config["rope_theta"] = rope.pop("rope_theta")
    config["rope_scaling"] = None if rope["rope_type"] == "default" else rope
    (tmp_path / "config.json").write_text(json.dumps(config))
    ids, mask = batch
    model = build_transformer_model(config_path=tmp_path / "config.json", checkpoint_path=directory, with_lm="linear")
    assert_matches(predict(model, ids), hf_logits(reference, ids, mask), mask)


@pytest.mark.parametrize("name", ["llama_gqa", "gemma"])
def test_keep_tokens_keeps_rows_of_the_embeddings_and_the_output(saved, name):
    """Untied (Llama: `lm_head` rows kept) and tied (Gemma): the logits of the kept tokens."""
    directory, reference = saved(name)
    keep = np.arange(0, TINY_LLAMA["vocab_size"], 2)
    ids, mask = ragged_batch(len(keep))
    model = build_transformer_model(checkpoint_path=directory, with_lm="linear", keep_tokens=keep.tolist())
    assert_matches(predict(model, ids), hf_logits(reference, keep[ids], mask)[..., keep], mask)
