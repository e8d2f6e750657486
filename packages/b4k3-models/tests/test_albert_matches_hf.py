"""ALBERT and ALBERT_Unshared loaded from Hugging Face directories and from Google's ALBERT TF
checkpoint names give Hugging Face's `AlbertModel` / `AlbertForPreTraining` / `AlbertForMaskedLM`
outputs (sequence, pooled, MLM and SOP logits) on a padded batch, within 1e-5 relative / 1e-4
absolute (fp32). Weights are drawn at std 0.2 (HF's 0.02 would hide a GELU or epsilon error)."""

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

from b4k3_layers.feed_forward import gelu_tanh
from b4k3_models import ALBERT, ALBERT_Unshared, CheckpointMismatchError, build_transformer_model

# Three layers sharing one block, factorized embeddings (16 -> 32), HF's default tanh GELU.
TINY_ALBERT = {**TINY_BERT, "num_hidden_layers": 3, "embedding_size": 16, "hidden_act": "gelu_new"}
TINY_ALBERT["initializer_range"] = 0.2

# Hugging Face's ALBERT names -> Google's (the tied MLM decoder is not stored).
GOOGLE_RENAMES = [
    (r"^albert\.", "bert."),
    (r"albert_layer_groups\.0\.albert_layers\.0\.", "transformer.group_0.inner_group_0."),
    (r"attention\.(query|key|value)", r"attention_1.self.\1"),
    (r"attention\.dense", "attention_1.output.dense"),
    (r"attention\.LayerNorm", "LayerNorm"),
    (r"ffn_output", "ffn_1.intermediate.output.dense"),
    (r"ffn\.", "ffn_1.intermediate.dense."),
    (r"full_layer_layer_norm", "LayerNorm_1"),
    (r"pooler\.", "pooler.dense."),
    (r"^predictions\.(dense|LayerNorm)", r"cls.predictions.transform.\1"),
    (r"^predictions\.bias", "cls.predictions.output_bias"),
    (r"^sop_classifier\.classifier\.weight", "cls.seq_relationship.output_weights"),
    (r"^sop_classifier\.classifier\.bias", "cls.seq_relationship.output_bias"),
]
GOOGLE_CONFIG_KEYS = ("vocab_size", "embedding_size", "hidden_size", "num_hidden_layers", "num_attention_heads")
GOOGLE_CONFIG_KEYS += ("intermediate_size", "max_position_embeddings", "type_vocab_size")


def save_albert(model_class, directory, seed=0):
    return save_hf_model(model_class, transformers.AlbertConfig, TINY_ALBERT, directory, seed=seed, perturb=0.2)


@pytest.fixture(scope="module")
def albert_pretraining(tmp_path_factory):
    """An `AlbertForPreTraining` (keys under `albert.`, `predictions.`, `sop_classifier.`)."""
    return save_albert(transformers.AlbertForPreTraining, tmp_path_factory.mktemp("albert_pretraining"))


@pytest.fixture(scope="module")
def batch():
    ids, mask = padded_batch(TINY_ALBERT["vocab_size"])
    segments = np.zeros_like(ids)
    segments[:, 4:] = 1
    return ids, mask, segments


def hf_outputs(model, ids, mask, segments):
    with torch.no_grad():
        return model(
            input_ids=torch.tensor(ids, dtype=torch.long),
            attention_mask=torch.tensor(mask, dtype=torch.long),
            token_type_ids=torch.tensor(segments, dtype=torch.long),
            output_hidden_states=True,
        )


def test_albert_model_sequence_and_pooled_outputs(tmp_path, batch):
    directory, reference = save_albert(transformers.AlbertModel, tmp_path, seed=1)
    ids, mask, segments = batch
    expected = hf_outputs(reference, ids, mask, segments)

    transformer = run_family_parity_test(directory, [ids, segments], expected.last_hidden_state.numpy(), mask)
    assert type(transformer) is ALBERT  # from the config's model_type

    pooled = build_transformer_model(checkpoint_path=directory, with_pool=True)
    assert_matches(predict(pooled, [ids, segments]), expected.pooler_output.numpy())


def test_albert_for_pretraining_mlm_and_sop_logits(albert_pretraining, batch):
    directory, reference = albert_pretraining
    ids, mask, segments = batch
    expected = hf_outputs(reference, ids, mask, segments)

    model = build_transformer_model(checkpoint_path=directory, with_nsp="linear", with_mlm="linear")
    sop_logits, mlm_logits = predict(model, [ids, segments])
    assert_matches(sop_logits, expected.sop_logits.numpy())
    assert_matches(mlm_logits, expected.prediction_logits.numpy(), mask)

    encoder = build_transformer_model(checkpoint_path=directory)  # the heads' keys are known, not unused
    assert_matches(predict(encoder, [ids, segments]), expected.hidden_states[-1].numpy(), mask)


def test_albert_for_masked_lm_probabilities(tmp_path, batch):
    directory, reference = save_albert(transformers.AlbertForMaskedLM, tmp_path, seed=2)
    ids, mask, segments = batch
    expected = torch.softmax(hf_outputs(reference, ids, mask, segments).logits, dim=-1).numpy()

    run_family_parity_test(directory, [ids, segments], expected, mask, with_mlm=True)


def test_keep_tokens_shrink_the_vocabulary(albert_pretraining, batch):
    """`keep_tokens` keeps the checkpoint's rows (embeddings and MLM bias) of the ids it lists."""
    directory, reference = albert_pretraining
    ids, mask, segments = batch
    keep = sorted(set(ids.ravel().tolist()))  # the batch's ids, the pad id 0 first (it stays 0)
    new_ids = np.searchsorted(keep, ids).astype("int32")
    expected = hf_outputs(reference, ids, mask, segments).prediction_logits.numpy()[..., keep]

    model = build_transformer_model(checkpoint_path=directory, keep_tokens=keep, with_mlm="linear")
    assert_matches(predict(model, [new_ids, segments]), expected, mask)


def test_one_block_serves_every_layer(albert_pretraining):
    """ALBERT builds one block: the same weights whatever `num_hidden_layers`, named as bert4keras did."""
    directory, _ = albert_pretraining
    deep = build_transformer_model(checkpoint_path=directory, return_keras_model=False)
    shallow = build_transformer_model(checkpoint_path=directory, num_hidden_layers=1, return_keras_model=False)
    block = [name for name in deep.layers if name.startswith("Transformer-")]
    assert "Transformer-MultiHeadSelfAttention" in block
    assert "Transformer-FeedForward-Norm" in block
    assert not [name for name in block if name.startswith("Transformer-0")]
    assert [w.path for w in deep.model.weights] == [w.path for w in shallow.model.weights]
    for deep_weight, shallow_weight in zip(deep.model.weights, shallow.model.weights, strict=True):
        np.testing.assert_array_equal(deep_weight.numpy(), shallow_weight.numpy())


def test_albert_unshared_loads_the_shared_block_into_every_layer(albert_pretraining, batch):
    directory, _ = albert_pretraining
    ids, _, segments = batch
    shared = build_transformer_model(checkpoint_path=directory)
    unshared = build_transformer_model(checkpoint_path=directory, model="albert_unshared", return_keras_model=False)
    assert type(unshared) is ALBERT_Unshared
    first, last = (unshared.layers[f"Transformer-{i}-FeedForward"].o_dense.kernel for i in (0, 2))
    assert first is not last  # two variables, loaded from the one block
    np.testing.assert_array_equal(first.numpy(), last.numpy())
    np.testing.assert_allclose(predict(unshared.model, [ids, segments]), predict(shared, [ids, segments]), atol=1e-6)


def test_google_albert_checkpoint_gives_hf_outputs(albert_pretraining, batch, tmp_path):
    """`bert_model.ckpt` with Google's ALBERT names, and its `albert_config.json`."""
    _, reference = albert_pretraining
    arrays = google_arrays(reference.state_dict(), GOOGLE_RENAMES, skip=["predictions.decoder"])
    assert "bert/encoder/transformer/group_0/inner_group_0/ffn_1/intermediate/output/dense/kernel" in arrays
    write_tf_checkpoint(arrays, tmp_path / "model.ckpt-best")
    # Google's ALBERT writes "gelu" for its tanh GELU; bert4keras reads "gelu" as the erf GELU.
    config = {key: TINY_ALBERT[key] for key in GOOGLE_CONFIG_KEYS}
    (tmp_path / "albert_config.json").write_text(json.dumps({**config, "hidden_act": "gelu"}))
    ids, mask, segments = batch
    expected = hf_outputs(reference, ids, mask, segments)

    for model in ("albert", "albert_unshared"):
        heads = build_transformer_model(
            tmp_path / "albert_config.json",
            tmp_path / "model.ckpt-best",
            model=model,
            hidden_act=gelu_tanh,
            with_nsp="linear",
            with_mlm="linear",
        )
        sop_logits, mlm_logits = predict(heads, [ids, segments])
        assert_matches(sop_logits, expected.sop_logits.numpy())
        assert_matches(mlm_logits, expected.prediction_logits.numpy(), mask)


def test_bert_and_albert_checkpoints_are_not_mistaken_for_each_other(albert_pretraining, bert_pretraining):
    albert_directory, _ = albert_pretraining
    bert_directory, _ = bert_pretraining
    with pytest.raises(CheckpointMismatchError) as error:
        build_transformer_model(checkpoint_path=bert_directory, model="albert")
    assert "bert.encoder.layer.0.attention.self.query.weight" in str(error.value)  # unused
    assert "encoder.albert_layer_groups.0.albert_layers.0.ffn.weight: not in the checkpoint" in str(error.value)

    with pytest.raises(CheckpointMismatchError) as error:
        build_transformer_model(checkpoint_path=albert_directory, model="bert", embedding_size=16)
    assert "albert.encoder.albert_layer_groups.0.albert_layers.0.attention.query.weight" in str(error.value)
    assert "Transformer-0-MultiHeadSelfAttention" in str(error.value)


def test_several_layer_groups_are_refused(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({**TINY_ALBERT, "model_type": "albert", "num_hidden_groups": 2}))
    with pytest.raises(ValueError, match="num_hidden_groups=2"):
        build_transformer_model(tmp_path / "config.json")


def test_albert_as_a_language_model_decodes_with_its_shared_block(albert_pretraining):
    """application='lm': the causal ALBERT continues text with a KV cache, the one block applied
    at every layer, giving what its full pass gives."""
    directory, _ = albert_pretraining
    lm = build_transformer_model(
        checkpoint_path=directory, application="lm", with_mlm="linear", return_keras_model=False
    )
    tokens = np.random.default_rng(3).integers(1, TINY_ALBERT["vocab_size"], size=(2, 9)).astype("int32")
    full_pass = lambda sequences: predict(lm.model, [sequences, np.zeros_like(sequences)])  # noqa: E731
    run_decoding_protocol_test(lm, tokens, full_pass=full_pass, lowest_token=1)
