"""The one registry of model families: `build_transformer_model(model=...)` names, and the
Hugging Face `model_type`s b4k3 reads (each family translates its config, `from_hf_config`).

Families of packages above b4k3-models (RWKV6 lives in b4k3-rwkv, which imports this package)
are registered by name, `(package, module, class)`, and imported only when asked for."""

import importlib

from b4k3_models.bert import BERT
from b4k3_models.gpt import GPT, GPT2, GPT2_ML
from b4k3_models.llama import Gemma, Gemma2, Llama

# name given to build_transformer_model (case-insensitive) -> family class
MODELS = {
    "bert": BERT,
    "roberta": BERT,
    "gpt": GPT,
    "gpt2": GPT2,
    "gpt2_ml": GPT2_ML,
    "gemma": Gemma,
    "gemma2": Gemma2,
    "llama": Llama,
    "qwen": Llama,
    "yi": Llama,
    "rwkv6": ("b4k3-rwkv", "b4k3_rwkv", "RWKV6"),
}

# Hugging Face model_type -> name in MODELS
HF_MODEL_TYPES = {
    "bert": "bert",
    "roberta": "roberta",
    "xlm-roberta": "roberta",
    "openai-gpt": "gpt",
    "gpt2": "gpt2",
    "llama": "llama",
    "qwen2": "qwen",
    "gemma": "gemma",
    "gemma2": "gemma2",
}


def lookup_model(model):
    """The family class registered as `model` (a name, or a class returned as is)."""
    if isinstance(model, type):
        return model
    key = str(model).lower()
    if key not in MODELS:
        raise ValueError(f"Unknown model {model!r}; b4k3 knows {sorted(MODELS)}")
    family = MODELS[key]
    if isinstance(family, tuple):
        package, module, name = family
        try:
            family = getattr(importlib.import_module(module), name)
        except ImportError as error:
            raise ImportError(
                f"model={model!r} needs the {package} package: pip install ./packages/{package} from a b4k3 checkout"
            ) from error
    return family


def translate_hf_config(hf_config):
    """`(model name, b4k3 config)` from a Hugging Face config dict."""
    model_type = hf_config.get("model_type")
    if model_type not in HF_MODEL_TYPES:
        raise ValueError(
            f"Hugging Face model_type {model_type!r} is not supported; b4k3 reads {sorted(HF_MODEL_TYPES)}"
        )
    model = HF_MODEL_TYPES[model_type]
    return model, MODELS[model].from_hf_config(hf_config)
