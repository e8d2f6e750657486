"""Keras 3 transformer layers for b4k3: norms, feed-forward, embeddings, attention, global pointers."""

from b4k3_layers.attention import MultiHeadAttention
from b4k3_layers.batch_and_sequence import BatchConcat, BatchSplit, Concatenate1D
from b4k3_layers.embeddings import (
    DebertaRelativeEmbedding,
    Embedding,
    PositionEmbedding,
    RelativePositionEmbedding,
    RelativePositionEmbeddingT5,
    Sinusoidal,
    SinusoidalPositionEmbedding,
)
from b4k3_layers.feed_forward import FeedForward, GemmaFeedForward, LLamaFeedForward
from b4k3_layers.gated_attention import GatedAttentionUnit
from b4k3_layers.global_pointer import EfficientGlobalPointer, GlobalPointer
from b4k3_layers.lora import enable_lora, load_lora_adapters, merge_lora_adapters, save_lora_adapters
from b4k3_layers.loss import Loss
from b4k3_layers.norms import GroupNorm, LayerNormalization, LlamaLayerNorm, RMSNormalization, ScaleOffset
from b4k3_layers.pooling import GlobalAveragePooling1D, GlobalMaxPooling1D
from b4k3_layers.rotary import RotaryEmbedding

__version__ = "0.2.0"

__all__ = [
    "BatchConcat",
    "BatchSplit",
    "Concatenate1D",
    "DebertaRelativeEmbedding",
    "EfficientGlobalPointer",
    "Embedding",
    "FeedForward",
    "GatedAttentionUnit",
    "GemmaFeedForward",
    "GlobalAveragePooling1D",
    "GlobalMaxPooling1D",
    "GlobalPointer",
    "GroupNorm",
    "LLamaFeedForward",
    "LayerNormalization",
    "LlamaLayerNorm",
    "Loss",
    "MultiHeadAttention",
    "PositionEmbedding",
    "RMSNormalization",
    "RelativePositionEmbedding",
    "RelativePositionEmbeddingT5",
    "RotaryEmbedding",
    "ScaleOffset",
    "Sinusoidal",
    "SinusoidalPositionEmbedding",
    "enable_lora",
    "load_lora_adapters",
    "merge_lora_adapters",
    "save_lora_adapters",
]
