"""The string names bert4keras3 registered with Keras, and the one call that makes them resolve."""

import keras

from b4k3_ops.activations import gelu_erf, gelu_tanh, leaky_relu, swish
from b4k3_ops.keras_tables import set_keras_name
from b4k3_ops.losses import multilabel_categorical_crossentropy
from b4k3_ops.numerics import root_mean_square
from b4k3_ops.positions import Sinusoidal

custom_objects = {
    "gelu_erf": gelu_erf,
    "gelu_tanh": gelu_tanh,
    "root_mean_square": root_mean_square,
    "swish": swish,
    "leaky_relu": leaky_relu,
    "Sinusoidal": Sinusoidal,
    "multilabel_categorical_crossentropy": multilabel_categorical_crossentropy,
    "initializer": keras.initializers.GlorotUniform,
}

_ACTIVATIONS = ("gelu_erf", "gelu_tanh", "root_mean_square")
_LOSSES = ("multilabel_categorical_crossentropy",)
_INITIALIZERS = ("Sinusoidal", "initializer")


def register_custom_objects():
    """Makes bert4keras3's names resolve where Keras takes a string: `Dense(activation='gelu_tanh')`,
    `compile(loss='multilabel_categorical_crossentropy')`, `embeddings_initializer='Sinusoidal'`,
    and configs that name them. bert4keras3 did this when imported; b4k3 does it when asked
    (`b4k3_models.bert4keras3` asks). Keras' own names ('gelu', 'swish', 'leaky_relu') keep their
    meaning, which is bert4keras3's.
    """
    for name in _ACTIVATIONS:
        set_keras_name("activations", name, custom_objects[name])
    for name in _LOSSES:
        set_keras_name("losses", name, custom_objects[name])
    keras.saving.get_custom_objects().update({name: custom_objects[name] for name in _INITIALIZERS})
