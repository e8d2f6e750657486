"""Fast KV-cache text generation for b4k3 models: logits processors, samplers and a compiled decode loop."""

__version__ = "0.1.0"
