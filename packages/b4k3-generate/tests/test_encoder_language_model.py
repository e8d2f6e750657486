"""An encoder built as a language model generates through the one loop: BERT with
`application='lm'` (causal mask, tied MLM head) continues prompts with the KV cache, its learned
positions read from the cache index.

Reference: Hugging Face's `BertLMHeadModel` (`is_decoder=True`: the same causal BERT with the same
MLM head) saved from a tiny random config; its greedy `generate` tokens on ragged prompts. The
checkpoint's config is rewritten without `is_decoder` (b4k3 takes the causal mask from
`application='lm'`). A plain encoder is refused with an error that says what to build."""

import json

import pytest
import transformers
from family_checks import TINY_BERT, hf_greedy, save_hf_model

from b4k3_generate import generate
from b4k3_models import build_transformer_model

PROMPTS = [[5, 17, 30, 42, 8, 3, 11], [9, 4], [23, 2, 61, 7]]
NEW_TOKENS = 6


@pytest.fixture(scope="module")
def bert_decoder(tmp_path_factory):
    directory = tmp_path_factory.mktemp("bert_lm_head")
    config = {**TINY_BERT, "is_decoder": True}
    directory, reference = save_hf_model(transformers.BertLMHeadModel, transformers.BertConfig, config, directory)
    config_path = directory / "config.json"
    config_path.write_text(json.dumps({**json.loads(config_path.read_text()), "is_decoder": False}))
    return directory, reference


def test_bert_language_model_greedy_tokens_equal_hf(bert_decoder):
    directory, reference = bert_decoder
    transformer = build_transformer_model(
        checkpoint_path=directory, application="lm", with_mlm="linear", return_keras_model=False
    )
    expected = [hf_greedy(reference, prompt, NEW_TOKENS) for prompt in PROMPTS]
    assert generate(transformer, PROMPTS, NEW_TOKENS) == expected


def test_an_encoder_is_refused_with_what_to_build(bert_decoder):
    directory, _ = bert_decoder
    encoder = build_transformer_model(checkpoint_path=directory, with_mlm="linear", return_keras_model=False)
    with pytest.raises(TypeError, match="application='lm'"):
        generate(encoder, PROMPTS, NEW_TOKENS)
