"""Tiny random Hugging Face T5 / MT5 models saved as checkpoints, shared by the T5 tests of
b4k3-models and b4k3-generate, and the batches they run on.

Every weight is re-drawn large before saving (matrices from N(0, 0.2), norm gains 1 ± 0.2): with
Hugging Face's small default init an erf-GELU in place of T5's tanh-GELU, or a wrong norm epsilon,
would stay under the tolerance. The relative buckets (16) and their max distance (20) differ
from T5's defaults (32, 128), so a hard-coded table size would not load.
"""

import pathlib

import numpy as np
import torch
import transformers
from safetensors.numpy import load_file, save_file

TINY_T5 = {
    "vocab_size": 64,
    "d_model": 32,
    "d_kv": 8,
    "d_ff": 40,
    "num_layers": 2,
    "num_heads": 4,
    "relative_attention_num_buckets": 16,
    "relative_attention_max_distance": 20,
    "dropout_rate": 0.0,
    "decoder_start_token_id": 0,
    "pad_token_id": 0,
    "eos_token_id": 1,
}
GATED = {**TINY_T5, "feed_forward_proj": "gated-gelu"}
# name -> (Hugging Face class, config class, config)
TINY_T5S = {
    # t5.1.0: ReLU, the head tied to the embeddings, logits scaled by d_model ** -0.5.
    "t5.1.0": (
        transformers.T5ForConditionalGeneration,
        transformers.T5Config,
        {**TINY_T5, "feed_forward_proj": "relu"},
    ),
    # t5.1.1 created by transformers 5: tie_word_embeddings=False keeps the tied matrix and only
    # stops scaling the logits.
    "t5.1.1": (transformers.T5ForConditionalGeneration, transformers.T5Config, {**GATED, "tie_word_embeddings": False}),
    # mT5 with its own lm_head.weight written in (an untied v4-era file; see `save_t5`).
    "mt5": (transformers.MT5ForConditionalGeneration, transformers.MT5Config, GATED),
    # UMT5: a relative position table in every block.
    "umt5": (transformers.UMT5ForConditionalGeneration, transformers.UMT5Config, GATED),
    "deeper_decoder": (
        transformers.T5ForConditionalGeneration,
        transformers.T5Config,
        {**GATED, "num_decoder_layers": 3},
    ),
    "encoder": (transformers.T5EncoderModel, transformers.T5Config, GATED),
}


def redraw(model, seed=0):
    """Every matrix of `model` from N(0, 0.2), every vector (norm gains) from 1 + N(0, 0.2)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in model.parameters():
            noise = torch.randn(parameter.shape, generator=generator) * 0.2
            parameter.copy_(1 + noise if parameter.ndim == 1 else noise)
    return model


def save_t5(name, directory, seed=0):
    """Saves the tiny model `TINY_T5S[name]` with re-drawn weights to `directory`; returns
    (directory, the Hugging Face model read back from it, eager attention).

    'mt5' gets an `lm_head.weight` of its own added to the file, as untied checkpoints saved by
    transformers 4 have (transformers 5 never writes one for a model it creates)."""
    model_class, config_class, config = TINY_T5S[name]
    model = redraw(model_class(config_class(**config)).eval(), seed)
    model.save_pretrained(directory)
    directory = pathlib.Path(directory)
    if name == "mt5":
        arrays = load_file(directory / "model.safetensors")
        rng = np.random.default_rng(seed + 1)
        arrays["lm_head.weight"] = rng.normal(0, 0.2, arrays["shared.weight"].shape).astype("float32")
        save_file(arrays, directory / "model.safetensors", metadata={"format": "pt"})
    reference = model_class.from_pretrained(directory, attn_implementation="eager").eval()
    return directory, reference


def t5_saver(tmp_path_factory):
    """`save(name)`: (directory, Hugging Face model) of `TINY_T5S[name]`, saved the first time."""
    saved = {}

    def save(name):
        if name not in saved:
            saved[name] = save_t5(name, tmp_path_factory.mktemp(name.replace(".", "_")))
        return saved[name]

    return save


# Batches

ENCODER_LENGTHS = (11, 7, 3)


def encoder_batch(vocab_size=TINY_T5["vocab_size"], lengths=ENCODER_LENGTHS, seed=0):
    """Encoder token ids `(batch, max(lengths))` right-padded with 0 (T5's pad id, used nowhere
    else) and the mask of the real tokens."""
    rng = np.random.default_rng(seed)
    ids = np.zeros((len(lengths), max(lengths)), dtype="int32")
    for row, length in enumerate(lengths):
        ids[row, :length] = rng.integers(2, vocab_size, size=length)
    return ids, ids != 0


def decoder_batch(batch_size=3, length=6, vocab_size=TINY_T5["vocab_size"], seed=1):
    """Decoder token ids `(batch, length)`: the start token 0, then random tokens."""
    ids = np.random.default_rng(seed).integers(2, vocab_size, size=(batch_size, length)).astype("int32")
    ids[:, 0] = 0
    return ids


def hf_t5_outputs(model, encoder_ids, encoder_mask, decoder_ids=None):
    """Hugging Face's (encoder output, logits) as NumPy; logits None without decoder ids."""
    inputs = {
        "input_ids": torch.tensor(encoder_ids, dtype=torch.long),
        "attention_mask": torch.tensor(encoder_mask, dtype=torch.long),
    }
    with torch.no_grad():
        if decoder_ids is None:
            encoder = model.encoder if hasattr(model, "lm_head") else model
            return encoder(**inputs).last_hidden_state.numpy(), None
        outputs = model(**inputs, decoder_input_ids=torch.tensor(decoder_ids, dtype=torch.long), use_cache=False)
    return outputs.encoder_last_hidden_state.numpy(), outputs.logits.numpy()


def hf_t5_greedy(model, prompts, max_new_tokens, end_token=None):
    """Hugging Face's greedy tokens (`generate(do_sample=False)`) for a right-padded batch of encoder
    prompts: each row's new tokens, without the start token, cut after `end_token`. Without
    `end_token` no row stops early."""
    ids = np.zeros((len(prompts), max(len(prompt) for prompt in prompts)), dtype="int64")
    for row, prompt in enumerate(prompts):
        ids[row, : len(prompt)] = prompt
    options = {"min_new_tokens": max_new_tokens} if end_token is None else {}
    with torch.no_grad():
        output = model.generate(
            torch.tensor(ids),
            attention_mask=torch.tensor(ids != 0, dtype=torch.long),
            do_sample=False,
            max_new_tokens=max_new_tokens,
            eos_token_id=end_token,
            **options,
        )
    rows = []
    for row in output[:, 1:].tolist():
        rows.append(row[: row.index(end_token) + 1] if end_token in row else row)
    return rows
