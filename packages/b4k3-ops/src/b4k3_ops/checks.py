"""Argument checks shared by the layers and models: each error names the owner and the value."""

import numbers


def check_positive_int(owner, **values):
    """Raises a ValueError naming the first of `values` that is not a positive integer."""
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
            raise ValueError(f"{owner}: `{name}` must be a positive integer, got {value!r}")
