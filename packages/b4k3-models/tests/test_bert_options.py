"""The options of `BERT` (bert4keras' constructor arguments): heads and their activations, output
conventions, positions, embeddings, RealFormer, layer names and prefixes, conditional layer norms,
LoRA, generation settings and padding.

References: Hugging Face `BertForPreTraining` (the `bert_pretraining` fixture) where it has the
option (custom position ids, within 1e-5 / 1e-4); otherwise an algebraic property of the option
against the plain model (within 1e-6 unless stated)."""

import keras
import numpy as np
import pytest
import torch
from family_checks import TINY_BERT, TINY_BERT_ARGUMENTS, assert_matches, padded_batch, predict

from b4k3_models import BERT, CheckpointMismatchWarning, Transformer, build_transformer_model

TINY = TINY_BERT_ARGUMENTS
BERT4KERAS_NAMES = [
    "Input-Token",
    "Input-Segment",
    "Embedding-Token",
    "Embedding-Segment",
    "Embedding-Position",
    "Embedding-Norm",
    "Transformer-0-MultiHeadSelfAttention",
    "Transformer-0-MultiHeadSelfAttention-Norm",
    "Transformer-0-FeedForward",
    "Transformer-0-FeedForward-Norm",
    "Transformer-1-MultiHeadSelfAttention",
    "Transformer-1-FeedForward-Norm",
    "Pooler-Dense",
    "NSP-Proba",
    "MLM-Dense",
    "MLM-Norm",
    "MLM-Bias",
]
NORMS = ["Embedding-Norm", "Transformer-0-MultiHeadSelfAttention-Norm", "Transformer-1-FeedForward-Norm"]


def softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def value(variable):
    return keras.ops.convert_to_numpy(variable)


@pytest.fixture(scope="module")
def batch():
    ids, mask = padded_batch(TINY_BERT["vocab_size"])
    segments = np.zeros_like(ids)
    segments[:, 4:] = 1
    return ids, mask, segments


@pytest.fixture(scope="module")
def directory(bert_pretraining):
    return bert_pretraining[0]


@pytest.fixture(scope="module")
def sequence_output(directory, batch):
    ids, _, segments = batch
    return predict(build_transformer_model(checkpoint_path=directory), [ids, segments])


def run(directory, batch, **kwargs):
    ids, _, segments = batch
    return predict(build_transformer_model(checkpoint_path=directory, **kwargs), [ids, segments])


def test_tanh_pooler_is_tanh_of_the_linear_pooler(directory, batch):
    pooled, linear = run(directory, batch, with_pool=True), run(directory, batch, with_pool="linear")
    assert pooled.shape == (3, TINY_BERT["hidden_size"])
    np.testing.assert_allclose(pooled, np.tanh(linear), rtol=0, atol=1e-6)
    assert np.abs(np.tanh(linear) - linear).max() > 1e-3  # tanh is not the identity here


def test_nsp_probabilities_are_the_softmax_of_its_logits(directory, batch):
    probabilities, logits = run(directory, batch, with_nsp=True), run(directory, batch, with_nsp="linear")
    assert probabilities.shape == (3, 2)
    np.testing.assert_allclose(probabilities.sum(axis=-1), 1, rtol=0, atol=1e-6)
    np.testing.assert_allclose(probabilities, softmax(logits), rtol=0, atol=1e-6)


def test_mlm_probabilities_are_the_softmax_of_its_logits(directory, batch):
    probabilities, logits = run(directory, batch, with_mlm=True), run(directory, batch, with_mlm="linear")
    assert probabilities.shape == (3, 11, TINY_BERT["vocab_size"])
    np.testing.assert_allclose(probabilities, softmax(logits), rtol=0, atol=1e-6)


def test_outputs_are_the_heads_only_in_pool_then_mlm_order(directory, batch, sequence_output):
    assert sequence_output.shape == (3, 11, TINY_BERT["hidden_size"])
    pooled, mlm = run(directory, batch, with_pool="linear", with_mlm="linear")
    np.testing.assert_allclose(pooled, run(directory, batch, with_pool="linear"), rtol=0, atol=1e-6)
    np.testing.assert_allclose(mlm, run(directory, batch, with_mlm="linear"), rtol=0, atol=1e-6)
    nsp, mlm = run(directory, batch, with_nsp=True, with_mlm=True)
    assert nsp.shape == (3, 2)
    assert mlm.shape == (3, 11, TINY_BERT["vocab_size"])


def test_custom_position_ids_counting_from_zero_equal_the_default(directory, batch, sequence_output):
    ids, mask, segments = batch
    positions = np.broadcast_to(np.arange(ids.shape[1], dtype="int32"), ids.shape)
    model = build_transformer_model(checkpoint_path=directory, custom_position_ids=True)
    assert [tensor.name for tensor in model.inputs] == ["Input-Token", "Input-Segment", "Input-Position"]
    assert_matches(predict(model, [ids, segments, positions]), sequence_output, mask, rtol=0, atol=1e-6)


def test_custom_position_ids_match_hf_position_ids(bert_pretraining, batch):
    directory, reference = bert_pretraining
    ids, mask, segments = batch
    positions = np.broadcast_to(np.arange(ids.shape[1], dtype="int32") + 7, ids.shape)
    with torch.no_grad():
        expected = reference.bert(
            input_ids=torch.tensor(ids, dtype=torch.long),
            attention_mask=torch.tensor(mask, dtype=torch.long),
            token_type_ids=torch.tensor(segments, dtype=torch.long),
            position_ids=torch.tensor(positions, dtype=torch.long),
        ).last_hidden_state.numpy()
    model = build_transformer_model(checkpoint_path=directory, custom_position_ids=True)
    assert_matches(predict(model, [ids, segments, positions]), expected, mask)


def test_hierarchical_positions_keep_short_inputs(directory, batch, sequence_output):
    ids, mask, segments = batch
    model = build_transformer_model(checkpoint_path=directory, hierarchical_position=True)
    assert_matches(predict(model, [ids, segments]), sequence_output, mask, rtol=0, atol=1e-5)


def test_hierarchical_positions_read_inputs_longer_than_the_table(batch):
    """With a table `E` of n rows and `u = (E - 0.4 E[0]) / 0.6`, position p gets
    `0.4 u[p // n] + 0.6 u[p % n]` (Su Jianlin's hierarchical decomposition)."""
    ids, _, segments = batch
    n = 4  # the batch is 11 tokens long
    model = build_transformer_model(**{**TINY, "max_position": n}, hierarchical_position=True)
    summed = predict(keras.Model(model.inputs, model.get_layer("Embedding-Token-Segment").output), [ids, segments])
    positioned = predict(keras.Model(model.inputs, model.get_layer("Embedding-Position").output), [ids, segments])
    table = value(model.get_layer("Embedding-Position").embeddings)
    u = (table - 0.4 * table[:1]) / 0.6
    p = np.arange(ids.shape[1])
    np.testing.assert_allclose(
        positioned - summed, np.broadcast_to(0.4 * u[p // n] + 0.6 * u[p % n], summed.shape), atol=1e-6
    )
    outputs = predict(model, [ids, segments])
    assert np.isfinite(outputs).all()


def test_shared_segment_embeddings_are_the_first_token_rows(batch):
    """Segment id s adds row s of the token embeddings: the plain model with those rows as its
    segment table gives the same outputs."""
    shared = build_transformer_model(**TINY, shared_segment_embeddings=True)
    names = [layer.name for layer in shared.layers]
    assert "Embedding-Segment" not in names
    assert "Embedding-Token" in names
    plain = build_transformer_model(**TINY)
    for layer in shared.layers:
        plain.get_layer(layer.name).set_weights(layer.get_weights())
    table = value(shared.get_layer("Embedding-Token").embeddings)
    plain.get_layer("Embedding-Segment").set_weights([table[:2]])

    ids, _, segments = batch
    np.testing.assert_allclose(predict(shared, [ids, segments]), predict(plain, [ids, segments]), rtol=0, atol=1e-6)


def test_embedding_size_smaller_than_hidden_size_adds_the_mapping():
    model = build_transformer_model(**TINY, embedding_size=8, with_mlm=True)
    assert tuple(model.get_layer("Embedding-Token").embeddings.shape) == (TINY["vocab_size"], 8)
    assert tuple(model.get_layer("Embedding-Mapping").kernel.shape) == (8, TINY["hidden_size"])
    assert tuple(model.get_layer("MLM-Dense").kernel.shape) == (TINY["hidden_size"], 8)
    assert model.output_shape == (None, None, TINY["vocab_size"])
    assert "Embedding-Mapping" not in [layer.name for layer in build_transformer_model(**TINY).layers]


def test_residual_attention_scores_change_only_the_layers_after_the_first(directory, batch, sequence_output):
    ids, mask, segments = batch
    model = build_transformer_model(checkpoint_path=directory, residual_attention_scores=True)
    assert "Transformer-1-MultiHeadSelfAttention-Residual-Bias" in [layer.name for layer in model.layers]
    outputs = predict(model, [ids, segments])
    assert np.isfinite(outputs).all()
    assert np.abs(outputs - sequence_output)[mask].max() > 1e-5

    one_layer = {"checkpoint_path": directory, "num_hidden_layers": 1, "ignore_invalid_weights": True}
    with pytest.warns(CheckpointMismatchWarning):
        residual = build_transformer_model(residual_attention_scores=True, **one_layer)
    with pytest.warns(CheckpointMismatchWarning):
        plain = build_transformer_model(**one_layer)
    np.testing.assert_allclose(predict(residual, [ids, segments]), predict(plain, [ids, segments]), atol=1e-6)


def test_no_segment_vocabulary_means_a_single_input(batch):
    model = build_transformer_model(**TINY, segment_vocab_size=0)
    assert [tensor.name for tensor in model.inputs] == ["Input-Token"]
    assert "Embedding-Segment" not in [layer.name for layer in model.layers]
    ids, _, _ = batch
    assert predict(model, ids).shape == (*ids.shape, TINY["hidden_size"])


def test_layers_have_bert4keras_names(directory):
    transformer = build_transformer_model(
        checkpoint_path=directory, with_nsp=True, with_mlm=True, return_keras_model=False
    )
    for name in BERT4KERAS_NAMES:
        assert transformer.model.get_layer(name).name == name
        if not name.startswith("Input-"):
            assert transformer.layers[name] is transformer.model.get_layer(name)


def test_prefix_prefixes_every_layer_and_the_checkpoint_still_loads(directory, batch, sequence_output):
    ids, mask, segments = batch
    model = build_transformer_model(checkpoint_path=directory, prefix="p-")
    assert all(layer.name.startswith("p-") for layer in model.layers)
    assert model.get_layer("p-Transformer-1-FeedForward-Norm").name == "p-Transformer-1-FeedForward-Norm"
    assert_matches(predict(model, [ids, segments]), sequence_output, mask, rtol=0, atol=1e-6)


def test_return_keras_model_false_returns_the_transformer(directory):
    transformer = build_transformer_model(checkpoint_path=directory, return_keras_model=False)
    assert isinstance(transformer, BERT)
    assert isinstance(transformer, Transformer)
    assert isinstance(transformer.model, keras.Model)
    assert transformer.layers["Embedding-Token"] is transformer.model.get_layer("Embedding-Token")
    assert transformer.max_position == TINY_BERT["max_position_embeddings"]


def condition_input():
    return keras.Input(shape=(8,), name="Input-Condition")


def test_layer_norm_cond_makes_every_norm_conditional(batch):
    condition = condition_input()
    model = build_transformer_model(**TINY, layer_norm_cond=condition, additional_input_layers=[condition])
    assert [tensor.name for tensor in model.inputs] == ["Input-Token", "Input-Segment", "Input-Condition"]
    for name in NORMS:
        paths = sorted(variable.path for variable in model.get_layer(name).weights)
        assert paths == [f"{name}/{path}" for path in ("beta", "beta_dense/kernel", "gamma", "gamma_dense/kernel")]

    ids, _, segments = batch
    zeros, ones = np.zeros((len(ids), 8), "float32"), np.ones((len(ids), 8), "float32")
    # The condition's kernels start at zero: the model starts as the unconditional one.
    np.testing.assert_array_equal(predict(model, [ids, segments, zeros]), predict(model, [ids, segments, ones]))
    kernel = model.get_layer("Embedding-Norm").gamma_dense.kernel
    kernel.assign(np.random.default_rng(1).normal(size=kernel.shape).astype("float32"))
    assert np.abs(predict(model, [ids, segments, zeros]) - predict(model, [ids, segments, ones])).max() > 1e-3


def test_layer_norm_cond_accepts_a_single_additional_input():
    """bert4keras' conditional language model passes `additional_input_layers=c_in` bare."""
    condition = condition_input()
    model = build_transformer_model(**TINY, layer_norm_cond=condition, additional_input_layers=condition)
    assert len(model.inputs) == 3


def test_layer_norm_cond_with_a_checkpoint_starts_as_the_pretrained_model(directory, batch, sequence_output):
    """The condition's projections are new (not in any checkpoint) and start at zero, as in
    bert4keras' conditional language model fine-tuned from a pretrained BERT."""
    ids, mask, segments = batch
    condition = condition_input()
    model = build_transformer_model(
        checkpoint_path=directory, layer_norm_cond=condition, additional_input_layers=[condition]
    )
    outputs = predict(model, [ids, segments, np.ones((3, 8), "float32")])
    assert_matches(outputs, sequence_output, mask, rtol=0, atol=1e-6)


def test_enable_lora_trains_adapters_only_and_keeps_the_loaded_outputs(directory, batch, monkeypatch):
    plain = run(directory, batch, with_mlm="linear")
    monkeypatch.setenv("ENABLE_LORA", "1")
    model = build_transformer_model(checkpoint_path=directory, with_mlm="linear")

    trainable = {variable.path for variable in model.trainable_weights}
    assert "Transformer-0-MultiHeadSelfAttention/q_dense/lora_kernel_a" in trainable
    assert "Transformer-1-FeedForward/o_dense/lora_kernel_b" in trainable
    assert "Embedding-Token/lora_embeddings_a" in trainable
    assert all("lora_" in path or "Norm/" in path or path == "MLM-Bias/beta" for path in trainable), trainable
    for layer in ("Transformer-0-MultiHeadSelfAttention", "Transformer-1-FeedForward"):
        for variable in model.get_layer(layer).weights:
            assert variable.trainable == ("lora_" in variable.path), variable.path
    head_size = TINY_BERT["hidden_size"] // TINY_BERT["num_attention_heads"]
    assert model.get_layer("Transformer-0-MultiHeadSelfAttention").q_dense.lora_kernel_a.shape[-1] == head_size

    ids, _, segments = batch
    np.testing.assert_allclose(predict(model, [ids, segments]), plain, rtol=0, atol=1e-6)


def test_generation_settings_are_accepted_and_kept():
    settings = {
        "penalty": 1.2,
        "penalty_window": 16,
        "max_penalty_range": [2, 5],
        "temperature": 0.7,
        "mask_output": [0, 1],
    }
    transformer = build_transformer_model(**TINY, **settings, return_keras_model=False)
    assert transformer.generation_config == settings
    defaults = build_transformer_model(**TINY, return_keras_model=False).generation_config
    assert defaults == {
        "penalty": 1.0,
        "penalty_window": None,
        "max_penalty_range": None,
        "temperature": 1.0,
        "mask_output": None,
    }


def test_padding_never_changes_the_outputs_at_real_tokens(directory, batch):
    ids, mask, segments = batch
    model = build_transformer_model(checkpoint_path=directory, with_pool=True, with_mlm="linear")
    pooled, logits = predict(model, [ids, segments])

    def pad(x, value=0):
        return np.pad(x, ((0, 0), (0, 5)), constant_values=value)

    for padded_segments in (pad(segments), pad(segments, 1)):
        more_pooled, more_logits = predict(model, [pad(ids), padded_segments])
        np.testing.assert_allclose(more_pooled, pooled, rtol=0, atol=1e-6)
        np.testing.assert_allclose(more_logits[:, : ids.shape[1]][mask], logits[mask], rtol=0, atol=1e-5)
    # The segment id at a pad position of the batch does not matter either.
    other_segments = np.where(mask, segments, 1 - segments)
    np.testing.assert_allclose(predict(model, [ids, other_segments])[1][mask], logits[mask], rtol=0, atol=1e-5)
