"""b4k3-generate's protocol is its interface: `examples/downstream_decoder.py`'s `TinyCausalLM`, a
Keras model written outside b4k3-models, generates through `generate` and `stream` alone.

Reference: a plain loop that reruns the whole sequence through the model's ordinary `call` and
takes the argmax (of the unbanned tokens) at every step. Greedy tokens must be identical; top-p
draws must lie in the nucleus of the full pass's distribution at every step.
"""

import importlib.util

import numpy as np
import pytest
from keras import ops

from b4k3_generate import build_cache_model, generate, stream
from workspace import REPO_ROOT

# Ragged, one of a single token, token 0 inside a prompt (a real token, not padding).
PROMPTS = [[3, 14, 15, 9, 26, 5, 35, 8], [7], [0, 9, 0, 2]]
NEW_TOKENS = 10


@pytest.fixture(scope="module")
def example():
    path = REPO_ROOT / "examples" / "downstream_decoder.py"
    spec = importlib.util.spec_from_file_location("downstream_decoder", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def model(example):
    return example.tiny_model(seed=3)


@pytest.mark.parametrize("jit_compile", ["auto", False])
def test_greedy_tokens_equal_the_plain_loop(example, model, jit_compile):
    expected = [example.plain_greedy(model, prompt, NEW_TOKENS) for prompt in PROMPTS]
    assert generate(model, PROMPTS, NEW_TOKENS, jit_compile=jit_compile) == expected


def test_banned_tokens_are_never_generated_and_the_rest_is_the_plain_loop(example, model):
    greedy = generate(model, PROMPTS, NEW_TOKENS)
    banned = sorted({token for row in greedy for token in row})[:4]
    tokens = generate(model, PROMPTS, NEW_TOKENS, mask_output=banned)
    assert not {token for row in tokens for token in row} & set(banned)
    assert tokens == [example.plain_greedy(model, prompt, NEW_TOKENS, banned) for prompt in PROMPTS]


def test_stream_gives_the_generated_tokens_and_stops_rows_at_their_end_token(model):
    greedy = generate(model, PROMPTS, NEW_TOKENS)
    end_token = greedy[0][4]
    steps = list(stream(model, PROMPTS, NEW_TOKENS, end_token=end_token))
    streamed = [[step[row] for step in steps if step[row] is not None] for row in range(len(PROMPTS))]
    assert streamed == generate(model, PROMPTS, NEW_TOKENS, end_token=end_token)
    assert streamed[0] == greedy[0][: greedy[0].index(end_token) + 1]


def test_top_p_draws_lie_in_each_steps_nucleus(model):
    rows = generate(model, PROMPTS, NEW_TOKENS, search_mode="topp", k=0.8, seed=7)
    assert rows == generate(model, PROMPTS, NEW_TOKENS, search_mode="topp", k=0.8, seed=7), "seeded: reproducible"
    for prompt, new_tokens in zip(PROMPTS, rows, strict=True):
        tokens = prompt + new_tokens
        logits = ops.convert_to_numpy(model(np.array([tokens])))[0].astype("float64")
        for position in range(len(prompt), len(tokens)):
            probabilities = np.exp(logits[position - 1] - logits[position - 1].max())
            probabilities /= probabilities.sum()
            order = np.argsort(-probabilities)
            kept = order[: np.searchsorted(np.cumsum(probabilities[order]), 0.8) + 1]
            assert tokens[position] in kept, (position, tokens[position], kept)


def test_build_cache_model_predicts_the_same_tokens(example, model):
    generator = build_cache_model(model, [16], end_token=None)
    tokens = generator.predict(np.array([[3, 14, 15, 9, 26, 5, 35, 8]]))
    assert tokens[0, 8:].tolist() == example.plain_greedy(model, PROMPTS[0], 8)


def test_a_generation_past_its_positions_is_refused(model):
    with pytest.raises(ValueError, match="64 \\(learned positions\\)"):
        generate(model, PROMPTS, 60)
