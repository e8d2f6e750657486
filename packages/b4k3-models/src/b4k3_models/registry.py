"""The one registry of model families: `build_transformer_model(model=...)` names, and the
Hugging Face `model_type`s b4k3 reads (each family translates its config, `from_hf_config`).

Families of packages above b4k3-models (RWKV6 lives in b4k3-rwkv, which imports this package)
are registered by name, `(package, module, class, install hint)`, and imported only when asked for."""

import importlib

from b4k3_models.albert import ALBERT, ALBERT_Unshared
from b4k3_models.bert import BERT
from b4k3_models.deberta import DeBERTa
from b4k3_models.electra import ELECTRA
from b4k3_models.gau import GAU_alpha
from b4k3_models.gpt import GPT, GPT2, GPT2_ML
from b4k3_models.llama import Gemma, Gemma2, Llama
from b4k3_models.nezha import NEZHA
from b4k3_models.roformer import RoFormer, RoFormerV2
from b4k3_models.t5 import T5, T5_VERSIONS, T5_Decoder, T5_Encoder

# name given to build_transformer_model (case-insensitive) -> family class
MODELS = {
    "bert": BERT,
    "roberta": BERT,
    "albert": ALBERT,
    "albert_unshared": ALBERT_Unshared,
    "electra": ELECTRA,
    "deberta": DeBERTa,
    "deberta_v2": DeBERTa,
    "deberta_v3": DeBERTa,
    "mdeberta": DeBERTa,
    "nezha": NEZHA,
    "roformer": RoFormer,
    "roformer_v2": RoFormerV2,
    "gau": GAU_alpha,
    "gau_alpha": GAU_alpha,
    "gpt": GPT,
    "gpt2": GPT2,
    "gpt2_ml": GPT2_ML,
    "gemma": Gemma,
    "gemma2": Gemma2,
    "llama": Llama,
    "qwen": Llama,
    "yi": Llama,
    "t5": T5,
    "t5_encoder": T5_Encoder,
    "t5_decoder": T5_Decoder,
    "rwkv6": ("b4k3-rwkv", "b4k3_rwkv", "RWKV6", "pip install ./packages/b4k3-rwkv"),
}
# bert4keras3's T5 names with a version, e.g. 'mt5.1.1_encoder': the version they imply.
for _version in T5_VERSIONS:
    MODELS.update({_version: T5, f"{_version}_encoder": T5_Encoder, f"{_version}_decoder": T5_Decoder})
MODEL_VERSIONS = {name: name.split("_")[0] for name in MODELS if name.split("_")[0] in T5_VERSIONS}

# Hugging Face model_type -> name in MODELS
HF_MODEL_TYPES = {
    "bert": "bert",
    "roberta": "roberta",
    "xlm-roberta": "roberta",
    "albert": "albert",
    "electra": "electra",
    "deberta-v2": "deberta",
    "nezha": "nezha",
    "roformer": "roformer",
    "gau_alpha": "gau",
    "openai-gpt": "gpt",
    "gpt2": "gpt2",
    "llama": "llama",
    "qwen2": "qwen",
    "gemma": "gemma",
    "gemma2": "gemma2",
    "t5": "t5",
    "mt5": "t5",
    "umt5": "t5",
}
# Hugging Face architectures that are another family than their model_type's.
HF_ARCHITECTURES = {"T5EncoderModel": "t5_encoder", "MT5EncoderModel": "t5_encoder", "UMT5EncoderModel": "t5_encoder"}


def model_version(model):
    """The version a model name implies ('mt5.1.1_encoder' -> 'mt5.1.1'), or None."""
    return None if isinstance(model, type) else MODEL_VERSIONS.get(str(model).lower())


def lookup_model(model):
    """The family class registered as `model` (a name, or a class returned as is)."""
    if isinstance(model, type):
        return model
    key = str(model).lower()
    if key not in MODELS:
        raise ValueError(f"Unknown model {model!r}; b4k3 knows {sorted(MODELS)}")
    family = MODELS[key]
    if isinstance(family, tuple):
        package, module, name, install = family
        try:
            family = getattr(importlib.import_module(module), name)
        except ImportError as error:
            raise ImportError(f"model={model!r} needs the {package} package: {install} from a b4k3 checkout") from error
    return family


def translate_hf_config(hf_config):
    """`(model name, b4k3 config)` from a Hugging Face config dict."""
    model_type = hf_config.get("model_type")
    if model_type not in HF_MODEL_TYPES:
        raise ValueError(
            f"Hugging Face model_type {model_type!r} is not supported; b4k3 reads {sorted(HF_MODEL_TYPES)}"
        )
    model = HF_MODEL_TYPES[model_type]
    if model == "roformer" and hf_config.get("norm_type") == "rms_norm":
        model = "roformer_v2"  # JunnYu's RoFormerV2 checkpoints say model_type 'roformer'
    for architecture in hf_config.get("architectures") or ():
        model = HF_ARCHITECTURES.get(architecture, model)
    return model, MODELS[model].from_hf_config(hf_config)
