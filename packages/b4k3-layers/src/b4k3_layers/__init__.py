"""Keras 3 transformer layers for b4k3: norms, feed-forward, embeddings, attention, global pointers."""

__version__ = "0.1.0"
