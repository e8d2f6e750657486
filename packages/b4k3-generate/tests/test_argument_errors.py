"""What generate, stream and build_cache_model refuse, each with an error saying what to pass:
the Keras model instead of the transformer, a family that cannot decode, a flat list of ids,
text, ids or an end_token outside the vocabulary, and (for learned positions) a generation
longer than the model's positions."""

import json

import numpy as np
import pytest
from family_checks import TINY_BERT, decoder_and_reference

from b4k3_generate import build_cache_model, generate, stream
from b4k3_generate.arguments import check_length
from b4k3_models import build_transformer_model

VOCAB = 64  # TINY_LLAMA's


@pytest.fixture(scope="module")
def llama(tmp_path_factory):
    return decoder_and_reference("llama_gqa", tmp_path_factory)[0]


def every_entry(transformer, prompts, **kwargs):
    """generate and stream (its first step) on the same prompts."""
    yield lambda: generate(transformer, prompts, 2, **kwargs)
    yield lambda: next(iter(stream(transformer, prompts, 2, **kwargs)))


def test_the_keras_model_is_refused_naming_return_keras_model(llama):
    for call in every_entry(llama.model, [[1, 2]]):
        with pytest.raises(TypeError, match=r"return_keras_model=False"):
            call()
    with pytest.raises(TypeError, match=r"return_keras_model=False"):
        build_cache_model(llama.model, [8], end_token=3)


def test_a_family_that_cannot_decode_is_refused_naming_it(tmp_path):
    config_path = tmp_path / "config.json"
    config_path.write_text(json.dumps(TINY_BERT))
    bert = build_transformer_model(config_path=config_path, return_keras_model=False)
    with pytest.raises(TypeError, match=r"BERT cannot decode"):
        generate(bert, [[1, 2]], 2)
    with pytest.raises(TypeError, match=r"BERT cannot decode"):
        build_cache_model(bert, [8], end_token=3)


def test_a_flat_list_of_ids_is_refused_saying_to_wrap_it(llama):
    for call in every_entry(llama, [5, 6, 7]):
        with pytest.raises(TypeError, match=r"flat list of ids \(\[5, 6, 7\]\); pass a list of prompts: \[ids\]"):
            call()


@pytest.mark.parametrize("prompts", ["Hello there", ["Hello there"], [[1, 2], "Hello"]])
def test_text_is_refused_saying_to_encode_it(llama, prompts):
    for call in every_entry(llama, prompts):
        with pytest.raises(TypeError, match=r"text.*encode"):
            call()


def test_an_empty_prompt_is_a_value_error_naming_its_row(llama):
    with pytest.raises(ValueError, match=r"prompts\[1\] is empty"):
        generate(llama, [[1], []], 2)


@pytest.mark.parametrize("bad", [VOCAB, -1])
def test_token_ids_and_end_token_outside_the_vocabulary_are_refused(llama, bad):
    for call in every_entry(llama, [[1, bad]]):
        with pytest.raises(ValueError, match=rf"token ids must be in 0\.\.63 \(the vocabulary\), got \[{bad}\]"):
            call()
    with pytest.raises(ValueError, match=rf"end_token must be in 0\.\.63 \(the vocabulary\), got \[{VOCAB}\]"):
        generate(llama, [[1, 2]], 2, end_token=[3, VOCAB])
    with pytest.raises(ValueError, match=r"token ids must be in 0\.\.63"):
        build_cache_model(llama, [8], end_token=3).predict(np.array([[1, bad]]))
    with pytest.raises(ValueError, match=r"end_token must be in 0\.\.63"):
        build_cache_model(llama, [8], end_token=VOCAB)


def test_numpy_prompts_are_accepted(llama):
    prompts = np.array([[1, 2, 3], [4, 5, 6]])
    assert generate(llama, prompts, 2) == generate(llama, prompts.tolist(), 2)


def test_a_generation_past_learned_positions_is_refused(tmp_path):
    config_path = tmp_path / "config.json"
    config_path.write_text(json.dumps(TINY_BERT))
    bert = build_transformer_model(config_path=config_path, return_keras_model=False)
    check_length(bert, 64)  # fits its 64 positions
    with pytest.raises(ValueError, match=r"need 65 positions; BERT has 64 \(learned positions\)"):
        check_length(bert, 65)
