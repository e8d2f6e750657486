"""Loading a checkpoint is strict: one that does not fit the config raises a single
`CheckpointMismatchError` naming every key, variable and shape that does not fit, and bad
arguments or paths fail with errors that name them (an argument no model takes, with a
warning). Also: sharded safetensors, `{name: array}` dicts and TF checkpoints in Google's names,
`keep_tokens` and `compound_tokens`.

References: the arrays of the checkpoint itself (read with safetensors' NumPy API) and the model
loaded from the unsharded Hugging Face directory; equal within 1e-6."""

import json
import re
import shutil
import sys

import keras
import numpy as np
import pytest
import transformers
from family_checks import TINY_BERT, padded_batch, predict, save_hf_model
from safetensors.numpy import load_file

from b4k3_models import BERT, CheckpointMismatchError, CheckpointMismatchWarning, build_transformer_model
from b4k3_ops.resize import orthogonally_resize

# TINY_BERT in bert4keras' (Google's) config keys.
GOOGLE_CONFIG = {
    "vocab_size": TINY_BERT["vocab_size"],
    "hidden_size": TINY_BERT["hidden_size"],
    "num_hidden_layers": TINY_BERT["num_hidden_layers"],
    "num_attention_heads": TINY_BERT["num_attention_heads"],
    "intermediate_size": TINY_BERT["intermediate_size"],
    "hidden_act": "gelu",
    "max_position_embeddings": TINY_BERT["max_position_embeddings"],
    "type_vocab_size": TINY_BERT["type_vocab_size"],
    "hidden_dropout_prob": 0.1,
    "attention_probs_dropout_prob": 0.1,
    "initializer_range": 0.02,
}
# The sizes of TINY_BERT, for models built without a config.
TINY_SIZES = {name: GOOGLE_CONFIG[name] for name in ("vocab_size", "hidden_size", "num_attention_heads")}
TINY_SIZES.update(num_hidden_layers=1, intermediate_size=GOOGLE_CONFIG["intermediate_size"])


def checkpoint_arrays(directory):
    return load_file(str(directory / "model.safetensors"))


def value(variable):
    return keras.ops.convert_to_numpy(variable)


def google_name(key, array):
    """A Hugging Face BERT key and array under Google's TF name (kernels stored `(in, out)`)."""
    special = {
        "cls.predictions.bias": "cls/predictions/output_bias",
        "cls.seq_relationship.weight": "cls/seq_relationship/output_weights",
        "cls.seq_relationship.bias": "cls/seq_relationship/output_bias",
    }
    if key in special:
        return special[key], array
    scope, leaf = re.sub(r"\.layer\.(\d+)\.", r".layer_\1.", key).rsplit(".", 1)
    scope = scope.replace(".", "/")
    if scope.endswith("_embeddings"):
        return scope, array
    if scope.endswith("LayerNorm"):
        return f"{scope}/{'gamma' if leaf == 'weight' else 'beta'}", array
    return (f"{scope}/kernel", array.T) if leaf == "weight" else (f"{scope}/bias", array)


@pytest.fixture(scope="module")
def batch():
    ids, mask = padded_batch(TINY_BERT["vocab_size"])
    return ids, mask, np.zeros_like(ids)


@pytest.fixture(scope="module")
def google_checkpoint(bert_pretraining, tmp_path_factory):
    """(config path, `{Google name: array}`) of the `bert_pretraining` weights, with the training
    state a Google checkpoint also holds (a step counter, an Adam slot)."""
    directory, _ = bert_pretraining
    arrays = dict(google_name(key, array) for key, array in checkpoint_arrays(directory).items())
    arrays["global_step"] = np.array(1000)
    arrays["bert/embeddings/word_embeddings/adam_m"] = np.zeros_like(arrays["bert/embeddings/word_embeddings"])
    config_path = tmp_path_factory.mktemp("google") / "bert_config.json"
    config_path.write_text(json.dumps(GOOGLE_CONFIG))
    return config_path, arrays


@pytest.fixture(scope="module")
def heads_outputs(bert_pretraining, batch):
    """NSP and MLM logits of the model loaded from the unsharded Hugging Face directory."""
    directory, _ = bert_pretraining
    ids, _, segments = batch
    model = build_transformer_model(checkpoint_path=directory, with_nsp="linear", with_mlm="linear")
    return predict(model, [ids, segments])


def test_more_layers_than_the_checkpoint_names_every_missing_key(bert_pretraining):
    directory, _ = bert_pretraining
    with pytest.raises(CheckpointMismatchError) as caught:
        build_transformer_model(checkpoint_path=directory, num_hidden_layers=3)
    error = caught.value
    assert len(error.missing) == 16
    assert not error.mismatched
    assert not error.unused
    assert all(entry.startswith("Transformer-2-") for entry in error.missing)
    message = str(error)
    assert "Transformer-2-MultiHeadSelfAttention/q_dense/kernel (32, 32)" in message
    assert "bert.encoder.layer.2.attention.self.query.weight" in message
    assert "Transformer-2-FeedForward-Norm/beta" in message
    assert "bert.encoder.layer.2.output.LayerNorm.bias" in message
    assert "ignore_invalid_weights=True" in message


def test_fewer_layers_than_the_checkpoint_names_every_unused_key(bert_pretraining):
    directory, _ = bert_pretraining
    with pytest.raises(CheckpointMismatchError) as caught:
        build_transformer_model(checkpoint_path=directory, num_hidden_layers=1)
    error = caught.value
    assert len(error.unused) == 16
    assert not error.missing
    assert not error.mismatched
    assert all(entry.startswith("bert.encoder.layer.1.") for entry in error.unused)
    assert "bert.encoder.layer.1.output.dense.weight (32, 37)" in str(error)
    assert "bert.encoder.layer.1.attention.self.query.weight (32, 32)" in str(error)


@pytest.mark.parametrize(
    ("size", "variable", "key", "model_shape", "checkpoint_shape"),
    [
        ({"hidden_size": 64}, "Embedding-Norm/gamma", "bert.embeddings.LayerNorm.weight", (64,), (32,)),
        (
            {"intermediate_size": 40},
            "Transformer-1-FeedForward/i0_dense/kernel",
            "bert.encoder.layer.1.intermediate.dense.weight",
            (32, 40),
            (37, 32),
        ),
        (
            {"vocab_size": 100},
            "Embedding-Token/embeddings",
            "bert.embeddings.word_embeddings.weight",
            (100, 32),
            (99, 32),
        ),
    ],
    ids=["hidden", "intermediate", "vocab"],
)
def test_a_different_size_names_the_variable_the_key_and_both_shapes(
    bert_pretraining, size, variable, key, model_shape, checkpoint_shape
):
    directory, _ = bert_pretraining
    with pytest.raises(CheckpointMismatchError) as caught:
        build_transformer_model(checkpoint_path=directory, **size)
    entries = [entry for entry in caught.value.mismatched if entry.startswith(f"{variable}:")]
    assert len(entries) == 1, caught.value.mismatched
    assert key in entries[0]
    assert str(model_shape) in entries[0]
    assert str(checkpoint_shape) in entries[0]
    assert entries[0] in str(caught.value)


def test_every_kind_of_problem_is_listed_in_one_error(bert_model):
    """A bare `BertModel` checkpoint has no MLM head, one layer too many and other FFN sizes."""
    directory, _ = bert_model
    with pytest.raises(CheckpointMismatchError) as caught:
        build_transformer_model(checkpoint_path=directory, num_hidden_layers=1, intermediate_size=40, with_mlm=True)
    error = caught.value
    assert sorted(entry.split(" ")[0] for entry in error.missing) == [
        "MLM-Bias/beta",
        "MLM-Dense/bias",
        "MLM-Dense/kernel",
        "MLM-Norm/beta",
        "MLM-Norm/gamma",
    ]
    assert "cls.predictions.transform.dense.weight" in str(error)
    assert sorted(entry.split(":")[0] for entry in error.mismatched) == [
        "Transformer-0-FeedForward/i0_dense/bias",
        "Transformer-0-FeedForward/i0_dense/kernel",
        "Transformer-0-FeedForward/o_dense/kernel",
    ]
    assert len(error.unused) == 16
    assert all(entry.startswith("encoder.layer.1.") for entry in error.unused)
    for entry in error.missing + error.mismatched + error.unused:
        assert entry in str(error)


def test_ignore_invalid_weights_warns_with_the_same_list_and_loads_what_fits(bert_pretraining):
    directory, _ = bert_pretraining
    arrays = checkpoint_arrays(directory)
    sizes = {"num_hidden_layers": 3, "intermediate_size": 40}
    with pytest.raises(CheckpointMismatchError) as caught:
        build_transformer_model(checkpoint_path=directory, **sizes)
    with pytest.warns(CheckpointMismatchWarning) as record:
        model = build_transformer_model(checkpoint_path=directory, ignore_invalid_weights=True, **sizes)
    message = "\n".join(str(warning.message) for warning in record if warning.category is CheckpointMismatchWarning)
    problems = caught.value.missing + caught.value.mismatched
    assert len(problems) == 16 + 6
    for entry in problems:
        assert entry in message

    query = model.get_layer("Transformer-1-MultiHeadSelfAttention").q_dense.kernel
    np.testing.assert_array_equal(value(query), arrays["bert.encoder.layer.1.attention.self.query.weight"].T)
    # The output bias fits although the kernels of the same feed-forward do not.
    output_bias = model.get_layer("Transformer-0-FeedForward").o_dense.bias
    np.testing.assert_array_equal(value(output_bias), arrays["bert.encoder.layer.0.output.dense.bias"])
    gamma = model.get_layer("Embedding-Norm").gamma
    np.testing.assert_array_equal(value(gamma), arrays["bert.embeddings.LayerNorm.weight"])


def test_autoresize_weights_grows_the_checkpoint_to_a_larger_hidden_size(bert_pretraining):
    directory, _ = bert_pretraining
    arrays = checkpoint_arrays(directory)
    model = build_transformer_model(checkpoint_path=directory, hidden_size=64, autoresize_weights=True)
    gamma = model.get_layer("Embedding-Norm").gamma
    np.testing.assert_allclose(value(gamma), orthogonally_resize(arrays["bert.embeddings.LayerNorm.weight"], (64,)))
    kernel = model.get_layer("Transformer-0-MultiHeadSelfAttention").q_dense.kernel
    expected = orthogonally_resize(arrays["bert.encoder.layer.0.attention.self.query.weight"].T, (64, 64))
    np.testing.assert_allclose(value(kernel), expected, rtol=1e-6)


def test_sharded_checkpoint_gives_the_unsharded_outputs(tmp_path, batch, heads_outputs):
    # The same seed as the `bert_pretraining` fixture: the same weights, saved in shards.
    directory, _ = save_hf_model(
        transformers.BertForPreTraining, transformers.BertConfig, TINY_BERT, tmp_path, max_shard_size="20KB"
    )
    assert (directory / "model.safetensors.index.json").is_file()
    assert len(list(directory.glob("model-*.safetensors"))) > 1
    ids, _, segments = batch
    model = build_transformer_model(checkpoint_path=directory, with_nsp="linear", with_mlm="linear")
    for actual, expected in zip(predict(model, [ids, segments]), heads_outputs, strict=True):
        np.testing.assert_allclose(actual, expected, rtol=0, atol=1e-6)


def test_dict_checkpoint_in_google_names_loads_into_a_transformer(google_checkpoint, batch, heads_outputs):
    config_path, arrays = google_checkpoint
    transformer = build_transformer_model(
        config_path=config_path, with_nsp="linear", with_mlm="linear", return_keras_model=False
    )
    report = transformer.load_weights_from_checkpoint(arrays)
    assert report.ok
    assert report.loaded == len(transformer.model.weights)
    ids, _, segments = batch
    for actual, expected in zip(predict(transformer.model, [ids, segments]), heads_outputs, strict=True):
        np.testing.assert_allclose(actual, expected, rtol=0, atol=1e-6)


def test_dict_checkpoint_missing_a_key_names_it():
    arrays = {
        "bert/embeddings/word_embeddings": np.zeros((TINY_SIZES["vocab_size"], TINY_SIZES["hidden_size"]), "float32")
    }
    transformer = build_transformer_model(**TINY_SIZES, segment_vocab_size=0, return_keras_model=False)
    with pytest.raises(CheckpointMismatchError, match=re.escape("bert/embeddings/position_embeddings")):
        transformer.load_weights_from_checkpoint(arrays)


def test_a_checkpoint_layer_the_model_does_not_build_is_unused_unless_it_is_a_head(bert_pretraining):
    """Dropping the segment embeddings changes every output: not silent. Unbuilt heads are fine."""
    directory, _ = bert_pretraining
    with pytest.raises(CheckpointMismatchError) as caught:
        build_transformer_model(checkpoint_path=directory, segment_vocab_size=0)
    assert caught.value.unused == ["bert.embeddings.token_type_embeddings.weight (2, 32)"]
    build_transformer_model(checkpoint_path=directory)  # pooler, NSP and MLM not built: no complaint


def test_tf_checkpoint_without_tensorflow_says_what_to_install(tmp_path, monkeypatch):
    transformer = build_transformer_model(**TINY_SIZES, return_keras_model=False)
    prefix = tmp_path / "bert_model.ckpt"
    (tmp_path / "bert_model.ckpt.index").write_bytes(b"")
    monkeypatch.setitem(sys.modules, "tensorflow", None)
    with pytest.raises(ImportError, match=re.escape("pip install 'tensorflow>=2.16'")):
        transformer.load_weights_from_checkpoint(str(prefix))


def test_keep_tokens_and_compound_tokens_select_and_average_checkpoint_rows(bert_pretraining):
    directory, _ = bert_pretraining
    arrays = checkpoint_arrays(directory)
    keep = [0, 1, 5, 7, 98, 3]
    # As in bert4keras, compound tokens are ids of the kept vocabulary.
    compound = [[2, 3], ([0, 4, 5], [1.0, 2.0, 1.0])]
    model = build_transformer_model(
        checkpoint_path=directory, keep_tokens=keep, compound_tokens=compound, with_mlm=True
    )
    assert model.output_shape[-1] == len(keep) + len(compound)

    for key, variable in (
        ("bert.embeddings.word_embeddings.weight", model.get_layer("Embedding-Token").embeddings),
        ("cls.predictions.bias", model.get_layer("MLM-Bias").beta),
    ):
        kept = arrays[key][keep]
        expected = np.concatenate(
            [kept, kept[[2, 3]].mean(axis=0)[None], np.average(kept[[0, 4, 5]], axis=0, weights=[1, 2, 1])[None]]
        )
        np.testing.assert_allclose(value(variable), expected, rtol=1e-6, atol=1e-7)


def test_unknown_model_lists_the_known_ones():
    with pytest.raises(ValueError, match="bertt") as caught:
        build_transformer_model(**TINY_SIZES, model="bertt")
    assert "'bert'" in str(caught.value)
    assert "'roberta'" in str(caught.value)


def test_missing_config_path_is_named(tmp_path):
    path = tmp_path / "nowhere" / "config.json"
    with pytest.raises(FileNotFoundError, match=re.escape(str(path))):
        build_transformer_model(config_path=path)


def test_missing_checkpoint_path_is_named(tmp_path):
    path = tmp_path / "nowhere"
    with pytest.raises(FileNotFoundError, match=re.escape(str(path))):
        build_transformer_model(**TINY_SIZES, checkpoint_path=path)


def test_directory_without_safetensors_says_what_it_holds(bert_pretraining, tmp_path):
    directory, _ = bert_pretraining
    shutil.copy(directory / "config.json", tmp_path / "config.json")
    (tmp_path / "pytorch_model.bin").write_bytes(b"")
    with pytest.raises(FileNotFoundError, match=r"pytorch_model\.bin") as caught:
        build_transformer_model(checkpoint_path=tmp_path)
    assert "safetensors" in str(caught.value)
    assert str(tmp_path) in str(caught.value)


def test_misspelled_argument_warns_naming_it_and_the_argument_meant():
    """bert4keras3 ignored arguments no model takes; b4k3 leaves them out too, but says so."""
    with pytest.warns(UserWarning, match=r"ignores with_poool=True.*did you mean 'with_pool'"):
        model = build_transformer_model(**TINY_SIZES, with_poool=True)
    assert "Pooler-Dense" not in [layer.name for layer in model.layers]


def test_version_is_refused_for_bert():
    with pytest.raises(ValueError, match=r"version='t5\.1\.1'.*BERT"):
        build_transformer_model(**TINY_SIZES, version="t5.1.1")


def test_unsupported_hf_position_embedding_type_is_refused(bert_pretraining, tmp_path):
    directory, _ = bert_pretraining
    config = json.loads((directory / "config.json").read_text())
    config["position_embedding_type"] = "relative_key"
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="position_embedding_type='relative_key'"):
        build_transformer_model(config_path=tmp_path / "config.json")


def test_unknown_application_is_refused():
    with pytest.raises(ValueError, match="'xx'") as caught:
        build_transformer_model(**TINY_SIZES, application="xx")
    assert "'lm'" in str(caught.value)
    assert "'unilm'" in str(caught.value)


def test_missing_sizes_without_a_config_are_named():
    with pytest.raises(ValueError, match="BERT needs") as caught:
        build_transformer_model(hidden_size=8, num_attention_heads=2)
    message = str(caught.value)
    for name in ("vocab_size", "num_hidden_layers", "intermediate_size"):
        assert f"'{name}'" in message
    assert "'hidden_size'" not in message
    assert "'num_attention_heads'" not in message


def test_bert_class_can_be_given_instead_of_its_name():
    model = build_transformer_model(**TINY_SIZES, model=BERT, segment_vocab_size=0)
    assert [tensor.name for tensor in model.inputs] == ["Input-Token"]
    assert model.output_shape == (None, None, TINY_SIZES["hidden_size"])
