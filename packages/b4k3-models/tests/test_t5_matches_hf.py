"""T5 (t5.1.0, t5.1.1, mT5) loaded from Hugging Face directories gives Hugging Face's encoder
outputs and logits.

Reference: the `T5ForConditionalGeneration` / `MT5ForConditionalGeneration` / `T5EncoderModel`
that saved the checkpoint (transformers 5, eager attention, float32), weights re-drawn large
(`t5_checks`), on a batch of encoder rows of lengths 11, 7 and 3 right-padded with the pad id 0
(masked), and decoder rows starting from the start token 0. Encoder outputs are compared at the
real tokens, logits everywhere, within 1e-5 relative / 1e-4 absolute.
"""

import keras
import numpy as np
import pytest
from family_checks import assert_matches, dtype_policy, predict
from t5_checks import decoder_batch, encoder_batch, hf_t5_outputs, t5_saver

from b4k3_models import T5, CheckpointMismatchError, T5_Decoder, T5_Encoder, build_transformer_model
from b4k3_models.t5 import hf_logit_scale


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    return t5_saver(tmp_path_factory)


def load(directory, **options):
    """The b4k3 model of a Hugging Face directory (a decoder with a linear head)."""
    return build_transformer_model(checkpoint_path=directory, return_keras_model=False, **options)


@pytest.mark.parametrize("name", ["t5.1.0", "t5.1.1", "mt5", "umt5", "deeper_decoder"])
def test_encoder_output_and_logits_match_hf_with_padded_encoder_rows(saved, name):
    directory, reference = saved(name)
    encoder_ids, mask = encoder_batch()
    decoder_ids = decoder_batch()
    expected_encoder, expected_logits = hf_t5_outputs(reference, encoder_ids, mask, decoder_ids)
    t5 = load(directory, with_lm="linear")
    assert type(t5) is T5
    assert_matches(predict(t5.model, [encoder_ids, decoder_ids]), expected_logits)
    assert_matches(predict(t5.encoder, encoder_ids), expected_encoder, mask)


def test_t5_encoder_model_directory_builds_the_encoder(saved):
    directory, reference = saved("encoder")
    encoder_ids, mask = encoder_batch()
    encoder = load(directory)
    assert type(encoder) is T5_Encoder
    assert_matches(predict(encoder.model, encoder_ids), hf_t5_outputs(reference, encoder_ids, mask)[0], mask)


def test_encoder_and_decoder_models_of_the_whole_t5(saved):
    """`.encoder` / `.decoder` (return_keras_model=False): the decoder model takes the encoder's
    output and the decoder tokens (the longest row: its context has no padding to mask)."""
    directory, reference = saved("mt5")
    encoder_ids, mask = encoder_batch()
    decoder_ids = decoder_batch()
    _, expected = hf_t5_outputs(reference, encoder_ids, mask, decoder_ids)
    t5 = load(directory, with_lm="linear")
    context = predict(t5.encoder, encoder_ids[:1])
    assert_matches(predict(t5.decoder, [context, decoder_ids[:1]]), expected[:1])
    assert [tensor.name for tensor in t5.decoder.inputs] == ["Input-Context", "Decoder-Input-Token"]


def test_whole_t5_checkpoint_loads_into_one_stack(saved):
    """A T5ForConditionalGeneration directory loads into T5_Encoder or T5_Decoder alone: the other
    stack's arrays are known, not reported."""
    directory, reference = saved("t5.1.1")
    encoder_ids, mask = encoder_batch()
    decoder_ids = decoder_batch()
    expected_encoder, expected_logits = hf_t5_outputs(reference, encoder_ids, mask, decoder_ids)
    encoder = load(directory, model="t5.1.1_encoder")
    assert type(encoder) is T5_Encoder
    assert_matches(predict(encoder.model, encoder_ids), expected_encoder, mask)
    decoder = load(directory, model="t5_decoder", with_lm="linear")
    assert type(decoder) is T5_Decoder
    context = predict(encoder.model, encoder_ids[:1])
    assert_matches(predict(decoder.model, [context, decoder_ids[:1]]), expected_logits[:1])


# name -> (version, logit scale, decoder depth)
EXPECTED_CONFIGS = {
    "t5.1.0": ("t5.1.0", True, 2),
    "t5.1.1": ("t5.1.1", False, 2),
    "mt5": ("mt5.1.1", False, 2),
    "umt5": ("mt5.1.1", True, 2),
    "deeper_decoder": ("t5.1.1", True, 3),
}


@pytest.mark.parametrize("name", sorted(EXPECTED_CONFIGS))
def test_hf_config_gives_version_scale_depths_and_buckets(saved, name):
    directory, _ = saved(name)
    t5 = load(directory)
    version, scale, decoder_layers = EXPECTED_CONFIGS[name]
    decoder = t5.decoder_transformer
    assert (t5.version, decoder.logit_scale, decoder.num_hidden_layers) == (version, scale, decoder_layers)
    assert (t5.relative_attention_num_buckets, t5.relative_attention_max_distance) == (16, 20)
    assert decoder.cross_position_bias is False
    assert t5.relative_bias_per_layer is (name == "umt5")


def test_the_mt5_reference_uses_its_own_head(saved):
    """The untied file's `lm_head.weight` is what Hugging Face reads (so the parity test above
    proves b4k3 reads it too), not the token embeddings."""
    _, reference = saved("mt5")
    assert not np.allclose(reference.lm_head.weight.detach().numpy(), reference.shared.weight.detach().numpy())


# (config, scaled): the rows of families-references §2.4.
SCALE_RULES = [
    ({"model_type": "t5", "tie_word_embeddings": True, "scale_decoder_outputs": True}, True),
    ({"model_type": "t5", "tie_word_embeddings": True, "scale_decoder_outputs": False}, False),
    ({"model_type": "mt5", "tie_word_embeddings": True, "transformers_version": "5.2.0"}, False),
    ({"model_type": "mt5", "tie_word_embeddings": True, "transformers_version": "4.57.6"}, True),
    ({"model_type": "mt5", "tie_word_embeddings": False, "transformers_version": "4.57.6"}, False),
    ({"model_type": "t5", "tie_word_embeddings": False, "transformers_version": "4.57.6"}, False),
    ({"model_type": "t5"}, True),
]


@pytest.mark.parametrize(("config", "scaled"), SCALE_RULES)
def test_logit_scale_follows_the_config_of_every_transformers_version(config, scaled):
    assert hf_logit_scale(config) is scaled


def test_bfloat16_t5_runs_without_nan_and_close_to_float32(saved):
    directory, _ = saved("t5.1.0")
    encoder_ids, _ = encoder_batch()
    decoder_ids = decoder_batch()
    expected = predict(load(directory, with_lm="linear").model, [encoder_ids, decoder_ids])
    with dtype_policy("mixed_bfloat16"):
        logits = predict(load(directory, with_lm="linear").model, [encoder_ids, decoder_ids])
    logits = np.asarray(keras.ops.convert_to_numpy(keras.ops.cast(logits, "float32")))
    assert np.isfinite(logits).all()
    assert np.corrcoef(logits.ravel(), expected.ravel())[0, 1] > 0.99


def test_unknown_version_is_refused():
    with pytest.raises(ValueError, match="version must be one of"):
        T5(
            vocab_size=10,
            hidden_size=8,
            num_hidden_layers=1,
            num_attention_heads=2,
            intermediate_size=8,
            version="t5.2",
        )


def test_feed_forward_projection_t5_lacks_is_refused(saved, tmp_path):
    directory, _ = saved("t5.1.1")
    config = (directory / "config.json").read_text().replace('"gated-gelu"', '"gated-gelu-fast"')
    (tmp_path / "config.json").write_text(config)
    with pytest.raises(ValueError, match="feed_forward_proj='gated-gelu-fast'"):
        build_transformer_model(config_path=tmp_path / "config.json")


def test_checkpoint_of_another_depth_names_the_missing_keys(saved):
    directory, _ = saved("t5.1.1")
    with pytest.raises(CheckpointMismatchError, match=r"encoder\.block\.2\.layer\.0\.SelfAttention\.q\.weight"):
        load(directory, num_hidden_layers=3)


@pytest.mark.parametrize("application", ["lm", "unilm"])
def test_language_model_applications_are_refused(saved, application):
    directory, _ = saved("t5.1.1")
    with pytest.raises(ValueError, match=f"application='{application}' does not apply to T5"):
        build_transformer_model(checkpoint_path=directory, application=application)
