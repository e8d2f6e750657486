"""Helpers of the decoder-only language model tests (Llama, Qwen2, Gemma, Gemma2): tiny Hugging
Face configs, saving random models as checkpoints, ragged right-padded batches, Hugging Face's
reference logits and greedy tokens, and the Keras dtype policy set for one block."""

import contextlib
import pathlib

import keras
import numpy as np
import torch
import transformers

from b4k3_models import build_transformer_model

# Weights drawn with a standard deviation ten times Hugging Face's default, so that attention
# logits and final logits are large enough for Gemma2's soft caps to bite.
INITIALIZER_RANGE = 0.2

LLAMA3_ROPE = {
    "rope_type": "llama3",
    "rope_theta": 10_000.0,
    "factor": 8.0,
    "low_freq_factor": 1.0,
    "high_freq_factor": 4.0,
    # Short enough that every rotary frequency of the tiny heads is scaled or smoothed.
    "original_max_position_embeddings": 8,
}
TINY_LLAMA = {
    "vocab_size": 64,
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "intermediate_size": 40,
    "max_position_embeddings": 64,
    "rms_norm_eps": 1e-5,
    "initializer_range": INITIALIZER_RANGE,
}
TINY_LLAMA_GQA = {**TINY_LLAMA, "rope_parameters": LLAMA3_ROPE, "tie_word_embeddings": False}
TINY_LLAMA_TIED = {**TINY_LLAMA, "tie_word_embeddings": True}
# Llama's optional biases (attention and feed-forward), linear rope scaling and heads wider than
# hidden_size / heads.
TINY_LLAMA_BIASES = {
    **TINY_LLAMA,
    "head_dim": 16,
    "attention_bias": True,
    "mlp_bias": True,
    "rope_parameters": {"rope_type": "linear", "rope_theta": 10_000.0, "factor": 2.0},
}
TINY_QWEN2 = {**TINY_LLAMA, "rope_parameters": {"rope_type": "default", "rope_theta": 1_000.0}}
# head_dim 16 while hidden_size / heads is 8: the projections are wider than the hidden size.
TINY_GEMMA = {**TINY_LLAMA, "num_key_value_heads": 1, "head_dim": 16, "tie_word_embeddings": True}
TINY_GEMMA2 = {
    **TINY_LLAMA,
    "head_dim": 16,
    "tie_word_embeddings": True,
    "sliding_window": 4,
    "query_pre_attn_scalar": 24,
    "attn_logit_softcapping": 2.0,
    "final_logit_softcapping": 1.5,
}

# family -> (Hugging Face causal LM class, its config class, tiny config)
TINY_MODELS = {
    "llama_gqa": (transformers.LlamaForCausalLM, transformers.LlamaConfig, TINY_LLAMA_GQA),
    "llama_tied": (transformers.LlamaForCausalLM, transformers.LlamaConfig, TINY_LLAMA_TIED),
    "llama_biases": (transformers.LlamaForCausalLM, transformers.LlamaConfig, TINY_LLAMA_BIASES),
    "qwen2": (transformers.Qwen2ForCausalLM, transformers.Qwen2Config, TINY_QWEN2),
    "gemma": (transformers.GemmaForCausalLM, transformers.GemmaConfig, TINY_GEMMA),
    "gemma2": (transformers.Gemma2ForCausalLM, transformers.Gemma2Config, TINY_GEMMA2),
}


def save_llm(name, directory, seed=0, **save_options):
    """Saves the random tiny model `TINY_MODELS[name]` (eager attention, every 1-d weight, norm
    scales and biases, perturbed so a misplaced one shows) to `directory`; returns (directory,
    the Hugging Face model)."""
    model_class, config_class, config = TINY_MODELS[name]
    torch.manual_seed(seed)
    model = model_class(config_class(**config, attn_implementation="eager")).eval()
    with torch.no_grad():
        for parameter in model.parameters():
            if parameter.ndim == 1:
                parameter.add_(torch.randn_like(parameter) * 0.2)
    model.save_pretrained(directory, **save_options)
    return pathlib.Path(directory), model


def decoder_and_reference(name, tmp_path_factory):
    """(b4k3 decoder with a linear LM head, Hugging Face model) of the tiny family `name`, saved
    to a fresh temporary directory and loaded from it."""
    directory, reference = save_llm(name, tmp_path_factory.mktemp(name))
    return build_transformer_model(checkpoint_path=directory, with_lm="linear", return_keras_model=False), reference


def hf_greedy(model, prompt, max_new_tokens, end_token=None, **options):
    """Hugging Face's greedy continuation of one prompt (no padding needed): the new tokens only.
    Without `end_token` it never stops early; `options` go to `model.generate`
    (`repetition_penalty`, `bad_words_ids`, ...)."""
    with torch.no_grad():
        output = model.generate(
            torch.tensor([prompt]),
            attention_mask=torch.ones(1, len(prompt), dtype=torch.long),
            do_sample=False,
            max_new_tokens=max_new_tokens,
            eos_token_id=end_token,
            pad_token_id=end_token if end_token is not None else 0,
            **options,
        )
    return output[0, len(prompt) :].tolist()


def saver(tmp_path_factory):
    """`save(name)`: (directory, Hugging Face model) of the tiny family `name`, saved the first
    time it is asked for (a module-scoped fixture returns it)."""
    saved = {}

    def save(name):
        if name not in saved:
            saved[name] = save_llm(name, tmp_path_factory.mktemp(name))
        return saved[name]

    return save


def ragged_batch(vocab_size, lengths=(10, 7, 3), seed=0):
    """Token ids `(len(lengths), max(lengths))` int32 right-padded with 0, which is a real token
    too (it appears inside the first two rows), and the `(batch, len)` mask of real positions."""
    rng = np.random.default_rng(seed)
    ids = np.zeros((len(lengths), max(lengths)), dtype="int32")
    for row, length in enumerate(lengths):
        ids[row, :length] = rng.integers(1, vocab_size, size=length)
    ids[0, 2] = ids[1, 0] = 0
    mask = np.arange(ids.shape[1])[None] < np.asarray(lengths)[:, None]
    return ids, mask


def hf_logits(model, ids, mask=None):
    """Hugging Face's logits `(batch, len, vocab)` as NumPy, attending to the `mask`ed positions."""
    attention_mask = None if mask is None else torch.tensor(mask, dtype=torch.long)
    with torch.no_grad():
        outputs = model(input_ids=torch.tensor(ids, dtype=torch.long), attention_mask=attention_mask, use_cache=False)
    return outputs.logits.numpy()


def to_numpy(tensor):
    return keras.ops.convert_to_numpy(keras.ops.cast(tensor, "float32"))


@contextlib.contextmanager
def dtype_policy(name):
    """Keras' global dtype policy set to `name` inside the block, float32 again after."""
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy("float32")


def chi_square_critical(df, z=3.0902):
    """Wilson-Hilferty approximation of the chi-square quantile; z=3.0902 is the normal 0.999 quantile."""
    return df * (1 - 2 / (9 * df) + z * np.sqrt(2 / (9 * df))) ** 3
