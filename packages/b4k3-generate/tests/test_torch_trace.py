"""torch's fast decode step (`jit_compile='auto'`: a TorchScript trace of the step, see
`b4k3_generate.torch_trace`) against the portable eager path (`jit_compile=False`): the traced
model call gives the eager logits and cache (fp32, 1e-5), and generation gives the same tokens,
greedy and seeded sampling, on a Llama (rotary, grouped heads), GPT-2 (learned positions) and
Gemma2 (soft caps, sliding window). A step that cannot be traced runs eagerly and says so. The
parity with Hugging Face of the traced path is the other generation tests' (torch's default)."""

import keras
import numpy as np
import pytest
from family_checks import decoder_and_reference

from b4k3_generate import generate
from b4k3_generate.loop import decoding_variables
from b4k3_generate.torch_trace import traced

pytestmark = pytest.mark.skipif(keras.backend.backend() != "torch", reason="the traced step is torch's")

PROMPTS = [[5, 17, 0, 42, 8, 3, 11], [9, 4], [23, 0, 61, 7]]
NEW_TOKENS = 10


@pytest.fixture(scope="module", params=["llama_gqa", "gpt2", "gemma2"])
def transformer(request, tmp_path_factory):
    return decoder_and_reference(request.param, tmp_path_factory)[0]


def to_numpy(tree):
    return [keras.ops.convert_to_numpy(leaf) for leaf in keras.tree.flatten(tree)]


def test_traced_model_call_gives_the_eager_logits_and_cache(transformer):
    """Prefilled ragged rows, then two steps each at its own position, through both."""
    import torch

    fast = traced(decoding_variables(transformer), transformer.call_with_cache)
    with torch.inference_mode():
        cache = transformer.build_cache(3, 16)
        tokens = np.array([[5, 17, 0, 42], [9, 4, 0, 0], [23, 0, 61, 7]], dtype="int32")
        _, cache = transformer.call_with_cache(tokens, cache, 0)
        positions = np.array([4, 2, 4], dtype="int32")
        fast_cache = cache
        for token in ([[8], [3], [1]], [[2], [6], [9]]):
            token = np.array(token, dtype="int32")
            expected, cache = transformer.call_with_cache(token, cache, positions)
            logits, fast_cache = fast(torch.as_tensor(token), fast_cache, torch.as_tensor(positions))
            np.testing.assert_allclose(to_numpy(logits)[0], to_numpy(expected)[0], rtol=1e-5, atol=1e-5)
            for got, want in zip(to_numpy(fast_cache), to_numpy(cache), strict=True):
                np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
            positions = positions + 1


@pytest.mark.parametrize("settings", [{}, {"search_mode": "topk", "k": 5, "seed": 3}, {"penalty": 1.5}])
def test_generation_equals_the_eager_path(transformer, settings):
    fast = generate(transformer, PROMPTS, NEW_TOKENS, **settings)
    assert fast == generate(transformer, PROMPTS, NEW_TOKENS, jit_compile=False, **settings)


def test_a_step_that_cannot_be_traced_runs_eagerly_with_a_warning():
    import torch

    def returns_a_string(x):
        return x, "not a tensor"

    run = traced([], returns_a_string)
    with pytest.warns(UserWarning, match="could not trace the decode step"):
        output = run(torch.ones(2))
    assert output[1] == "not a tensor"
