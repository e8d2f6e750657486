"""Adding names to Keras' own tables of activations and losses, for the bert4keras3 switches that
are global by design (`set_gelu`, `register_custom_objects`).

Keras 3 resolves an activation or loss given as a string (`Dense(activation='gelu_tanh')`,
`compile(loss=...)`) from its built-in tables only, not from registered custom objects; these
functions are the one place that writes to those tables. Nothing here runs at import.
"""

import importlib

_ORIGINALS = {}


def _table(kind):
    module = importlib.import_module(f"keras.src.{kind}")
    table = getattr(module, "ALL_OBJECTS_DICT", None)
    if not isinstance(table, dict):
        raise RuntimeError(
            f"This Keras version has no table of {kind} names (keras.src.{kind}.ALL_OBJECTS_DICT); pass the "
            "function itself instead of its name"
        )
    return table


def set_keras_name(kind, name, function):
    """Makes the string `name` resolve to `function` in Keras' `kind` table ('activations' or
    'losses'); the first change of a built-in name keeps the original for `restore_keras_name`."""
    table = _table(kind)
    _ORIGINALS.setdefault((kind, name), table.get(name))
    table[name] = function


def restore_keras_name(kind, name):
    """Undoes `set_keras_name` for `name`: Keras' own meaning, or no entry if it had none."""
    if (kind, name) not in _ORIGINALS:
        return
    original, table = _ORIGINALS.pop((kind, name)), _table(kind)
    if original is None:
        table.pop(name, None)
    else:
        table[name] = original
