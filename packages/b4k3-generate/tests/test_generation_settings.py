"""`generate`'s per-call settings on a tiny random Llama: seeds make sampling reproducible, banned
tokens never come out, the repetition penalty gives Hugging Face's greedy tokens, top-k sampling
stays inside the model's top k, a second call of the same shape reuses the compiled loop, bad
settings are refused by name, and `predict(..., prompt_lengths=...)` keeps a prompt's final 0.

Every `generate` call uses `PROMPTS` and `NEW_TOKENS`, so calls with the same settings reuse one
compiled loop."""

import keras
import numpy as np
import pytest
from family_checks import decoder_and_reference, hf_greedy

from b4k3_generate import build_cache_model, generate
from b4k3_generate.loop import DecodeLoop

PROMPTS = [[5, 17, 0, 42, 8, 5], [9, 4, 9, 31]]  # ragged; 0 is a real token here
NEW_TOKENS = 8
# A high temperature flattens the tiny model's distribution, so two draws almost never agree.
FLAT = {"temperature": 5.0}
SAMPLERS = [("topk", 5), ("topp", 0.9), ("topp", [0.9, 5])]


@pytest.fixture(scope="module")
def llama(tmp_path_factory):
    """(b4k3 transformer, Hugging Face reference) of one tiny random Llama."""
    return decoder_and_reference("llama_gqa", tmp_path_factory)


@pytest.mark.parametrize(("search_mode", "k"), SAMPLERS)
def test_same_seed_gives_same_tokens_and_other_seeds_differ(llama, search_mode, k):
    transformer, _ = llama

    def draw(seed):
        return generate(transformer, PROMPTS, NEW_TOKENS, search_mode=search_mode, k=k, seed=seed, **FLAT)

    first = draw(1)
    assert draw(1) == first
    assert draw(2) != first
    assert draw(None) != draw(None)  # a fresh seed per call


def test_greedy_never_produces_a_banned_token_and_matches_hf(llama):
    """Banning every token greedy decoding would produce (HF's, which b4k3's equal) gives HF's
    greedy tokens with those words banned (`bad_words_ids`)."""
    transformer, reference = llama
    banned = sorted({token for prompt in PROMPTS for token in hf_greedy(reference, prompt, NEW_TOKENS)})
    masked = generate(transformer, PROMPTS, NEW_TOKENS, mask_output=banned)
    assert not {token for row in masked for token in row} & set(banned)
    bad_words = [[token] for token in banned]
    assert masked == [hf_greedy(reference, prompt, NEW_TOKENS, bad_words_ids=bad_words) for prompt in PROMPTS]


def test_sampling_never_produces_a_banned_token(llama):
    transformer, _ = llama
    settings = {"search_mode": "topk", "k": 5, "seed": 3, **FLAT}
    free = generate(transformer, PROMPTS, NEW_TOKENS, **settings)
    banned = sorted({token for row in free for token in row})  # what this seed would draw
    masked = generate(transformer, PROMPTS, NEW_TOKENS, mask_output=banned, **settings)
    assert not {token for row in masked for token in row} & set(banned)


def test_greedy_with_repetition_penalty_equals_hf_per_row_at_any_temperature(llama):
    """HF penalises the prompt and the generated ids; b4k3 the same, per row, never the padding
    of the shorter prompt. Tokens must be equal. Temperature rescales the penalised logits, so
    greedy tokens do not depend on it."""
    transformer, reference = llama
    expected = [hf_greedy(reference, prompt, NEW_TOKENS, repetition_penalty=1.5) for prompt in PROMPTS]
    assert expected != [hf_greedy(reference, prompt, NEW_TOKENS) for prompt in PROMPTS]  # the penalty bites
    assert generate(transformer, PROMPTS, NEW_TOKENS, penalty=1.5) == expected
    assert generate(transformer, PROMPTS, NEW_TOKENS, penalty=1.5, temperature=5.0) == expected


def test_top_k_samples_lie_among_the_k_highest_logits_of_each_step(llama):
    """Each token sampled with k=3 at temperature 1 is among the 3 highest logits of the model's
    full forward pass over the prompt and the tokens before it (tolerance 1e-4 for the cached
    decode's float32 rounding). Some are not the highest: the draw is not greedy."""
    transformer, _ = llama
    rows, starts = [], []
    for seed in range(5):
        new = generate(transformer, PROMPTS, NEW_TOKENS, search_mode="topk", k=3, seed=seed, temperature=1.0)
        for prompt, tokens in zip(PROMPTS, new, strict=True):
            assert len(tokens) == NEW_TOKENS
            rows.append(prompt + tokens)
            starts.append(len(prompt))
    batch = np.zeros((len(rows), max(map(len, rows))), dtype="int32")  # right padding: causal
    for row, tokens in enumerate(rows):
        batch[row, : len(tokens)] = tokens
    logits = keras.ops.convert_to_numpy(transformer.model(batch))
    ranks = []
    for row, start in enumerate(starts):
        for position in range(start, len(rows[row])):
            step = logits[row, position - 1]
            token_logit = step[rows[row][position]]
            assert token_logit >= np.sort(step)[-3] - 1e-4, (row, position)
            ranks.append(int(np.sum(step > token_logit + 1e-4)))
    assert max(ranks) > 0


def test_second_call_of_the_same_shape_reuses_the_compiled_loop(llama, monkeypatch):
    """Counts how often the loop's `prefill` runs as Python: once on jax (traced once; a later
    call of the same shape runs the compiled loop, whatever its prompts, their lengths, the seed,
    or a number of new tokens that rounds to the same buffer) and on tensorflow (one
    `tf.function` trace), once per call on torch (eager)."""
    transformer, _ = llama
    runs = []
    prefill = DecodeLoop.prefill

    def counting_prefill(self, *args):
        runs.append(args)
        return prefill(self, *args)

    monkeypatch.setattr(DecodeLoop, "prefill", counting_prefill)
    settings = {"search_mode": "topp", "k": [0.8, 7], "temperature": 2.5}  # used by no other test
    other_prompts = [[3, 3, 3], [1, 2, 60, 61, 62, 63]]  # the same width, other lengths and ids
    first = generate(transformer, PROMPTS, NEW_TOKENS, seed=1, **settings)
    second = generate(transformer, other_prompts, NEW_TOKENS, seed=2, **settings)
    third = generate(transformer, [[7], [8, 9]], NEW_TOKENS + 20, seed=3, **settings)
    assert [len(row) for row in first + second + third] == [NEW_TOKENS] * 4 + [NEW_TOKENS + 20] * 2
    assert len(runs) == (3 if keras.backend.backend() == "torch" else 1)


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ({"search_mode": "topk", "k": 0}, "k="),
        ({"search_mode": "topk", "k": 2.5}, "k="),
        ({"search_mode": "topk", "k": True}, "k="),
        ({"search_mode": "topp", "k": 0.0}, "k="),
        ({"search_mode": "topp", "k": 1.5}, "k="),
        ({"search_mode": "topp", "k": [0.9, 0]}, "k="),
        ({"search_mode": "topp", "k": [0.9]}, "k="),
        ({"search_mode": "beam"}, "search_mode"),
        ({"temperature": 0}, "temperature"),
        ({"temperature": float("nan")}, "temperature"),
        ({"penalty": -1}, "penalty"),
        ({"penalty_window": 0}, "penalty_window"),
        ({"max_penalty_range": [2, 1]}, "max_penalty_range"),
        ({"mask_output": [-1]}, "mask_output"),
        ({"max_new_tokens": 0}, "max_new_tokens"),
        ({"max_new_tokens": 2.0}, "max_new_tokens"),
        ({"prompts": []}, "prompts"),
        ({"prompts": [[5, 17], []]}, "prompts"),
        ({"prompts": [[5, 64]]}, "64"),  # the vocabulary is 0..63
        ({"prompts": [[-1, 5]]}, "-1"),
        ({"end_token": "x"}, "end_token"),
        ({"end_token": [2, -1]}, "end_token"),
        ({"jit_compile": "yes"}, "jit_compile"),
        ({"jit_compile": None}, "jit_compile"),
    ],
)
def test_bad_setting_is_refused_naming_it(llama, settings, named):
    transformer, _ = llama
    arguments = {"prompts": PROMPTS, "max_new_tokens": NEW_TOKENS, **settings}
    with pytest.raises(ValueError, match=named):
        generate(transformer, **arguments)


@pytest.mark.parametrize("seed", ["x", 1.5])
def test_bad_seed_is_refused_naming_it(llama, seed):
    """A seed is an int: 'x' must not fail with int()'s message, and 1.5 must not silently act as 1."""
    transformer, _ = llama
    with pytest.raises(ValueError, match="seed"):
        generate(transformer, PROMPTS, NEW_TOKENS, search_mode="topk", k=5, seed=seed, **FLAT)


@pytest.mark.parametrize("mask_output", [[64], list(range(64))])
def test_mask_output_outside_the_vocabulary_or_of_every_token_is_refused(llama, mask_output):
    transformer, _ = llama
    with pytest.raises(ValueError, match="mask_output"):
        generate(transformer, PROMPTS, NEW_TOKENS, mask_output=mask_output)


@pytest.fixture(scope="module")
def generator(llama):
    """A greedy `build_cache_model` of length 10 (compiled once for the tests below, which all
    give it `(2, 3)` tokens)."""
    transformer, _ = llama
    return build_cache_model(transformer, [10], end_token=None)


def predicted(reference, prompts, max_length=10):
    """Each prompt followed by HF's greedy tokens up to `max_length`."""
    return [prompt + hf_greedy(reference, prompt, max_length - len(prompt)) for prompt in prompts]


def test_predict_keeps_a_final_0_given_prompt_lengths_and_pads_otherwise(llama, generator):
    """`[5, 17, 0]` with `prompt_lengths` 3 is a prompt ending in token 0; without, its trailing 0
    is padding. Both continue as HF's greedy does from that prompt."""
    _, reference = llama
    tokens = np.array([[5, 17, 0], [9, 4, 0]], dtype="int32")
    given = generator.predict(tokens, prompt_lengths=[3, 2])
    assert given.tolist() == predicted(reference, [[5, 17, 0], [9, 4]])
    assert generator.predict(tokens).tolist() == predicted(reference, [[5, 17], [9, 4]])


def test_predict_refuses_prompt_lengths_past_the_tokens_given(generator):
    """The prefill runs over the tokens given only, so a prompt length of 5 for 3 tokens would
    continue from positions the model never ran: it is refused, naming the prompt lengths."""
    tokens = np.array([[5, 17, 0], [9, 4, 0]], dtype="int32")
    with pytest.raises(ValueError, match="prompt lengths"):
        generator.predict(tokens, prompt_lengths=[5, 2])
