"""`TransformerModel`: the Keras model `build_transformer_model` returns, which checks NumPy
inputs before Keras runs them.

An id outside an embedding table gives NaN on some backends and a silently wrapped or clamped
row on others, and a sequence longer than a learned position table fails deep inside a compiled
function (on JAX, Keras' trainer then fails every later call of that model). Neither can be
checked inside a compiled graph, so `predict`, `__call__`, `fit`, `evaluate` and the `*_on_batch`
methods check their NumPy (or list) inputs first and raise a ValueError naming the input, the id
and the valid range. Tensors of a backend pass unchecked.

What fails anyway (a backend tensor too long, memory) no longer breaks the model on JAX:
`restored_on_failure` gives the variables back their values.
"""

import contextlib

import keras
import numpy as np

from b4k3_layers import PositionEmbedding


def _as_array(value):
    """`value` as a NumPy array of numbers when it is an array or a (nested) list of numbers."""
    if isinstance(value, np.ndarray):
        return value if value.dtype.kind in "iuf" else None
    if not isinstance(value, (list, tuple)):
        return None
    try:
        array = np.asarray(value)
    except (TypeError, ValueError):  # ragged, or holding tensors
        return None
    return array if array.dtype.kind in "iuf" else None


def _table_size(layer):
    return layer.input_dim**2 if layer.hierarchical else layer.input_dim


@contextlib.contextmanager
def restored_on_failure(model):
    """A `fit`, `evaluate` or `predict` that raises leaves the model usable, then re-raises.

    On JAX, Keras takes the variables' values out of the model while these run
    (`_purge_model_variables`) and puts them back only when they end normally: after an exception
    every later call failed with "'NoneType' object is not callable". They are put back (the last
    state Keras synced, else the values from before the call). On TensorFlow the half-traced
    train function failed the next `fit` ("Creating variables on a non-first call"): the compiled
    functions are dropped, to be traced again on the next call."""
    try:
        with _jax_variables_restored(model):
            yield
    except BaseException:
        model.train_function = model.test_function = model.predict_function = None
        raise


@contextlib.contextmanager
def _jax_variables_restored(model):
    if keras.backend.backend() != "jax":
        yield
        return
    variables = list(model.variables) + list(model.metrics_variables)
    if getattr(model, "optimizer", None) is not None:
        variables += list(model.optimizer.variables)
    before = [(variable, variable._value) for variable in variables]
    try:
        yield
    except BaseException:
        if getattr(model, "_jax_state", None) and not model._jax_state_synced:
            model.jax_state_sync()
        for variable, value in before:
            if variable._value is None:
                variable._value = value
        model._jax_state, model._jax_state_synced = None, True
        raise


@keras.saving.register_keras_serializable(package="b4k3")
class TransformerModel(keras.Model):
    """A functional `keras.Model` that refuses out-of-range ids and too-long NumPy inputs."""

    def input_limits(self):
        """`{input index: (largest id + 1, the table's layer name)}` for the inputs read by an
        embedding table, and the longest sequence a learned position table allows (None: any)."""
        ids, longest = {}, None
        indices = {id(tensor): index for index, tensor in enumerate(self.inputs)}
        for layer in self.layers:
            for node in layer._inbound_nodes:
                read = [indices[id(tensor)] for tensor in node.input_tensors if id(tensor) in indices]
                if isinstance(layer, keras.layers.Embedding) and read:
                    ids[read[0]] = (layer.input_dim, layer.name)
                elif isinstance(layer, PositionEmbedding):
                    if layer.custom_position_ids and read:
                        ids[read[-1]] = (_table_size(layer), layer.name)
                    elif not layer.custom_position_ids:
                        longest = _table_size(layer) if longest is None else min(longest, _table_size(layer))
        return ids, longest

    def check_inputs(self, x):
        """Raises a ValueError for an id outside its table or a sequence longer than the positions."""
        arrays = self._numpy_inputs(x)
        if not arrays:
            return
        ids, longest = self.input_limits()
        for index, array in arrays.items():
            name = self.inputs[index].name
            if longest is not None and array.ndim >= 2 and array.shape[1] > longest:
                raise ValueError(
                    f"{name}: sequences of {array.shape[1]} tokens are longer than the model's {longest} positions; "
                    f"truncate them (e.g. the tokenizer's maxlen={longest})"
                )
            if index in ids and array.size:
                size, table = ids[index]
                bad = array[(array < 0) | (array >= size)]
                if bad.size:
                    raise ValueError(
                        f"{name}: id {bad.flat[0]} is outside 0..{size - 1} (the ids {table} has rows for); "
                        f"{bad.size} ids are out of range"
                    )

    def _numpy_inputs(self, x):
        """`{input index: array}` of the NumPy arrays or lists among `x`."""
        if isinstance(x, dict):
            names = [tensor.name for tensor in self.inputs]
            items = [(names.index(name), value) for name, value in x.items() if name in names]
        elif isinstance(x, (list, tuple)) and len(self.inputs) > 1:
            items = list(enumerate(x))
        else:
            items = [(0, x)]
        arrays = {index: _as_array(value) for index, value in items}
        return {index: array for index, array in arrays.items() if array is not None}

    def __call__(self, *args, **kwargs):
        self.check_inputs(args[0] if args else kwargs.get("inputs"))
        return super().__call__(*args, **kwargs)

    def predict(self, x, *args, **kwargs):
        self.check_inputs(x)
        with restored_on_failure(self):
            return super().predict(x, *args, **kwargs)

    def predict_on_batch(self, x):
        self.check_inputs(x)
        return super().predict_on_batch(x)

    def fit(self, x=None, *args, **kwargs):
        self.check_inputs(x)
        with restored_on_failure(self):
            return super().fit(x, *args, **kwargs)

    def evaluate(self, x=None, *args, **kwargs):
        self.check_inputs(x)
        with restored_on_failure(self):
            return super().evaluate(x, *args, **kwargs)

    def train_on_batch(self, x, *args, **kwargs):
        self.check_inputs(x)
        return super().train_on_batch(x, *args, **kwargs)

    def test_on_batch(self, x, *args, **kwargs):
        self.check_inputs(x)
        return super().test_on_batch(x, *args, **kwargs)
