"""Opening a GGUF file (llama.cpp's model format) with the `gguf` package, the format's own
reader: the file is parsed, never executed, and a damaged or foreign one is an error that names it."""

import pathlib


def open_gguf(path):
    """A `gguf.GGUFReader` of `path` (memory-mapped: no tensor is read yet)."""
    try:
        from gguf import GGUFReader
    except ImportError:
        raise ImportError(
            "Reading GGUF files needs the gguf package: pip install gguf (the [gguf] extra of b4k3-tokenize)"
        ) from None
    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No GGUF file at {str(path)!r}")
    try:
        return GGUFReader(path)
    except Exception as error:  # the gguf package raises ValueError, IndexError, struct errors ...
        raise ValueError(
            f"{path} is not a readable GGUF file ({type(error).__name__}: {error}); is it truncated, or another format?"
        ) from error


def gguf_value(reader, key, default=None):
    """The metadata value stored under `key` (a number, string, or list), or `default`."""
    field = reader.fields.get(key)
    return default if field is None else field.contents()
