"""Finding a layer of a functional Keras model from one of its tensors."""

import keras


def search_layer(inputs, name, exclude_from=None):
    """The layer called `name` that `inputs` (a layer, or a symbolic tensor of a functional model)
    depends on, searching upwards through the layers that feed it (and into nested models);
    None if there is none."""
    exclude_from = set() if exclude_from is None else exclude_from
    if isinstance(inputs, keras.layers.Layer):
        layer = inputs
    else:
        history = getattr(inputs, "_keras_history", None)
        if history is None:
            raise TypeError(f"search_layer: expected a Keras layer or a symbolic Keras tensor, got {type(inputs)}")
        layer = history.operation
    if layer.name == name:
        return layer
    if id(layer) in exclude_from:
        return None
    exclude_from.add(id(layer))
    if isinstance(layer, keras.Model):
        for inner in layer.layers:
            if inner.name == name:
                return inner
    for node in layer._inbound_nodes:
        for tensor in node.input_tensors:
            found = search_layer(tensor, name, exclude_from)
            if found is not None:
                return found
    return None
