"""Backend-neutral Keras 3 helpers for b4k3: ops, backend functions, losses and data snippets."""

__version__ = "0.1.0"
