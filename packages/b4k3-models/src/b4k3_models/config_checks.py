"""Checks of `build_transformer_model`'s paths and configs before anything is built, so a typo
or a half-filled config is named instead of falling back to a BERT that then reports BERT's
missing keys."""

import json
import pathlib

from b4k3_models.checkpoints import HF_CONFIG_FILE
from b4k3_models.gguf_checkpoint import is_gguf_file
from b4k3_models.hf_configs import read_config
from b4k3_models.registry import HF_MODEL_TYPES

# The class-name prefix of Hugging Face architectures (`"architectures": ["LlamaForCausalLM"]`)
# -> their model_type; longer prefixes first, as "Gemma2" starts with "Gemma".
ARCHITECTURE_PREFIXES = {
    "XLMRoberta": "xlm-roberta",
    "Roberta": "roberta",
    "Bert": "bert",
    "Albert": "albert",
    "Electra": "electra",
    "Nezha": "nezha",
    "Llama": "llama",
    "Qwen2": "qwen2",
    "Gemma2": "gemma2",
    "Gemma": "gemma",
}


def check_checkpoint_path(checkpoint_path, config_path):
    """Raises FileNotFoundError when `checkpoint_path` (a path) names nothing, and ValueError when
    it is a file inside a Hugging Face directory given without a config (the directory was meant;
    a GGUF file, which holds its config, is not).
    A TF checkpoint prefix (`.../bert_model.ckpt`, whose `.index` file exists) is accepted."""
    if not isinstance(checkpoint_path, (str, pathlib.Path)):
        return
    path = pathlib.Path(checkpoint_path)
    if not path.exists() and not pathlib.Path(f"{path}.index").is_file():
        hint = f" (its folder {str(path.parent)!r} exists)" if path.parent.is_dir() else ""
        raise FileNotFoundError(
            f"checkpoint_path {str(path)!r} does not exist{hint}: give a Hugging Face model directory, a TF "
            "checkpoint prefix such as '.../bert_model.ckpt', or a {name: array} dict"
        )
    if config_path is None and path.is_file() and not is_gguf_file(path) and (path.parent / HF_CONFIG_FILE).is_file():
        raise ValueError(
            f"checkpoint_path {str(path)!r} is a file of the Hugging Face directory {str(path.parent)!r}: "
            f"pass the directory, checkpoint_path={str(path.parent)!r}"
        )


def read_config_file(config_path):
    """`read_config`, with a file that is not valid JSON (cut short by a failed download, or
    edited by hand) named as damaged or incomplete."""
    try:
        return read_config(config_path)
    except json.JSONDecodeError as error:
        raise ValueError(
            f"The config {str(config_path)!r} is damaged or incomplete: it is not valid JSON ({error}); "
            "download or write it again"
        ) from error


def with_model_type(config, config_path):
    """`config` with the `model_type` its `architectures` imply, when it has those but not that.

    Raises a ValueError naming the config and the missing key when no architecture is one b4k3
    reads. A config with neither key (bert4keras' or Google's) is returned as is."""
    architectures = config.get("architectures")
    if "model_type" in config or not architectures:
        return config
    for architecture in architectures:
        for prefix, model_type in ARCHITECTURE_PREFIXES.items():
            if str(architecture).startswith(prefix):
                return {**config, "model_type": model_type}
    raise ValueError(
        f"The config {str(config_path)!r} has no model_type, and its architectures {architectures} are none b4k3 "
        f'reads: add "model_type" (one of {sorted(HF_MODEL_TYPES)}), or pass model=<a b4k3 family>'
    )
