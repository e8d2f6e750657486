"""Transformer model families for b4k3 and the readers of their pretrained checkpoints."""

__version__ = "0.1.0"
