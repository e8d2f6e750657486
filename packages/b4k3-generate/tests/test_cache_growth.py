"""The KV cache starts short and grows: with the shortest cache set to 8 positions, a generation
of 38 positions goes through caches of 16 (the prompt's, rounded up), 32 and 64 (`generate`'s
buffer) positions (`loop.cache_lengths`), and greedy tokens still equal Hugging Face's, for
ragged prompts that cross each length at different steps (Llama, and Gemma2 with its sliding
window), through `generate`, `stream` and `build_cache_model(...).predict` (8, 16, 32, then the
40 positions asked for)."""

import weakref

import numpy as np
import pytest
from family_checks import decoder_and_reference, hf_greedy

from b4k3_generate import api, build_cache_model, generate, loop, stream
from b4k3_models.llama import Gemma

PROMPTS = [[5, 17, 0, 42, 8, 3, 11], [9, 4], [23, 0, 61, 7]]
NEW_TOKENS = 31  # the longest row fills 38 positions


@pytest.fixture(scope="module", params=["llama_gqa", "gemma2"])  # Gemma2: a 4-token sliding window
def decoder_model(request, tmp_path_factory):
    transformer, reference = decoder_and_reference(request.param, tmp_path_factory)
    expected = [hf_greedy(reference, prompt, NEW_TOKENS) for prompt in PROMPTS]
    return transformer, expected


@pytest.fixture
def resized(monkeypatch):
    """The shortest cache set to 8 positions; collects the lengths caches are resized to (traced
    once per length under jax.jit and tf.function, called at each growth on torch). Decoders are
    compiled afresh (no test reuses another's compiled resize)."""
    monkeypatch.setattr(loop, "SHORTEST_CACHE", 8)
    monkeypatch.setattr(api, "_DECODERS", weakref.WeakKeyDictionary())
    lengths = []
    resize_cache = Gemma.resize_cache  # the decoders' base class

    def recording_resize_cache(self, cache, max_length):
        lengths.append(max_length)
        return resize_cache(self, cache, max_length)

    monkeypatch.setattr(Gemma, "resize_cache", recording_resize_cache)
    return lengths


def test_cache_lengths_double_from_the_shortest_or_the_prompt_up_to_the_maximum():
    assert loop.cache_lengths(7, 38, shortest=8) == [8, 16, 32, 38]
    assert loop.cache_lengths(20, 38, shortest=8) == [32, 38]
    assert loop.cache_lengths(7, 32, shortest=8) == [8, 16, 32]
    assert loop.cache_lengths(7, 6, shortest=8) == [6]
    assert loop.cache_lengths(32, 160) == [160]  # 256 positions first: one loop for short generations


def test_generate_grows_the_cache_and_keeps_hf_tokens(decoder_model, resized):
    transformer, expected = decoder_model
    assert generate(transformer, PROMPTS, NEW_TOKENS) == expected
    assert sorted(set(resized)) == [32, 64]


def test_stream_grows_the_cache_and_keeps_hf_tokens(decoder_model, resized):
    transformer, expected = decoder_model
    steps = list(stream(transformer, PROMPTS, NEW_TOKENS))
    assert [[step[row] for step in steps] for row in range(len(PROMPTS))] == expected
    assert sorted(set(resized)) == [32, 64]


def test_predict_grows_the_cache_and_keeps_hf_tokens(decoder_model, resized):
    transformer, expected = decoder_model
    max_length = 40
    padded = np.zeros((len(PROMPTS), 8), dtype="int32")
    for row, prompt in enumerate(PROMPTS):
        padded[row, : len(prompt)] = prompt
    output = build_cache_model(transformer, [max_length], end_token=None).predict(padded)
    for row, prompt in enumerate(PROMPTS):
        continuation = output[row, len(prompt) :].tolist()
        assert continuation[:NEW_TOKENS] == expected[row][: len(continuation)]
    assert sorted(set(resized)) == [16, 32, 40]
