"""bert4keras3.backend under its old name: the tensor helpers, losses and switches, on keras.ops."""

from b4k3_ops.attention_scores import attention_normalize
from b4k3_ops.losses import multilabel_categorical_crossentropy, sparse_multilabel_categorical_crossentropy
from b4k3_ops.masking import sequence_masking
from b4k3_ops.numerics import infinity, root_mean_square
from b4k3_ops.positions import apply_rotary_position_embeddings, sinusoidal_embeddings
from b4k3_ops.shapes import align, divisible_temporal_padding, flatten, reshape
from b4k3_ops.switches import flash_attention_enabled, lora_enabled

__all__ = [
    "align",
    "apply_rotary_position_embeddings",
    "attention_normalize",
    "divisible_temporal_padding",
    "flash_attention_enabled",
    "flatten",
    "infinity",
    "lora_enabled",
    "multilabel_categorical_crossentropy",
    "reshape",
    "root_mean_square",
    "sequence_masking",
    "sinusoidal_embeddings",
    "sparse_multilabel_categorical_crossentropy",
]


def __getattr__(name):
    """bert4keras3's switch flags `lora_model` and `enable_flashatt`, read when asked."""
    if name == "lora_model":
        return lora_enabled()
    if name == "enable_flashatt":
        return flash_attention_enabled()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
