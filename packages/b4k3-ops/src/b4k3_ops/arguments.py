"""Decorators that add or remove keyword arguments of a method (mostly `__init__`), as
bert4keras3 subclasses use them."""

import functools


def insert_arguments(**arguments):
    """Adds keyword arguments with defaults: each is popped from the call's keywords (or takes its
    default) and set as an attribute of `self` before the method runs."""

    def decorator(method):
        @functools.wraps(method)
        def wrapped(self, *args, **kwargs):
            for name, default in arguments.items():
                setattr(self, name, kwargs.pop(name, default))
            return method(self, *args, **kwargs)

        return wrapped

    return decorator


def delete_arguments(*names):
    """Removes keyword arguments: passing one of `names` raises the TypeError Python gives for an
    unknown keyword."""

    def decorator(method):
        @functools.wraps(method)
        def wrapped(self, *args, **kwargs):
            for name in names:
                if name in kwargs:
                    raise TypeError(f"{type(self).__name__} got an unexpected keyword argument '{name}'")
            return method(self, *args, **kwargs)

        return wrapped

    return decorator
