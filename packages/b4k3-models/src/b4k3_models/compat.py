"""What `from bert4keras3.models import *` gave, for code written against bert4keras3:
`from b4k3_models.compat import *` brings `np`, `json`, `keras`, `K`, `ops`, `Model`, every Keras
layer, every b4k3 layer (under bert4keras3's names, which win over Keras' same-named ones:
`Embedding`, `LayerNormalization`, `MultiHeadAttention`, `GlobalMaxPooling1D`, ...), the
backend helpers and the model builders.

Importing it also does what importing bert4keras3 did to Keras' names: bert4keras3's string
names ('gelu_tanh', 'multilabel_categorical_crossentropy', 'Sinusoidal', 'initializer', ...)
resolve in layers, configs and `compile` (`b4k3_ops.backend.register_custom_objects`). Nothing
else is patched, and `b4k3_models` itself exports none of this.
"""

# isort: off
# No __all__: a star import gives every public name here, as bert4keras3.models' did. The order
# matters: b4k3's layers come after Keras' so that bert4keras3's names win.
import json  # noqa: F401
import numpy as np  # noqa: F401
from keras.layers import *  # noqa: F403
from keras.models import Model  # noqa: F401
from b4k3_ops.backend import *  # noqa: F403
from b4k3_ops.backend import register_custom_objects
from b4k3_ops.snippets import delete_arguments, insert_arguments, is_string, orthogonally_resize, string_matching  # noqa: F401
from b4k3_layers import *  # noqa: F403
from b4k3_models import *  # noqa: F403

# isort: on

register_custom_objects()
