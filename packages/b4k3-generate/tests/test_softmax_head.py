"""Sampling from a decoder built with a softmax head (`with_lm=True`, the default): the draws follow
the model's real next-token probabilities (chi-square test at significance 0.001 on a fixed seed),
not the near-uniform distribution of probabilities read as logits."""

import numpy as np
import pytest
from family_checks import TINY_BERT_ARGUMENTS, chi_square_critical, save_llm

from b4k3_generate import build_cache_model, generate, stream
from b4k3_generate.heads import head_activation
from b4k3_models import build_transformer_model

PROMPT = [5, 9, 2, 33]
ROWS = 1000


@pytest.fixture(scope="module")
def softmax_decoder(tmp_path_factory):
    directory, _ = save_llm("llama_gqa", tmp_path_factory.mktemp("llama"))
    transformer = build_transformer_model(checkpoint_path=directory, return_keras_model=False)
    assert transformer.with_lm is True
    probabilities = transformer.model.predict(np.array([PROMPT]), verbose=0)[0, -1].astype("float64")
    return transformer, probabilities / probabilities.sum()


def assert_follows(draws, probabilities):
    counts = np.bincount(draws, minlength=len(probabilities))
    expected = probabilities * len(draws)
    # Tokens expected fewer than 5 times are pooled into one category, as chi-square requires.
    rare = expected < 5
    observed = np.append(counts[~rare], counts[rare].sum())
    expected = np.append(expected[~rare], expected[rare].sum())
    statistic = ((observed - expected) ** 2 / np.maximum(expected, 1e-12)).sum()
    assert statistic < chi_square_critical(len(observed) - 1), (statistic, counts, expected.round(1))


def top(probabilities, k):
    kept = np.zeros_like(probabilities)
    best = np.argsort(-probabilities)[:k]
    kept[best] = probabilities[best]
    return kept / kept.sum()


@pytest.mark.parametrize("k", [64, 5])
def test_generate_samples_the_softmax_heads_probabilities(softmax_decoder, k):
    transformer, probabilities = softmax_decoder
    assert probabilities.max() > 3 / len(probabilities), "the tiny model's distribution should not be flat"
    draws = generate(transformer, [PROMPT] * ROWS, 1, search_mode="topk", k=k, seed=3)
    assert_follows(np.array(draws)[:, 0], top(probabilities, k))


def test_temperature_sharpens_the_real_distribution(softmax_decoder):
    transformer, probabilities = softmax_decoder
    sharpened = probabilities**2 / (probabilities**2).sum()  # temperature 0.5
    draws = generate(transformer, [PROMPT] * ROWS, 1, search_mode="topk", k=64, temperature=0.5, seed=4)
    assert_follows(np.array(draws)[:, 0], sharpened)


def test_stream_and_build_cache_model_sample_the_real_distribution(softmax_decoder):
    transformer, probabilities = softmax_decoder
    streamed = next(iter(stream(transformer, [PROMPT] * ROWS, 1, search_mode="topp", k=1.0, seed=5)))
    assert_follows(np.array(streamed), probabilities)
    generator = build_cache_model(transformer, [len(PROMPT) + 1], end_token=None, search_mode="topk", k=64)
    predicted = generator.predict(np.array([PROMPT] * ROWS), seed=6)
    assert_follows(predicted[:, len(PROMPT)], probabilities)


def test_a_decoder_without_lm_head_is_refused_naming_with_lm(tmp_path):
    directory, _ = save_llm("llama_gqa", tmp_path)
    transformer = build_transformer_model(checkpoint_path=directory, with_lm=False, return_keras_model=False)
    with pytest.raises(ValueError, match=r"with_lm=False.*with_lm='linear'"):
        generate(transformer, [PROMPT], 2)


def test_sampling_a_sigmoid_head_is_refused_naming_with_lm(tmp_path):
    directory, _ = save_llm("llama_gqa", tmp_path)
    transformer = build_transformer_model(checkpoint_path=directory, with_lm="sigmoid", return_keras_model=False)
    assert len(generate(transformer, [PROMPT], 2)[0]) == 2  # greedy needs only the ranking
    with pytest.raises(ValueError, match=r"'sigmoid'.*with_lm='linear'"):
        generate(transformer, [PROMPT], 2, search_mode="topk", k=5)


@pytest.mark.parametrize("name", ["gpt2", "bert_lm"])
def test_every_family_names_its_softmax_head(tmp_path_factory, name):
    """GPT's `final_activation` and a BERT language model's `with_mlm` are their LM heads: both
    default to softmax, which the loop samples through the log (the same chi-square test)."""
    if name == "gpt2":
        directory, _ = save_llm("gpt2", tmp_path_factory.mktemp(name))
        transformer = build_transformer_model(checkpoint_path=directory, return_keras_model=False)
    else:
        transformer = build_transformer_model(
            **TINY_BERT_ARGUMENTS, application="lm", segment_vocab_size=0, return_keras_model=False
        )
    assert head_activation(transformer) == "softmax"
    probabilities = transformer.model.predict(np.array([PROMPT]), verbose=0)[0, -1].astype("float64")
    draws = generate(transformer, [PROMPT] * ROWS, 1, search_mode="topk", k=5, seed=3)
    assert_follows(np.array([row[0] for row in draws]), top(probabilities / probabilities.sum(), 5))
