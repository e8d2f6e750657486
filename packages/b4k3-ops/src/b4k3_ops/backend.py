"""bert4keras3.backend under its old name: `keras`, `K`, `ops`, the tensor helpers, activations,
losses and switches, on keras.ops. Nothing is patched: `K` is `keras.backend` plus `dtype`, and
`ops` is `b4k3_ops.ops`; bert4keras3's string names resolve after `register_custom_objects()`."""

import keras

from b4k3_ops import keras_backend as K
from b4k3_ops import ops
from b4k3_ops.activations import gelu_erf, gelu_tanh, leaky_relu, set_gelu, swish
from b4k3_ops.attention_scores import attention_normalize
from b4k3_ops.custom_objects import custom_objects, register_custom_objects
from b4k3_ops.graph import search_layer
from b4k3_ops.losses import multilabel_categorical_crossentropy, sparse_multilabel_categorical_crossentropy
from b4k3_ops.masking import get_sequence_masking, sequence_masking
from b4k3_ops.numerics import infinity, root_mean_square
from b4k3_ops.positions import Sinusoidal, apply_rotary_position_embeddings, sinusoidal_embeddings
from b4k3_ops.schedules import piecewise_linear
from b4k3_ops.shapes import align, batch_gather, divisible_temporal_padding, flatten, int_shape, reshape
from b4k3_ops.switches import flash_attention_enabled, lora_enabled

is_tf_keras = False  # b4k3 is Keras 3 only (TF_KERAS=1 is refused at import)


def recompute_grad(call):
    """bert4keras3's decorator for a layer's `call`; under Keras 3 it returns `call` unchanged, as
    bert4keras3's did unless RECOMPUTE=1 (gradient checkpointing is not offered)."""
    return call


__all__ = [
    "K",
    "Sinusoidal",
    "align",
    "apply_rotary_position_embeddings",
    "attention_normalize",
    "batch_gather",
    "custom_objects",
    "divisible_temporal_padding",
    "flash_attention_enabled",
    "flatten",
    "gelu_erf",
    "gelu_tanh",
    "get_sequence_masking",
    "infinity",
    "int_shape",
    "is_tf_keras",
    "keras",
    "leaky_relu",
    "lora_enabled",
    "multilabel_categorical_crossentropy",
    "ops",
    "piecewise_linear",
    "recompute_grad",
    "register_custom_objects",
    "reshape",
    "root_mean_square",
    "search_layer",
    "sequence_masking",
    "set_gelu",
    "sinusoidal_embeddings",
    "sparse_multilabel_categorical_crossentropy",
    "swish",
]


def __getattr__(name):
    """bert4keras3's switch flags `lora_model` and `enable_flashatt`, read when asked."""
    if name == "lora_model":
        return lora_enabled()
    if name == "enable_flashatt":
        return flash_attention_enabled()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
