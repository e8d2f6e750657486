"""Greedy generation gives Hugging Face's tokens (`generate(do_sample=False)`) for tiny random
Llama, Qwen2, Gemma, Gemma2, GPT-2 and OpenAI GPT models (the GPTs with learned positions), on
a batch of prompts of different lengths, two of them holding token 0; rows stop on their own;
`build_cache_model(...).predict` keeps bert4keras3's contract; `jit_compile=True` and False
decode the same tokens (and seeded draws, where the backend's random kernels allow); a
generation longer than the learned positions is refused."""

import keras
import numpy as np
import pytest
from family_checks import decoder_and_reference, hf_greedy

from b4k3_generate import build_cache_model, generate, stream

PROMPTS = [[5, 17, 0, 42, 8, 3, 11], [9, 4], [23, 0, 61, 7]]  # 0 is a real token here
NEW_TOKENS = 6


@pytest.fixture(scope="module", params=["llama_gqa", "qwen2", "gemma", "gemma2", "gpt2", "openai_gpt"])
def family(request, tmp_path_factory):
    return decoder_and_reference(request.param, tmp_path_factory)


def test_greedy_tokens_equal_hf_for_ragged_prompts(family):
    transformer, reference = family
    expected = [hf_greedy(reference, prompt, NEW_TOKENS) for prompt in PROMPTS]
    assert generate(transformer, PROMPTS, NEW_TOKENS) == expected


def test_rows_stop_at_their_own_end_token(family):
    transformer, reference = family
    free = [hf_greedy(reference, prompt, NEW_TOKENS) for prompt in PROMPTS]
    end_token = free[0][2]  # the first row ends after three tokens
    expected = [hf_greedy(reference, prompt, NEW_TOKENS, end_token) for prompt in PROMPTS]
    assert generate(transformer, PROMPTS, NEW_TOKENS, end_token=end_token) == expected
    # A second end token the first row does not produce before its third token: it still ends there.
    other = next(token for token in range(transformer.vocab_size) if token not in free[0][:3])
    assert generate(transformer, PROMPTS, NEW_TOKENS, end_token=[other, end_token])[0][-1] == end_token


def test_predict_returns_prompt_then_tokens_then_end_token_fill(family):
    transformer, reference = family
    max_length = 12
    padded = np.zeros((len(PROMPTS), 8), dtype="int32")
    for row, prompt in enumerate(PROMPTS):
        padded[row, : len(prompt)] = prompt
    end_token = hf_greedy(reference, PROMPTS[1], 3)[1]
    output = transformer.build_cache_model([max_length], end_token=end_token).predict(padded)
    assert output.shape == (len(PROMPTS), max_length)
    for row, prompt in enumerate(PROMPTS):
        continuation = hf_greedy(reference, prompt, max_length - len(prompt), end_token)
        expected = prompt + continuation
        if end_token in continuation:  # after the end token, the row holds it to the end
            cut = len(prompt) + continuation.index(end_token) + 1
            expected = expected[:cut] + [end_token] * (max_length - cut)
        assert output[row].tolist() == expected


def test_two_generators_of_one_transformer_are_independent(family):
    transformer, _ = family
    prompts = np.array([PROMPTS[1] + [0, 0]], dtype="int32")
    greedy = build_cache_model(transformer, [8], end_token=None)
    long = build_cache_model(transformer, [12], end_token=None)
    first = greedy.predict(prompts)
    assert long.predict(prompts).shape == (1, 12)
    np.testing.assert_array_equal(greedy.predict(prompts), first)
    np.testing.assert_array_equal(long.predict(prompts)[:, :8], first)


@pytest.fixture(scope="module")
def llama(tmp_path_factory):
    return decoder_and_reference("llama_gqa", tmp_path_factory)


@pytest.mark.parametrize("jit_compile", [True, False])
def test_greedy_tokens_equal_hf_compiled_or_eager(llama, jit_compile):
    """`jit_compile=True` (torch: the step under `torch.compile`) and False (eager everywhere)
    decode exactly as the default does; streaming too."""
    transformer, reference = llama
    expected = [hf_greedy(reference, prompt, NEW_TOKENS) for prompt in PROMPTS]
    assert generate(transformer, PROMPTS, NEW_TOKENS, jit_compile=jit_compile) == expected
    streamed = list(stream(transformer, PROMPTS, NEW_TOKENS, jit_compile=jit_compile))
    assert [[step[row] for step in streamed] for row in range(len(PROMPTS))] == expected


def test_seeded_sampling_is_the_same_compiled_or_eager(llama):
    """With every processor and the top-p-after-top-k sampler, a seed draws the same tokens on
    every call, compiled or eager, and on jax and torch the same tokens in both modes (torch's
    generator runs outside `torch.compile`'s graph; jax.random is the same under `jax.jit`).
    TensorFlow's stateless random kernels draw other numbers under XLA than eagerly."""
    transformer, _ = llama
    settings = {"search_mode": "topp", "k": [0.9, 8], "temperature": 3.0, "penalty": 1.3, "mask_output": [1, 2]}
    drawn = {}
    for jit_compile in (True, False):
        drawn[jit_compile] = generate(transformer, PROMPTS, NEW_TOKENS, seed=11, jit_compile=jit_compile, **settings)
        assert (
            generate(transformer, PROMPTS, NEW_TOKENS, seed=11, jit_compile=jit_compile, **settings)
            == drawn[jit_compile]
        )
        assert not {1, 2} & {token for row in drawn[jit_compile] for token in row}
    if keras.backend.backend() != "tensorflow":
        assert drawn[True] == drawn[False]


def test_a_generation_past_the_learned_positions_is_refused(tmp_path_factory):
    transformer, _ = decoder_and_reference("gpt2", tmp_path_factory)  # 64 positions
    with pytest.raises(ValueError, match=r"need 70 positions; GPT2 has 64 \(learned positions\)"):
        generate(transformer, [[1] * 10], 60)
    with pytest.raises(ValueError, match="need 65 positions"):
        build_cache_model(transformer, [65], end_token=None)
    assert len(generate(transformer, [[1] * 10], 54)[0]) == 54  # up to the last position
