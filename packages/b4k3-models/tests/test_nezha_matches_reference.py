"""NEZHA loaded through b4k3's checkpoint readers gives the outputs of transformers 4.57.6's
`NezhaForPreTraining` (sequence, pooled, MLM and NSP) on a padded batch, within 1e-5 relative /
1e-4 absolute (fp32).

transformers 5 dropped NEZHA, so the reference ran once, in an environment of its own:
`nezha_reference.npz` holds its config, its weights (std 0.2) under Hugging Face's names, the batch
and the outputs; `make_nezha_reference.py` beside this file wrote it (its docstring says how to
rerun it). The weights go through the real loading paths: written here as a Hugging Face directory
(config.json + model.safetensors) and as a TF checkpoint with Huawei's Google-style names. The
config's `max_relative_position` is 3, so the 11-token rows clip their relative distances."""

import json

import numpy as np
import pytest
from family_checks import (
    BERT_GOOGLE_RENAMES,
    assert_matches,
    google_arrays,
    nezha_reference,
    nezha_weights,
    predict,
    run_decoding_protocol_test,
    save_nezha_directory,
    write_tf_checkpoint,
)

from b4k3_models import NEZHA, CheckpointMismatchError, build_transformer_model

GOOGLE_CONFIG_KEYS = ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size")
GOOGLE_CONFIG_KEYS += ("hidden_act", "max_position_embeddings", "max_relative_position", "type_vocab_size")


@pytest.fixture(scope="module")
def reference():
    return nezha_reference()


@pytest.fixture(scope="module")
def weights(reference):
    return nezha_weights(reference)


@pytest.fixture(scope="module")
def hf_directory(reference, tmp_path_factory):
    return save_nezha_directory(reference, tmp_path_factory.mktemp("nezha_hf"))


@pytest.fixture(scope="module")
def google_checkpoint(reference, weights, tmp_path_factory):
    """`model.ckpt` with Huawei's names (BERT's under `bert/`, no position table) and its config."""
    directory = tmp_path_factory.mktemp("nezha_google")
    renames = [(r"^nezha\.", "bert."), *BERT_GOOGLE_RENAMES]
    write_tf_checkpoint(google_arrays(weights, renames), directory / "model.ckpt")
    config = {key: reference["config"][key] for key in GOOGLE_CONFIG_KEYS}
    (directory / "bert_config.json").write_text(json.dumps(config))
    return directory


def inputs(reference):
    return [reference["token_ids"], reference["segment_ids"]]


def check_outputs(reference, load):
    """The sequence output, pooled output, NSP and MLM logits of the models `load(**options)` builds."""
    mask = reference["attention_mask"].astype(bool)
    encoder = load()
    assert_matches(predict(encoder, inputs(reference)), reference["sequence_output"], mask)
    assert_matches(predict(load(with_pool=True), inputs(reference)), reference["pooled_output"])
    nsp_logits, mlm_logits = predict(load(with_nsp="linear", with_mlm="linear"), inputs(reference))
    assert_matches(nsp_logits, reference["nsp_logits"])
    assert_matches(mlm_logits, reference["mlm_logits"], mask)


def test_hugging_face_directory_gives_the_reference_outputs(reference, hf_directory):
    transformer = build_transformer_model(checkpoint_path=hf_directory, return_keras_model=False)
    assert type(transformer) is NEZHA  # from the config's model_type
    assert transformer.max_relative_position == 3
    check_outputs(reference, lambda **options: build_transformer_model(checkpoint_path=hf_directory, **options))


def test_google_checkpoint_gives_the_reference_outputs(reference, google_checkpoint):
    config, checkpoint = google_checkpoint / "bert_config.json", google_checkpoint / "model.ckpt"
    check_outputs(reference, lambda **options: build_transformer_model(config, checkpoint, model="nezha", **options))


def test_the_relative_table_is_a_fixed_sinusoid_not_a_weight(hf_directory):
    transformer = build_transformer_model(checkpoint_path=hf_directory, return_keras_model=False)
    table = transformer.layers["Embedding-Relative-Position"]
    assert not table.trainable
    assert table.embeddings.shape == (7, 8)  # distances -3..3, head size 8
    rows = np.arange(7)[:, None] / 10_000 ** (np.arange(0, 8, 2) / 8)
    expected = np.stack([np.sin(rows), np.cos(rows)], axis=-1).reshape(7, 8)
    np.testing.assert_allclose(table.embeddings.numpy(), expected, atol=1e-6)


def test_a_nezha_checkpoint_loaded_as_bert_fails_naming_the_position_table(google_checkpoint):
    with pytest.raises(CheckpointMismatchError) as error:
        build_transformer_model(google_checkpoint / "bert_config.json", google_checkpoint / "model.ckpt")
    assert "Embedding-Position/embeddings (64, 32) <- bert/embeddings/position_embeddings: not in" in str(error.value)


def test_options_of_absolute_positions_are_refused(hf_directory):
    with pytest.raises(TypeError, match=r"no \['hierarchical_position'\]"):
        build_transformer_model(checkpoint_path=hf_directory, hierarchical_position=True)


def test_as_a_language_model_it_runs_causally_and_decodes_with_a_kv_cache(reference, hf_directory):
    """application='lm': each position sees only those before it (a row cut short gives the same
    outputs on what is left), and decoding with a KV cache gives the full pass's outputs, prompts
    of several lengths included, past `max_relative_position` (3) where the distances clip and
    past the 64 positions that NEZHA never reads (no position table bounds it)."""
    lm = build_transformer_model(
        checkpoint_path=hf_directory, application="lm", with_mlm="linear", return_keras_model=False
    )
    ids, segments = inputs(reference)
    full = predict(lm.model, [ids[:1], segments[:1]])
    cut = predict(lm.model, [ids[:1, :6], segments[:1, :6]])
    assert_matches(cut, full[:, :6])
    assert lm.max_positions is None
    tokens = np.random.default_rng(3).integers(1, reference["config"]["vocab_size"], size=(2, 70)).astype("int32")
    full_pass = lambda sequences: predict(lm.model, [sequences, np.zeros_like(sequences)])  # noqa: E731
    run_decoding_protocol_test(lm, tokens, full_pass=full_pass, lowest_token=1)
