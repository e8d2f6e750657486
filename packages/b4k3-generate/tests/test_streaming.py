"""`stream` yields the tokens `generate` returns, step by step, and `progress_print=True` shows a
progress bar and gives the same output as the compiled loop, on every backend."""

import numpy as np
import pytest
from family_checks import decoder_and_reference

from b4k3_generate import build_cache_model, generate, stream

PROMPTS = [[5, 17, 0, 42, 8, 3, 11], [9, 4], [23, 0, 61, 7]]


@pytest.fixture(scope="module")
def transformer(tmp_path_factory):
    return decoder_and_reference("llama_gqa", tmp_path_factory)[0]


def test_stream_yields_what_generate_returns_as_it_is_produced(transformer):
    new_tokens = 6
    expected = generate(transformer, PROMPTS, new_tokens)
    end_token = expected[1][1]  # the second row ends at its second token
    expected = generate(transformer, PROMPTS, new_tokens, end_token=end_token)
    steps = list(stream(transformer, PROMPTS, new_tokens, end_token=end_token))
    assert len(steps) == max(len(row) for row in expected)
    for row, tokens in enumerate(expected):
        column = [step[row] for step in steps]
        assert column[: len(tokens)] == tokens
        assert all(token is None for token in column[len(tokens) :])


def test_stream_with_sampling_is_seeded_like_generate(transformer):
    settings = {"search_mode": "topk", "k": 5, "seed": 7, "temperature": 3.0}
    expected = generate(transformer, PROMPTS, 5, **settings)
    steps = list(stream(transformer, PROMPTS, 5, **settings))
    assert [[step[row] for step in steps] for row in range(len(PROMPTS))] == expected


def test_progress_print_shows_a_bar_and_gives_the_compiled_loops_output(transformer, capsys):
    prompts = np.zeros((len(PROMPTS), 8), dtype="int32")
    for row, prompt in enumerate(PROMPTS):
        prompts[row, : len(prompt)] = prompt
    quiet = build_cache_model(transformer, [14], end_token=None).predict(prompts)
    shown = build_cache_model(transformer, [14], end_token=None, progress_print=True).predict(prompts)
    np.testing.assert_array_equal(shown, quiet)
    assert "generating" in capsys.readouterr().err
