"""Fast KV-cache text generation for b4k3 models: logits processors, samplers and a compiled decode loop."""

from b4k3_generate.api import CacheModel, build_cache_model, generate, stream

__version__ = "0.2.0"

__all__ = ["CacheModel", "build_cache_model", "generate", "stream"]
