"""The one registry of model families: `build_transformer_model(model=...)` names, and the
Hugging Face `model_type`s b4k3 reads (each family translates its config, `from_hf_config`)."""

from b4k3_models.albert import ALBERT, ALBERT_Unshared
from b4k3_models.bert import BERT
from b4k3_models.electra import ELECTRA
from b4k3_models.gau import GAU_alpha
from b4k3_models.gpt import GPT, GPT2, GPT2_ML
from b4k3_models.llama import Gemma, Gemma2, Llama
from b4k3_models.nezha import NEZHA
from b4k3_models.roformer import RoFormer, RoFormerV2

# name given to build_transformer_model (case-insensitive) -> family class
MODELS = {
    "bert": BERT,
    "roberta": BERT,
    "albert": ALBERT,
    "albert_unshared": ALBERT_Unshared,
    "electra": ELECTRA,
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
}

# Hugging Face model_type -> name in MODELS
HF_MODEL_TYPES = {
    "bert": "bert",
    "roberta": "roberta",
    "xlm-roberta": "roberta",
    "albert": "albert",
    "electra": "electra",
    "nezha": "nezha",
    "roformer": "roformer",
    "gau_alpha": "gau",
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
    return MODELS[key]


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
    return model, MODELS[model].from_hf_config(hf_config)
