"""Argument checks shared by the layers and models: each error names the owner and the value."""

import numbers


def check_positive_int(owner, **values):
    """Raises a ValueError naming the first of `values` that is not a positive integer."""
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
            raise ValueError(f"{owner}: `{name}` must be a positive integer, got {value!r}")


def check_bool(owner, **values):
    """Raises a TypeError naming the first of `values` that is not True or False."""
    for name, value in values.items():
        if not isinstance(value, bool):
            raise TypeError(f"{owner}: `{name}` must be True or False, got {value!r}")
