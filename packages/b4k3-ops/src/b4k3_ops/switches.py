"""The environment switches of bert4keras3, read in this one place.

`ENABLE_LORA=1` makes models train LoRA weights only; `FLASH_ATTN=1` routes attention through
`keras.ops.dot_product_attention` (flash attention where the backend and device support it).
Each is read when asked, so setting it after import works too. `TF_KERAS=1` (tf.keras, Keras 2)
is refused: b4k3 is Keras 3 only.
"""

import os

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"", "0", "false", "no", "off"}


def env_flag(name):
    """The boolean value of environment variable `name` (unset is False)."""
    value = os.environ.get(name, "").strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f"Environment variable {name}={os.environ[name]!r} is not a boolean: set it to 1 or 0.")


def lora_enabled():
    """`ENABLE_LORA=1`: models train LoRA weights (and norms) only."""
    return env_flag("ENABLE_LORA")


def flash_attention_enabled():
    """`FLASH_ATTN=1`: attention goes through `keras.ops.dot_product_attention`."""
    return env_flag("FLASH_ATTN")


def check_keras_3():
    """Refuses the Keras 2 switches of bert4keras3 with an error that says what to do instead."""
    if env_flag("TF_KERAS") or os.environ.get("KERAS_BACKEND") == "tfkeras":
        raise RuntimeError(
            "b4k3 runs on Keras 3 only; TF_KERAS=1 / KERAS_BACKEND=tfkeras (tf.keras, Keras 2) is not supported. "
            "Unset TF_KERAS and pick a Keras 3 backend: KERAS_BACKEND=jax, torch or tensorflow."
        )
