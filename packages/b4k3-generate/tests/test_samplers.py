"""Samplers against Hugging Face's warpers: the filters keep exactly the tokens and values
`TopKLogitsWarper` / `TopPLogitsWarper` keep, and seeded draws follow the distribution they leave
(chi-square test at significance 0.001, on fixed seeds so the outcome is reproducible).
"""

import keras
import numpy as np
import pytest
import torch
from family_checks import chi_square_critical
from keras import ops
from layer_checks import compiled
from transformers.generation.logits_process import LogitsProcessorList, TopKLogitsWarper, TopPLogitsWarper

from b4k3_generate.samplers import (
    check_sampling,
    greedy,
    next_token,
    sample,
    step_seed,
    top_k_filter,
    top_p_filter,
)
from b4k3_ops.numerics import infinity

RNG = np.random.default_rng(0)
VOCAB = 32
LOGITS = (RNG.normal(size=(6, VOCAB)) * 2).astype("float32")
# Top-p 0.8 keeps 11 of its tokens; top-8 and then top-p 0.8 keep 4.
ROW = RNG.normal(size=(VOCAB,)).astype("float32")
SEED = np.array([0, 7], dtype="int32")
DRAWS = 4000


def hf(warpers, logits):
    return LogitsProcessorList(warpers)(None, torch.from_numpy(np.array(logits))).numpy()


def to_numpy(x):
    return ops.convert_to_numpy(x)


def assert_keeps_like_hf(out, expected):
    """Same kept entries (ours removed with -1e12, Hugging Face's with -inf), kept values untouched."""
    out = to_numpy(out)
    kept = out != np.float32(-infinity())
    np.testing.assert_array_equal(kept, np.isfinite(expected))
    np.testing.assert_array_equal(out[kept], expected[kept])


def test_greedy_is_the_int32_argmax():
    tokens = greedy(LOGITS)
    assert keras.backend.standardize_dtype(tokens.dtype) == "int32"
    np.testing.assert_array_equal(to_numpy(tokens), LOGITS.argmax(-1))
    np.testing.assert_array_equal(to_numpy(next_token(LOGITS, "greedy")), LOGITS.argmax(-1))


@pytest.mark.parametrize("k", [1, 5, VOCAB, VOCAB + 7])
def test_top_k_filter_matches_hf(k):
    assert_keeps_like_hf(top_k_filter(LOGITS, k), hf([TopKLogitsWarper(k)], LOGITS))


@pytest.mark.parametrize("p", [0.05, 0.3, 0.75, 0.95, 1.0])
def test_top_p_filter_matches_hf(p):
    assert_keeps_like_hf(top_p_filter(LOGITS, p), hf([TopPLogitsWarper(p)], LOGITS))


def test_top_p_after_top_k_matches_hf():
    expected = hf([TopKLogitsWarper(6), TopPLogitsWarper(0.7)], LOGITS)
    assert_keeps_like_hf(top_p_filter(top_k_filter(LOGITS, 6), 0.7), expected)


@pytest.mark.parametrize(
    ("search_mode", "k", "warpers"),
    [
        ("topk", 5, [TopKLogitsWarper(5)]),
        ("topp", 0.8, [TopPLogitsWarper(0.8)]),
        ("topp", [0.8, 8], [TopKLogitsWarper(8), TopPLogitsWarper(0.8)]),
    ],
)
def test_draws_follow_the_distribution_hf_warpers_leave(search_mode, k, warpers):
    probs = torch.softmax(torch.from_numpy(hf(warpers, ROW[None])[0]), -1).numpy().astype("float64")
    kept = probs > 0
    tokens = to_numpy(next_token(np.tile(ROW, (DRAWS, 1)), search_mode, k, seed=SEED))
    assert np.isin(tokens, np.flatnonzero(kept)).all()
    observed = np.bincount(tokens, minlength=VOCAB)[kept]
    expected = DRAWS * probs[kept] / probs[kept].sum()
    assert expected.min() >= 5, "too few draws for a chi-square test"
    statistic = ((observed - expected) ** 2 / expected).sum()
    assert statistic < chi_square_critical(kept.sum() - 1), (observed, expected.round(1))


def test_same_seed_same_tokens_other_seed_or_step_other_tokens():
    logits = np.zeros((200, VOCAB), "float32")

    def draw(seed):
        return to_numpy(sample(logits, seed))

    np.testing.assert_array_equal(draw(SEED), draw(SEED))
    np.testing.assert_array_equal(draw(step_seed(SEED, 3)), draw(step_seed(SEED, 3)))
    next_word = SEED + np.array([1, 0], "int32")
    others = [next_word, SEED[::-1], step_seed(SEED, 0), step_seed(SEED, 1), step_seed(next_word, 0)]
    draws = [draw(SEED)] + [draw(seed) for seed in others]
    for i in range(len(draws)):
        for j in range(i):
            assert (draws[i] != draws[j]).any(), (i, j)


def lowbias32(x):
    x = np.uint32(x)
    with np.errstate(over="ignore"):
        x ^= x >> np.uint32(16)
        x *= np.uint32(0x7FEB352D)
        x ^= x >> np.uint32(15)
        x *= np.uint32(0x846CA68B)
        x ^= x >> np.uint32(16)
    return x


@pytest.mark.parametrize("step", [0, 1, 77, 2**31 - 1, -5])
def test_step_seed_is_the_same_hash_on_every_backend(step):
    seed = np.array([3, -2_000_000_000], dtype="int32")
    with np.errstate(over="ignore"):
        second = (seed[1].view(np.uint32) + lowbias32(np.int32(step).view(np.uint32) + np.uint32(1))).view(np.int32)
    out = step_seed(seed, step)
    assert keras.backend.standardize_dtype(out.dtype) == "int32"
    np.testing.assert_array_equal(to_numpy(out), [seed[0], second])


def test_sampling_takes_the_seed_as_an_argument_and_compiles_once():
    """On jax and tensorflow one trace serves every step's seed; torch runs eagerly (a call each)."""
    traces = []

    def step(logits, seed):
        traces.append(1)
        return next_token(logits, "topp", [0.9, 8], seed=seed)

    fn = compiled(step)
    logits = np.tile(ROW, (64, 1))
    draws = [to_numpy(fn(logits, step_seed(SEED, i))) for i in range(3)]
    assert len(traces) == (3 if keras.backend.backend() == "torch" else 1)
    assert (draws[0] != draws[1]).any()
    assert (draws[1] != draws[2]).any()
    np.testing.assert_array_equal(draws[1], to_numpy(next_token(logits, "topp", [0.9, 8], seed=step_seed(SEED, 1))))


def test_each_loop_step_draws_new_noise():
    # bert4keras3 on jax reused one noise for every step of its while_loop: each row sampled the same rank.
    steps, batch = 6, 64

    def decode(logits, seed):
        def body(i, tokens):
            token = next_token(logits, "topk", VOCAB, seed=step_seed(seed, i))
            return i + 1, ops.slice_update(tokens, [i, 0], token[None])

        tokens = ops.zeros((steps, batch), "int32")
        return ops.while_loop(lambda i, tokens: i < steps, body, (0, tokens))[1]

    tokens = to_numpy(compiled(decode)(np.zeros((batch, VOCAB), "float32"), SEED))
    for i in range(1, steps):
        assert (tokens[i] != tokens[i - 1]).any(), i


def test_check_sampling_returns_top_k_and_top_p():
    assert check_sampling("greedy", None) == (None, None)
    assert check_sampling("topk", 40) == (40, None)
    assert check_sampling("topp", 0.9) == (None, 0.9)
    assert check_sampling("topp", [0.9, 40]) == (40, 0.9)
    assert check_sampling("topp", (1, 40)) == (40, 1.0)


@pytest.mark.parametrize(
    ("search_mode", "k", "message"),
    [
        ("topk", 0, "int > 0"),
        ("topk", 2.0, "int > 0"),
        ("topk", True, "int > 0"),
        ("topk", None, "int > 0"),
        ("topp", 0.0, r"\(0, 1\]"),
        ("topp", 1.5, r"\(0, 1\]"),
        ("topp", "0.9", r"\(0, 1\]"),
        ("topp", [0.9], r"\[p, topk\]"),
        ("topp", [0.9, 0], r"\[p, topk\]"),
        ("topp", [0.9, 2.5], r"\[p, topk\]"),
        ("topp", [1.2, 5], r"\[p, topk\]"),
        ("topp", [0.9, 5, 1], r"\[p, topk\]"),
        ("beam", 3, "Unknown search_mode"),
        (None, 3, "Unknown search_mode"),
    ],
)
def test_invalid_search_settings_are_refused(search_mode, k, message):
    with pytest.raises(ValueError, match=message):
        check_sampling(search_mode, k)
    with pytest.raises(ValueError, match=message):
        next_token(LOGITS, search_mode, k, seed=SEED)


def test_invalid_filter_settings_and_seeds_are_refused():
    with pytest.raises(ValueError, match="int > 0"):
        top_k_filter(LOGITS, 0)
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        top_p_filter(LOGITS, 0)
    with pytest.raises(ValueError, match="needs a seed"):
        next_token(LOGITS, "topk", 5)
    with pytest.raises(ValueError, match=r"shape \(3,\)"):
        sample(LOGITS, np.array([1, 2, 3], "int32"))
