"""ELECTRA loaded from Hugging Face directories and from a Google-named pretraining TF checkpoint
(discriminator and generator in one file) gives Hugging Face's `ElectraForPreTraining`
(discriminator) and `ElectraForMaskedLM` (generator) outputs on a padded batch, within 1e-5
relative / 1e-4 absolute (fp32). Weights are drawn at std 0.2."""

import copy
import json

import numpy as np
import pytest
import torch
import transformers
from family_checks import (
    TINY_BERT,
    assert_matches,
    google_arrays,
    padded_batch,
    predict,
    run_decoding_protocol_test,
    run_family_parity_test,
    save_hf_model,
    write_tf_checkpoint,
)

from b4k3_models import ELECTRA, CheckpointMismatchError, build_transformer_model

# Embeddings of 24 projected to the discriminator's 32 and to the smaller generator's 16.
TINY_DISCRIMINATOR = {**TINY_BERT, "embedding_size": 24, "initializer_range": 0.2}
TINY_GENERATOR = {**TINY_DISCRIMINATOR, "hidden_size": 16, "intermediate_size": 20}
# Hugging Face's ELECTRA names -> Google's, for the discriminator and for the generator (whose
# embedding tables are the discriminator's, stored once).
LAYER_RENAME = (r"encoder\.layer\.(\d+)", r"encoder.layer_\1")
DISCRIMINATOR_RENAMES = [LAYER_RENAME, (r"dense_prediction", "dense_1")]
GENERATOR_RENAMES = [
    LAYER_RENAME,
    (r"^electra\.", "generator."),
    (r"^generator_lm_head\.bias", "generator_predictions.output_bias"),
]
GOOGLE_CONFIG_KEYS = ("vocab_size", "embedding_size", "hidden_size", "num_hidden_layers", "num_attention_heads")
GOOGLE_CONFIG_KEYS += ("intermediate_size", "hidden_act", "max_position_embeddings", "type_vocab_size")


@pytest.fixture(scope="module")
def discriminator(tmp_path_factory):
    directory = tmp_path_factory.mktemp("electra_discriminator")
    config = transformers.ElectraConfig
    return save_hf_model(transformers.ElectraForPreTraining, config, TINY_DISCRIMINATOR, directory, perturb=0.2)


@pytest.fixture(scope="module")
def generator(tmp_path_factory):
    directory = tmp_path_factory.mktemp("electra_generator")
    config = transformers.ElectraConfig
    return save_hf_model(transformers.ElectraForMaskedLM, config, TINY_GENERATOR, directory, seed=1, perturb=0.2)


@pytest.fixture(scope="module")
def batch():
    ids, mask = padded_batch(TINY_BERT["vocab_size"])
    segments = np.zeros_like(ids)
    segments[:, 5:] = 1
    return ids, mask, segments


def hf_outputs(model, ids, mask, segments):
    with torch.no_grad():
        return model(
            input_ids=torch.tensor(ids, dtype=torch.long),
            attention_mask=torch.tensor(mask, dtype=torch.long),
            token_type_ids=torch.tensor(segments, dtype=torch.long),
            output_hidden_states=True,
        )


def test_discriminator_logits_probabilities_and_sequence_output(discriminator, batch):
    directory, reference = discriminator
    ids, mask, segments = batch
    expected = hf_outputs(reference, ids, mask, segments)
    logits = expected.logits.numpy()[..., None]

    transformer = run_family_parity_test(directory, [ids, segments], logits, mask, with_discriminator="linear")
    assert type(transformer) is ELECTRA  # from the config's model_type
    model = build_transformer_model(checkpoint_path=directory, with_discriminator=True)
    assert_matches(predict(model, [ids, segments]), 1 / (1 + np.exp(-logits)), mask)

    encoder = build_transformer_model(checkpoint_path=directory)  # the head's keys are known, not unused
    assert_matches(predict(encoder, [ids, segments]), expected.hidden_states[-1].numpy(), mask)


def test_generator_mlm_logits(generator, batch):
    directory, reference = generator
    ids, mask, segments = batch
    expected = hf_outputs(reference, ids, mask, segments).logits.numpy()

    run_family_parity_test(directory, [ids, segments], expected, mask, with_mlm="linear")


def test_electra_model_without_prefix_or_heads(tmp_path, batch):
    directory, reference = save_hf_model(
        transformers.ElectraModel, transformers.ElectraConfig, TINY_DISCRIMINATOR, tmp_path, seed=2, perturb=0.2
    )
    ids, mask, segments = batch
    expected = hf_outputs(reference, ids, mask, segments).last_hidden_state.numpy()

    run_family_parity_test(directory, [ids, segments], expected, mask)


@pytest.fixture(scope="module")
def google_pretraining(discriminator, generator, tmp_path_factory):
    """`model.ckpt` as Google's ELECTRA pretraining writes it: the discriminator under `electra/`,
    the generator under `generator/`, one set of embedding tables (the generator's reference is
    given the discriminator's), the heads, training state; with each model's config."""
    _, discriminator = discriminator
    generator = copy.deepcopy(generator[1])
    generator.electra.embeddings.load_state_dict(discriminator.electra.embeddings.state_dict())
    arrays = google_arrays(discriminator.state_dict(), DISCRIMINATOR_RENAMES)
    shared = ["electra.embeddings.", "generator_lm_head.weight"]  # stored once / tied
    arrays.update(google_arrays(generator.state_dict(), GENERATOR_RENAMES, skip=shared))
    arrays["global_step"] = np.array(1000, dtype="int64")
    directory = tmp_path_factory.mktemp("google_electra")
    write_tf_checkpoint(arrays, directory / "model.ckpt")
    for name, config in (("discriminator", TINY_DISCRIMINATOR), ("generator", TINY_GENERATOR)):
        (directory / f"{name}_config.json").write_text(json.dumps({key: config[key] for key in GOOGLE_CONFIG_KEYS}))
    return directory, discriminator, generator


def test_google_pretraining_checkpoint_gives_either_model(google_pretraining, batch):
    directory, discriminator, generator = google_pretraining
    ids, mask, segments = batch

    model = build_transformer_model(
        directory / "discriminator_config.json", directory / "model.ckpt", model="electra", with_discriminator="linear"
    )
    expected = hf_outputs(discriminator, ids, mask, segments).logits.numpy()[..., None]
    assert_matches(predict(model, [ids, segments]), expected, mask)

    model = build_transformer_model(
        directory / "generator_config.json", directory / "model.ckpt", model="electra", with_mlm="linear"
    )
    assert_matches(predict(model, [ids, segments]), hf_outputs(generator, ids, mask, segments).logits.numpy(), mask)


def test_a_bert_checkpoint_is_not_read_as_electra(bert_pretraining):
    directory, _ = bert_pretraining
    with pytest.raises(CheckpointMismatchError) as error:
        build_transformer_model(checkpoint_path=directory, model="electra")
    # No `electra.` key: ELECTRA's map asks for an unprefixed ElectraModel's keys, BERT's go unused.
    assert "<- encoder.layer.0.attention.self.query.weight: not in the checkpoint" in str(error.value)
    assert "bert.encoder.layer.0.attention.self.query.weight" in str(error.value)  # unused


def test_pooler_and_two_heads_are_refused(discriminator):
    directory, _ = discriminator
    with pytest.raises(TypeError, match=r"ELECTRA has no pooler, so no \['with_pool'\]"):
        build_transformer_model(checkpoint_path=directory, with_pool=True)
    with pytest.raises(TypeError, match="two different models"):
        build_transformer_model(checkpoint_path=directory, with_discriminator=True, application="lm")


def test_generator_as_a_language_model_decodes_with_a_kv_cache(generator):
    """application='lm': the causal generator (its MLM head the LM head) decodes with a KV cache,
    giving what its full pass gives."""
    directory, _ = generator
    lm = build_transformer_model(
        checkpoint_path=directory, application="lm", with_mlm="linear", return_keras_model=False
    )
    tokens = np.random.default_rng(4).integers(1, TINY_BERT["vocab_size"], size=(2, 9)).astype("int32")
    full_pass = lambda sequences: predict(lm.model, [sequences, np.zeros_like(sequences)])  # noqa: E731
    run_decoding_protocol_test(lm, tokens, full_pass=full_pass, lowest_token=1)
