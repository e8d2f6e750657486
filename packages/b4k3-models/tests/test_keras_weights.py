"""`keras_weights_path`: a Keras `.weights.h5` file saved from a model loads back with the same
strictness as checkpoints: one `CheckpointMismatchError` listing every variable that does not fit,
or, with `ignore_invalid_weights=True`, a warning and every variable that fits loaded.

Reference: the model the file was saved from; outputs equal within 1e-6."""

import re

import h5py
import keras
import numpy as np
import pytest
from family_checks import TINY_BERT, padded_batch, predict

from b4k3_models import CheckpointMismatchError, CheckpointMismatchWarning, build_transformer_model


def value(variable):
    return keras.ops.convert_to_numpy(variable)


def randomize(model, seed=0):
    """Every weight random (biases and norms too), so that a variable left unloaded shows."""
    rng = np.random.default_rng(seed)
    for variable in model.weights:
        variable.assign(rng.normal(scale=0.1, size=variable.shape).astype("float32"))
    return model


def saved_model(config_path, path, **kwargs):
    """A model built from `config_path` (with `kwargs`), randomized and saved to `path`."""
    model = randomize(build_transformer_model(config_path=config_path, **kwargs))
    model.save_weights(path)
    return model


@pytest.fixture(scope="module")
def batch():
    ids, mask = padded_batch(TINY_BERT["vocab_size"])
    return ids, mask, np.zeros_like(ids)


@pytest.fixture(scope="module")
def config_path(bert_pretraining):
    directory, _ = bert_pretraining
    return directory / "config.json"


@pytest.fixture(scope="module")
def wider_ffn_weights(config_path, tmp_path_factory):
    """A file saved from the config with intermediate_size 40 instead of 37, and its model."""
    path = tmp_path_factory.mktemp("wider") / "wider.weights.h5"
    return path, saved_model(config_path, path, intermediate_size=40)


def test_weights_saved_from_a_checkpoint_model_give_the_same_outputs(bert_pretraining, config_path, tmp_path, batch):
    directory, _ = bert_pretraining
    ids, _, segments = batch
    model = build_transformer_model(checkpoint_path=directory, with_pool=True, with_mlm="linear")
    model.save_weights(tmp_path / "bert.weights.h5")

    loaded = build_transformer_model(
        config_path=config_path, keras_weights_path=tmp_path / "bert.weights.h5", with_pool=True, with_mlm="linear"
    )
    for actual, expected in zip(predict(loaded, [ids, segments]), predict(model, [ids, segments]), strict=True):
        np.testing.assert_allclose(actual, expected, rtol=0, atol=1e-6)


def test_other_intermediate_size_names_every_variable_and_both_shapes(config_path, wider_ffn_weights):
    path, _ = wider_ffn_weights
    with pytest.raises(CheckpointMismatchError) as caught:
        build_transformer_model(config_path=config_path, keras_weights_path=path)
    error = caught.value
    assert not error.missing
    assert not error.unused
    assert sorted(entry.split(":")[0] for entry in error.mismatched) == [
        f"Transformer-{index}-FeedForward/{variable}"
        for index in (0, 1)
        for variable in ("i0_dense/bias", "i0_dense/kernel", "o_dense/kernel")
    ]
    [entry] = [entry for entry in error.mismatched if entry.startswith("Transformer-0-FeedForward/i0_dense/kernel:")]
    assert "(32, 37)" in entry
    assert "(32, 40)" in entry
    assert entry in str(error)
    assert str(path) in str(error)


def test_ignore_invalid_weights_warns_and_loads_the_layers_that_fit(config_path, wider_ffn_weights):
    path, source = wider_ffn_weights
    with pytest.warns(CheckpointMismatchWarning, match=re.escape("Transformer-1-FeedForward/o_dense/kernel")):
        model = build_transformer_model(config_path=config_path, keras_weights_path=path, ignore_invalid_weights=True)
    for name in (
        "Embedding-Token",
        "Embedding-Norm",
        "Transformer-1-MultiHeadSelfAttention",
        "Transformer-1-FeedForward-Norm",
    ):
        for actual, expected in zip(model.get_layer(name).weights, source.get_layer(name).weights, strict=True):
            np.testing.assert_array_equal(value(actual), value(expected), err_msg=actual.path)


def test_ignore_invalid_weights_loads_a_fitting_variable_beside_a_mismatched_one(config_path, wider_ffn_weights):
    """The output bias of a wider feed-forward has the model's shape: "load what fits" loads it."""
    path, source = wider_ffn_weights
    with pytest.warns(CheckpointMismatchWarning):
        model = build_transformer_model(config_path=config_path, keras_weights_path=path, ignore_invalid_weights=True)
    for index in (0, 1):
        name = f"Transformer-{index}-FeedForward"
        actual, expected = model.get_layer(name).o_dense.bias, source.get_layer(name).o_dense.bias
        np.testing.assert_array_equal(value(actual), value(expected), err_msg=actual.path)


def test_weights_of_a_shallower_model_name_the_missing_layers(config_path, tmp_path):
    path = tmp_path / "one_layer.weights.h5"
    saved_model(config_path, path, num_hidden_layers=1)
    with pytest.raises(CheckpointMismatchError) as caught:
        build_transformer_model(config_path=config_path, keras_weights_path=path)
    error = caught.value
    assert len(error.missing) == 16
    assert not error.mismatched
    assert not error.unused
    assert all(entry.startswith("Transformer-1-") for entry in error.missing)
    assert "Transformer-1-FeedForward/i0_dense/kernel (32, 37)" in str(error)


def test_weights_of_a_deeper_model_name_the_unused_arrays(config_path, tmp_path):
    path = tmp_path / "three_layers.weights.h5"
    saved_model(config_path, path, num_hidden_layers=3)
    with pytest.raises(CheckpointMismatchError) as caught:
        build_transformer_model(config_path=config_path, keras_weights_path=path)
    assert len(caught.value.unused) == 16
    assert not caught.value.missing
    assert not caught.value.mismatched
    assert any(entry.startswith("layers/feed_forward_2/") for entry in caught.value.unused)


def test_missing_weights_file_is_named(config_path, tmp_path):
    path = tmp_path / "nowhere.weights.h5"
    with pytest.raises(FileNotFoundError, match=re.escape(str(path))):
        build_transformer_model(config_path=config_path, keras_weights_path=path)


def test_weights_file_without_the_keras_suffix_is_refused(config_path, tmp_path):
    path = tmp_path / "model.h5"
    path.write_bytes(b"")
    with pytest.raises(ValueError, match=r"\.weights\.h5.*'model\.h5'"):
        build_transformer_model(config_path=config_path, keras_weights_path=path)


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_weights_saved_from_a_trained_model_load_without_its_optimizer_state(config_path, tmp_path, batch, optimizer):
    ids, _, segments = batch
    trained = build_transformer_model(config_path=config_path)
    trained.compile(optimizer=optimizer, loss="mse")
    trained.fit([ids, segments], np.zeros((*ids.shape, trained.output_shape[-1])), verbose=0)
    path = tmp_path / "fine_tuned.weights.h5"
    trained.save_weights(path)
    with h5py.File(path, "r") as file:
        assert "optimizer" in file, "Keras saves the optimizer's variables beside the model's"
    rebuilt = build_transformer_model(config_path=config_path, keras_weights_path=path)
    np.testing.assert_allclose(predict(rebuilt, [ids, segments]), predict(trained, [ids, segments]), rtol=0, atol=1e-6)
