"""Building the Dense sublayers of b4k3's layers."""

from b4k3_layers.trainability import Dense


def dense_sublayer(parent, name, units, input_shape, *, use_bias, kernel_initializer, activation=None):
    """A `Dense` owned by `parent`: same dtype policy (so a mixed precision policy reaches it),
    built at once for `input_shape` so its weights exist when `parent.build` returns."""
    dense = Dense(
        units,
        activation=activation,
        use_bias=use_bias,
        kernel_initializer=kernel_initializer,
        dtype=parent.dtype_policy,
        name=name,
    )
    dense.build(input_shape)
    return dense
