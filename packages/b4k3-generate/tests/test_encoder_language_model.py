"""Encoders built as language models generate through the one loop with a KV cache:
`application='lm'` (causal mask) and `application='unilm'` (UniLM: the prompt is the source,
segment 0, seen both ways; every generated token is segment 1 and sees the source and the target
up to itself), on BERT, RoFormer, RoFormerV2 and NEZHA.

References: a plain loop that re-runs the full (uncached) Keras model on the growing sequence
and takes the argmax at its last position, for every case; Hugging Face's greedy `generate` where
one exists: `BertLMHeadModel` and `RoFormerForCausalLM` (`is_decoder=True`: the same causal
encoder with the same MLM head), saved from tiny random configs whose config is rewritten
without `is_decoder` (b4k3 takes the causal mask from `application='lm'`). RoFormerV2's weights
are the committed golden fixture of JunnYu's port (see b4k3-models' tests), NEZHA's those of
transformers 4's (the same). A plain encoder is refused with an error that says what to build."""

import json
import pathlib

import keras
import numpy as np
import pytest
import transformers
from family_checks import (
    TINY_BERT,
    TINY_ROFORMER,
    hf_greedy,
    nezha_reference,
    predict,
    save_hf_model,
    save_nezha_directory,
)

from b4k3_generate import build_cache_model, generate
from b4k3_generate.loop import DecodeLoop
from b4k3_models import build_transformer_model

PROMPTS = [[5, 17, 30, 42, 8, 3, 11], [9, 4], [23, 2, 61, 7]]
NEW_TOKENS = 6
ROFORMER_V2 = pathlib.Path(__file__).parents[2] / "b4k3-models" / "tests" / "fixtures" / "roformer_v2"
TINY_BERT_LARGE_WEIGHTS = {**TINY_BERT, "initializer_range": 0.2}


def save_decoder(model_class, config_class, config, directory):
    """A Hugging Face causal encoder saved with `is_decoder` off in its config.json."""
    directory, reference = save_hf_model(model_class, config_class, {**config, "is_decoder": True}, directory)
    config_path = directory / "config.json"
    config_path.write_text(json.dumps({**json.loads(config_path.read_text()), "is_decoder": False}))
    return directory, reference


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """Family name -> (checkpoint directory, Hugging Face causal reference or None)."""
    return {
        "bert": save_decoder(
            transformers.BertLMHeadModel,
            transformers.BertConfig,
            TINY_BERT_LARGE_WEIGHTS,
            tmp_path_factory.mktemp("bert_lm_head"),
        ),
        "roformer": save_decoder(
            transformers.RoFormerForCausalLM,
            transformers.RoFormerConfig,
            TINY_ROFORMER,
            tmp_path_factory.mktemp("roformer_causal"),
        ),
        "roformer_v2": (ROFORMER_V2, None),
        "nezha": (save_nezha_directory(nezha_reference(), tmp_path_factory.mktemp("nezha")), None),
    }


@pytest.fixture(scope="module")
def decoders(checkpoints):
    """`decoder(family, application)`: the b4k3 model (MLM head giving logits), built once."""
    built = {}

    def decoder(family, application):
        if (family, application) not in built:
            directory, _ = checkpoints[family]
            built[family, application] = build_transformer_model(
                checkpoint_path=directory, application=application, with_mlm="linear", return_keras_model=False
            )
        return built[family, application]

    return decoder


def uncached_greedy(transformer, prompt, new_tokens, source_length=None, end_token=None):
    """The reference loop: the full model on the whole sequence at every step, argmax at its end.
    A UniLM model's tokens from `source_length` on (default: the prompt's length) are segment 1;
    a language model's are all segment 0."""
    tokens = list(prompt)
    source_length = len(prompt) if source_length is None else source_length
    unilm = transformer.needs_source_lengths
    for _ in range(new_tokens):
        ids = np.array([tokens], dtype="int32")
        segments = (np.arange(len(tokens)) >= (source_length if unilm else len(tokens))).astype("int32")[None]
        token = int(predict(transformer.model, [ids, segments])[0, -1].argmax())
        tokens.append(token)
        if token == end_token:
            break
    return tokens[len(prompt) :]


CASES = [("bert", "lm"), ("bert", "unilm"), ("roformer", "lm"), ("roformer", "unilm"), ("roformer_v2", "lm")]
CASES += [("nezha", "lm"), ("nezha", "unilm")]


@pytest.mark.parametrize(("family", "application"), CASES)
def test_greedy_tokens_equal_an_uncached_loop(decoders, family, application):
    transformer = decoders(family, application)
    expected = [uncached_greedy(transformer, prompt, NEW_TOKENS) for prompt in PROMPTS]
    assert generate(transformer, PROMPTS, NEW_TOKENS) == expected

    # bert4keras3's form: prompts right-padded with 0 (UniLM: with segment ids, 1 after the source).
    max_length = max(map(len, PROMPTS)) + NEW_TOKENS
    tokens = np.zeros((len(PROMPTS), max(map(len, PROMPTS))), dtype="int32")
    segments = np.ones_like(tokens)
    for row, prompt in enumerate(PROMPTS):
        tokens[row, : len(prompt)] = prompt
        segments[row, : len(prompt)] = 0
    generator = build_cache_model(transformer, [max_length, max_length], end_token=None)
    output = generator.predict([tokens, segments] if application == "unilm" else tokens)
    for row, prompt in enumerate(PROMPTS):
        assert output[row, len(prompt) :].tolist()[:NEW_TOKENS] == expected[row]


@pytest.mark.parametrize("family", ["bert", "roformer"])
def test_language_model_greedy_tokens_equal_hf(checkpoints, decoders, family):
    _, reference = checkpoints[family]
    expected = [hf_greedy(reference, prompt, NEW_TOKENS) for prompt in PROMPTS]
    assert generate(decoders(family, "lm"), PROMPTS, NEW_TOKENS) == expected


@pytest.mark.parametrize("family", ["bert", "roformer"])
def test_unilm_rows_stop_at_their_own_end_token(decoders, family):
    transformer = decoders(family, "unilm")
    free = [uncached_greedy(transformer, prompt, NEW_TOKENS) for prompt in PROMPTS]
    end_token = free[0][2]  # row 0 ends at its third token; the others where they meet it, if ever
    expected = [uncached_greedy(transformer, prompt, NEW_TOKENS, end_token=end_token) for prompt in PROMPTS]
    assert generate(transformer, PROMPTS, NEW_TOKENS, end_token=end_token) == expected
    assert len(expected[0]) == 3


def test_unilm_source_shorter_than_the_prompt_starts_the_target_inside_it(decoders):
    """Segment ids marking part of the prompt as target (a forced start of the answer): the source
    ends at each row's first segment id 1, and the forced tokens are causal target tokens."""
    transformer = decoders("roformer", "unilm")
    prompts, sources = [[5, 17, 30, 42, 8], [9, 4, 23]], [3, 1]
    tokens = np.array([prompts[0], [*prompts[1], 0, 0]], dtype="int32")
    segments = (np.arange(tokens.shape[1])[None] >= np.array(sources)[:, None]).astype("int32")
    output = build_cache_model(transformer, [12, 12], end_token=None).predict([tokens, segments])
    for row, (prompt, source) in enumerate(zip(prompts, sources, strict=True)):
        expected = uncached_greedy(transformer, prompt, 12 - len(prompt), source_length=source)
        assert output[row, len(prompt) :].tolist() == expected


def test_unilm_second_call_of_the_same_shape_reuses_the_compiled_loop(decoders, monkeypatch):
    """The loop's `prefill` runs as Python once on jax and tensorflow (traced once: other prompts and
    sources of the same shapes run the compiled loop), once per call on torch (eager)."""
    transformer = decoders("bert", "unilm")
    runs = []
    prefill = DecodeLoop.prefill

    def counting_prefill(self, *args):
        runs.append(args)
        return prefill(self, *args)

    monkeypatch.setattr(DecodeLoop, "prefill", counting_prefill)
    settings = {"search_mode": "topk", "k": 3, "temperature": 1.5}  # used by no other test
    generate(transformer, PROMPTS, NEW_TOKENS, seed=1, **settings)
    generate(transformer, [[3, 3, 3], [1, 2, 60, 61, 62, 63], [7]], NEW_TOKENS, seed=2, **settings)
    assert len(runs) == (2 if keras.backend.backend() == "torch" else 1)


def test_unilm_needs_segment_ids_to_know_the_source(decoders):
    generator = build_cache_model(decoders("bert", "unilm"), [12, 12], end_token=None)
    with pytest.raises(ValueError, match=r"\[tokens, segments\]"):
        generator.predict(np.array([[5, 6, 7]]))
    with pytest.raises(ValueError, match="0 \\(source\\) or 1"):
        generator.predict([np.array([[5, 6, 7]]), np.array([[0, 2, 1]])])


def test_unilm_with_segment_attention_is_refused(checkpoints):
    directory, _ = checkpoints["bert"]
    transformer = build_transformer_model(
        checkpoint_path=directory, application="unilm", segment_attention=True, return_keras_model=False
    )
    with pytest.raises(TypeError, match="segment_attention"):
        generate(transformer, PROMPTS, NEW_TOKENS)


def test_an_encoder_is_refused_with_what_to_build(checkpoints):
    directory, _ = checkpoints["bert"]
    encoder = build_transformer_model(checkpoint_path=directory, with_mlm="linear", return_keras_model=False)
    with pytest.raises(TypeError, match="application='lm'") as caught:
        generate(encoder, PROMPTS, NEW_TOKENS)
    assert "application='unilm'" in str(caught.value)
