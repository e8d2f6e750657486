"""Reading model configs: bert4keras JSON files and Hugging Face `config.json`, whose keys each
family translates into its own arguments."""

import json
import pathlib

from b4k3_layers.feed_forward import gelu_tanh

# Hugging Face activation names -> Keras activations.
HF_ACTIVATIONS = {
    "gelu": "gelu",
    "gelu_new": gelu_tanh,
    "gelu_pytorch_tanh": gelu_tanh,
    "gelu_fast": gelu_tanh,
    "relu": "relu",
    "silu": "silu",
    "swish": "silu",
    "tanh": "tanh",
    "linear": "linear",
}


def hf_activation(name):
    """The Keras activation of a Hugging Face `hidden_act`."""
    if name not in HF_ACTIVATIONS:
        raise ValueError(f"Hugging Face hidden_act={name!r} is not supported; b4k3 knows {sorted(HF_ACTIVATIONS)}")
    return HF_ACTIVATIONS[name]


def hf_rope(hf_config):
    """`(max_wavelength, rope_scaling)` from a Hugging Face config: transformers 5's
    `rope_parameters`, or the older `rope_theta` + `rope_scaling`."""
    rope = dict(hf_config.get("rope_parameters") or hf_config.get("rope_scaling") or {})
    theta = rope.pop("rope_theta", hf_config.get("rope_theta", 10_000.0))
    rope_type = rope.get("rope_type", rope.get("type", "default"))
    return theta, (None if rope_type == "default" else rope)


def reject_unsupported(hf_config, **supported):
    """Raises a ValueError when a Hugging Face config sets a feature b4k3 does not implement,
    e.g. `position_embedding_type=("absolute", None)` (a missing key counts as None)."""
    for key, values in supported.items():
        if hf_config.get(key) not in values:
            raise ValueError(
                f"This Hugging Face {hf_config.get('model_type', '')} config sets {key}={hf_config.get(key)!r}, which "
                f"b4k3 does not implement (supported: {[value for value in values if value is not None]})"
            )


def is_hf_config(config):
    """Hugging Face configs name their `model_type`; bert4keras (Google) configs do not."""
    return "model_type" in config


def read_config(path):
    """The dict in a JSON config file, with an error that names the path when it is missing."""
    path = pathlib.Path(path)
    if path.is_dir():
        path = path / "config.json"
    if not path.is_file():
        raise FileNotFoundError(f"config_path {str(path)!r} does not exist: give the model's config.json")
    with open(path, encoding="utf-8") as file:
        return json.load(file)
