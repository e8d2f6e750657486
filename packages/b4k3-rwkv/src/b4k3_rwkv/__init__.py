"""RWKV6 for b4k3: its layers, the wkv kernel, the RWKV6 model and state tuning."""

__version__ = "0.2.0"
