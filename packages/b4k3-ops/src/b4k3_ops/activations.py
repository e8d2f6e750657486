"""bert4keras3's activation functions and its `set_gelu` switch."""

import keras

from b4k3_ops.keras_tables import restore_keras_name, set_keras_name


@keras.saving.register_keras_serializable(package="b4k3")
def gelu_tanh(x):
    """GELU with the tanh approximation (Hugging Face's `gelu_new` / `gelu_pytorch_tanh`)."""
    return keras.ops.gelu(x, approximate=True)


@keras.saving.register_keras_serializable(package="b4k3")
def gelu_erf(x):
    """The exact GELU, `0.5 x (1 + erf(x / sqrt 2))` (Keras' own `'gelu'`)."""
    return keras.ops.gelu(x, approximate=False)


@keras.saving.register_keras_serializable(package="b4k3")
def swish(x):
    """`x * sigmoid(x)` (SiLU)."""
    return keras.ops.silu(x)


@keras.saving.register_keras_serializable(package="b4k3")
def leaky_relu(x, alpha=0.2):
    """`x` where positive, `alpha * x` elsewhere."""
    return keras.ops.leaky_relu(x, negative_slope=alpha)


GELU_VERSIONS = {"erf": gelu_erf, "tanh": gelu_tanh}
# bert4keras3's activation names that Keras lacks ('swish' and 'leaky_relu' are Keras' own).
BERT4KERAS3_ACTIVATIONS = {"gelu_tanh": gelu_tanh, "gelu_erf": gelu_erf}


def get_activation(identifier):
    """`keras.activations.get` that also knows bert4keras3's names ('gelu_tanh', 'gelu_erf'), so
    b4k3's layers take them in code and configs (a bert4keras3 `config.json`'s `hidden_act`)
    without registering them with Keras."""
    if isinstance(identifier, str) and identifier in BERT4KERAS3_ACTIVATIONS:
        return BERT4KERAS3_ACTIVATIONS[identifier]
    return keras.activations.get(identifier)


def set_gelu(version):
    """Sets what the activation name `'gelu'` means from now on, for every layer built after the
    call (b4k3's and Keras' own): `'erf'` (exact, Keras' default) or `'tanh'` (the approximation
    of the original BERT code and GPT-2). This is bert4keras3's global switch; call it before
    building the model.
    """
    version = str(version).lower()
    if version not in GELU_VERSIONS:
        raise ValueError(f"set_gelu: version must be 'erf' or 'tanh', got {version!r}")
    if version == "erf":
        restore_keras_name("activations", "gelu")  # Keras' own 'gelu' is the exact one
    else:
        set_keras_name("activations", "gelu", gelu_tanh)
