"""A checkpoint_path that names nothing, a file where its directory was meant, a config that says
its architecture but not its model_type, and damaged files: each named in the error, instead of
a BERT built by default that then reports BERT's missing keys or the raw error of a parser."""

import json
import re
import shutil

import pytest
from family_checks import save_llm

from b4k3_models import build_transformer_model


@pytest.fixture
def bert_copy(bert_pretraining, tmp_path):
    """A copy of the tiny BERT checkpoint directory, safe to damage."""
    directory, _ = bert_pretraining
    shutil.copytree(directory, tmp_path / "bert")
    return tmp_path / "bert"


@pytest.mark.parametrize("keyword", [{}, {"with_lm": True}])
def test_a_checkpoint_path_that_does_not_exist_is_named(tmp_path, keyword):
    path = tmp_path / "Qwen2-0.5B-typo"
    expected = rf"checkpoint_path '{re.escape(str(path))}' does not exist \(its folder"
    with pytest.raises(FileNotFoundError, match=expected):
        build_transformer_model(checkpoint_path=path, **keyword)


def test_a_file_of_a_hugging_face_directory_names_the_directory(bert_pretraining):
    directory, _ = bert_pretraining
    with pytest.raises(ValueError, match=rf"pass the directory, checkpoint_path='{re.escape(str(directory))}'"):
        build_transformer_model(checkpoint_path=directory / "model.safetensors")


def test_a_config_without_model_type_uses_its_architecture(tmp_path):
    directory, _ = save_llm("llama_gqa", tmp_path / "llama")
    config = json.loads((directory / "config.json").read_text())
    del config["model_type"]
    assert config["architectures"] == ["LlamaForCausalLM"]
    (directory / "config.json").write_text(json.dumps(config))
    transformer = build_transformer_model(checkpoint_path=directory, return_keras_model=False)
    assert type(transformer).__name__ == "Llama"


def test_a_config_with_an_unknown_architecture_and_no_model_type_names_the_missing_key(bert_copy):
    config = json.loads((bert_copy / "config.json").read_text())
    del config["model_type"]
    config["architectures"] = ["MysteryForMaskedLM"]
    (bert_copy / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match=r"has no model_type, and its architectures \['MysteryForMaskedLM'\]"):
        build_transformer_model(checkpoint_path=bert_copy)


def truncate(path, keep=0.5):
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def test_a_truncated_config_is_named_damaged(bert_copy):
    truncate(bert_copy / "config.json")
    with pytest.raises(ValueError, match=rf"{re.escape(str(bert_copy / 'config.json'))}' is damaged or incomplete"):
        build_transformer_model(checkpoint_path=bert_copy)


@pytest.mark.parametrize("keep", [0.5, 0.999, 0.001])
def test_a_truncated_safetensors_file_is_named_damaged(bert_copy, keep):
    truncate(bert_copy / "model.safetensors", keep)
    expected = rf"{re.escape(str(bert_copy / 'model.safetensors'))} is damaged or incomplete"
    with pytest.raises(ValueError, match=expected):
        build_transformer_model(checkpoint_path=bert_copy)


def test_a_truncated_shard_index_is_named_damaged(bert_pretraining, tmp_path):
    _directory, model = bert_pretraining
    sharded = tmp_path / "sharded"
    model.save_pretrained(sharded, max_shard_size="20KB")
    truncate(sharded / "model.safetensors.index.json")
    with pytest.raises(ValueError, match=r"model\.safetensors\.index\.json is damaged or incomplete"):
        build_transformer_model(checkpoint_path=sharded)
