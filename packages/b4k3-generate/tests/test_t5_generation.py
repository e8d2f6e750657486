"""Encoder-decoder generation (T5): `generate` and `stream` read the prompts as encoder inputs and
decode from the decoder start token; greedy tokens equal Hugging Face's
`T5ForConditionalGeneration` / `MT5ForConditionalGeneration.generate(do_sample=False)` on a ragged
batch of encoder prompts (padded and masked); rows stop at their own end token; seeded sampling
is reproducible with every sampler and processor; `build_cache_model(...).predict` takes
`[encoder tokens, decoder tokens]` as bert4keras3's T5 did."""

import numpy as np
import pytest
from t5_checks import hf_t5_greedy, t5_saver

from b4k3_generate import build_cache_model, generate, stream
from b4k3_models import build_transformer_model

PROMPTS = [[5, 17, 30, 42, 8, 3, 11, 9, 21], [9, 4], [23, 2, 61, 7]]
NEW_TOKENS = 8


@pytest.fixture(scope="module")
def save(tmp_path_factory):
    return t5_saver(tmp_path_factory)


def loaded(save, name):
    directory, reference = save(name)
    return build_transformer_model(checkpoint_path=directory, return_keras_model=False, with_lm="linear"), reference


@pytest.fixture(scope="module", params=["t5.1.0", "mt5"])
def family(request, save):
    return loaded(save, request.param)


@pytest.fixture(scope="module")
def mt5(save):
    return loaded(save, "mt5")


def test_greedy_tokens_equal_hf_for_ragged_encoder_prompts(family):
    t5, reference = family
    assert generate(t5, PROMPTS, NEW_TOKENS) == hf_t5_greedy(reference, PROMPTS, NEW_TOKENS)


def test_rows_stop_at_their_own_end_token(family):
    t5, reference = family
    end_token = hf_t5_greedy(reference, PROMPTS, NEW_TOKENS)[0][2]
    assert generate(t5, PROMPTS, NEW_TOKENS, end_token=end_token) == hf_t5_greedy(
        reference, PROMPTS, NEW_TOKENS, end_token
    )


def test_stream_yields_the_tokens_generate_returns(family):
    t5, _ = family
    streamed = list(stream(t5, PROMPTS, NEW_TOKENS))
    assert [list(row) for row in zip(*streamed, strict=True)] == generate(t5, PROMPTS, NEW_TOKENS)


@pytest.mark.parametrize(
    ("search_mode", "k", "processing"),
    [
        ("topk", 5, {"temperature": 0.7}),
        ("topp", 0.9, {"penalty": 1.3, "penalty_window": 4}),
        ("topp", [0.8, 10], {"mask_output": [3, 4], "max_penalty_range": [1, 3], "penalty": 1.2}),
    ],
)
def test_seeded_sampling_is_reproducible_with_every_sampler(mt5, search_mode, k, processing):
    t5, _ = mt5
    draw = lambda seed: generate(t5, PROMPTS, NEW_TOKENS, search_mode=search_mode, k=k, seed=seed, **processing)  # noqa: E731
    first = draw(3)
    assert first == draw(3)
    assert [len(row) for row in first] == [NEW_TOKENS] * len(PROMPTS)
    if "mask_output" in processing:
        assert not {3, 4} & {token for row in first for token in row}


def test_build_cache_model_takes_encoder_and_decoder_tokens(family):
    """bert4keras3's T5 contract: decoder tokens `[0 (start), 0...]` with `index_bias=1`, the output
    the decoder's tokens, start token first."""
    t5, reference = family
    encoder = np.zeros((len(PROMPTS), 10), dtype="int32")
    for row, prompt in enumerate(PROMPTS):
        encoder[row, : len(prompt)] = prompt
    decoder = np.zeros((len(PROMPTS), 1), dtype="int32")
    generator = build_cache_model(t5, [None, NEW_TOKENS + 1], end_token=None, index_bias=1)
    output = generator.predict([encoder, decoder])
    expected = [[0, *row] for row in hf_t5_greedy(reference, PROMPTS, NEW_TOKENS)]
    assert output.tolist() == expected


def test_predict_of_an_encoder_decoder_needs_both_inputs(mt5):
    t5, _ = mt5
    generator = build_cache_model(t5, [4, 6], end_token=1, index_bias=1)
    with pytest.raises(ValueError, match=r"predict takes \[encoder tokens, decoder tokens\]"):
        generator.predict(np.zeros((1, 1), dtype="int32"))
    with pytest.raises(ValueError, match=r"encoder tokens must be \(batch, <= 4\)"):
        generator.predict([np.ones((1, 5), dtype="int32"), np.zeros((1, 1), dtype="int32")])
    with pytest.raises(ValueError, match="input_lengths of an encoder-decoder"):
        build_cache_model(t5, [6], end_token=1)
