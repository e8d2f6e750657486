"""Helpers of the b4k3-models tests: tiny Hugging Face configs, saving random HF models as
checkpoints, padded inputs, and running a Keras model to NumPy."""

import pathlib

import keras
import numpy as np
import torch

TINY_BERT = {
    "vocab_size": 99,
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "intermediate_size": 37,
    "max_position_embeddings": 64,
    "type_vocab_size": 2,
    "hidden_act": "gelu",
    "layer_norm_eps": 1e-12,
}
TINY_ROBERTA = {**TINY_BERT, "max_position_embeddings": 66, "type_vocab_size": 1, "pad_token_id": 1}
TINY_ROBERTA.update(layer_norm_eps=1e-5, bos_token_id=0, eos_token_id=2)


def save_hf_model(model_class, config_class, config, directory, seed=0, **save_options):
    """Builds `model_class(config_class(**config))` with random weights (nonzero biases and norms,
    so that a weight loaded in the wrong place shows), saves it, returns (directory, model)."""
    torch.manual_seed(seed)
    model = model_class(config_class(**config)).eval()
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if name.endswith("bias") or "LayerNorm" in name or "layer_norm" in name:
                parameter.add_(torch.randn_like(parameter) * 0.1)
    model.save_pretrained(directory, **save_options)
    return pathlib.Path(directory), model


def padded_batch(vocab_size, pad_id=0, first_id=None, lengths=(11, 7, 3), seed=0):
    """Token ids `(len(lengths), max(lengths))` int32 that never use `pad_id` inside a row, padded with
    it at the end, the first token `first_id` when given; and the `(batch, len)` mask of real tokens."""
    rng = np.random.default_rng(seed)
    ids = np.full((len(lengths), max(lengths)), pad_id, dtype="int32")
    for row, length in enumerate(lengths):
        tokens = rng.integers(3, vocab_size, size=length)
        tokens[tokens == pad_id] = pad_id + 3
        if first_id is not None:
            tokens[0] = first_id
        ids[row, :length] = tokens
    return ids, ids != pad_id


def predict(model, inputs):
    """The model's outputs on `inputs` as NumPy arrays (a list when it has several)."""
    outputs = model(inputs, training=False)
    if isinstance(outputs, (list, tuple)):
        return [keras.ops.convert_to_numpy(output) for output in outputs]
    return keras.ops.convert_to_numpy(outputs)


def assert_matches(actual, expected, mask=None, rtol=1e-5, atol=1e-4):
    """fp32 parity: within `rtol` relative / `atol` absolute, at the real tokens when `mask` is given."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    if mask is not None:
        actual, expected = actual[mask], expected[mask]
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol)
