"""Backend-neutral Keras 3 helpers for b4k3: ops, backend functions, losses and data snippets."""

from b4k3_ops.switches import check_keras_3

check_keras_3()

from b4k3_ops import backend, ops, snippets  # noqa: E402
from b4k3_ops.snippets import DataGenerator, sequence_padding, truncate_sequences  # noqa: E402

__version__ = "0.2.0"

__all__ = ["DataGenerator", "backend", "ops", "sequence_padding", "snippets", "truncate_sequences"]
