"""Reading the `input_shape` Keras hands to `build` and `compute_output_shape`."""


def as_shape_list(input_shape):
    """One shape or a list of shapes (a layer called on a list), always as a list of tuples.

    A saved model hands back shapes as JSON lists, so a single shape may arrive as a list of ints:
    what decides is whether the entries are shapes themselves.
    """
    if input_shape and isinstance(input_shape[0], (list, tuple)):
        return [tuple(shape) for shape in input_shape]
    return [tuple(input_shape)]
