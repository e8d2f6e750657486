"""Transformer model families for b4k3 and the readers of their pretrained checkpoints."""

from b4k3_models.albert import ALBERT, ALBERT_Unshared
from b4k3_models.bert import BERT
from b4k3_models.build import build_transformer_model
from b4k3_models.checkpoints import DictCheckpoint, SafetensorsCheckpoint, TFCheckpoint, open_checkpoint
from b4k3_models.deberta import DeBERTa
from b4k3_models.distribution import get_layout_map
from b4k3_models.electra import ELECTRA
from b4k3_models.gau import GAU_alpha
from b4k3_models.gguf_checkpoint import GGUFCheckpoint
from b4k3_models.gpt import GPT, GPT2, GPT2_ML
from b4k3_models.keras_weights import load_keras_weights
from b4k3_models.language_models import (
    LM_Mask,
    UniLM_Mask,
    extend_with_language_model,
    extend_with_unified_language_model,
)
from b4k3_models.llama import Gemma, Gemma2, Llama
from b4k3_models.nezha import NEZHA
from b4k3_models.registry import MODELS
from b4k3_models.roformer import RoFormer, RoFormerV2
from b4k3_models.t5 import T5, T5_Decoder, T5_Encoder
from b4k3_models.transformer import Transformer
from b4k3_models.weight_maps import CheckpointMismatchError, CheckpointMismatchWarning, Weight

__version__ = "0.2.0"

__all__ = [
    "ALBERT",
    "BERT",
    "ELECTRA",
    "GPT",
    "GPT2",
    "GPT2_ML",
    "MODELS",
    "NEZHA",
    "T5",
    "ALBERT_Unshared",
    "CheckpointMismatchError",
    "CheckpointMismatchWarning",
    "DeBERTa",
    "DictCheckpoint",
    "GAU_alpha",
    "GGUFCheckpoint",
    "Gemma",
    "Gemma2",
    "LM_Mask",
    "Llama",
    "RoFormer",
    "RoFormerV2",
    "SafetensorsCheckpoint",
    "T5_Decoder",
    "T5_Encoder",
    "TFCheckpoint",
    "Transformer",
    "UniLM_Mask",
    "Weight",
    "build_transformer_model",
    "extend_with_language_model",
    "extend_with_unified_language_model",
    "get_layout_map",
    "load_keras_weights",
    "open_checkpoint",
]
