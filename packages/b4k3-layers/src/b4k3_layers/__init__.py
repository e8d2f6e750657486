"""Keras 3 transformer layers for b4k3: norms, feed-forward, embeddings, attention, global pointers."""

from b4k3_layers.attention import MultiHeadAttention
from b4k3_layers.embeddings import (
    Embedding,
    PositionEmbedding,
    RelativePositionEmbedding,
    RelativePositionEmbeddingT5,
    SinusoidalPositionEmbedding,
)
from b4k3_layers.feed_forward import FeedForward, GemmaFeedForward, LLamaFeedForward
from b4k3_layers.gated_attention import GatedAttentionUnit
from b4k3_layers.global_pointer import EfficientGlobalPointer, GlobalPointer
from b4k3_layers.lora import enable_lora
from b4k3_layers.norms import GroupNorm, LayerNormalization, LlamaLayerNorm, RMSNormalization, ScaleOffset
from b4k3_layers.rotary import RotaryEmbedding

__version__ = "0.2.0"

__all__ = [
    "EfficientGlobalPointer",
    "Embedding",
    "FeedForward",
    "GatedAttentionUnit",
    "GemmaFeedForward",
    "GlobalPointer",
    "GroupNorm",
    "LLamaFeedForward",
    "LayerNormalization",
    "LlamaLayerNorm",
    "MultiHeadAttention",
    "PositionEmbedding",
    "RMSNormalization",
    "RelativePositionEmbedding",
    "RelativePositionEmbeddingT5",
    "RotaryEmbedding",
    "ScaleOffset",
    "SinusoidalPositionEmbedding",
    "enable_lora",
]
