"""The decoding protocol of the decoder-only families (`build_cache`, `call_with_cache`) gives
the logits of the full pass: a prompt prefilled at 0 then one token at a time (one index for the
batch), and ragged prompts each continued from its own length (a `(batch,)` index); eagerly,
and through a compiled step function on JAX (jax.jit) and TensorFlow (tf.function).

Reference: the same model's full pass (`transformer.model`) on the whole sequence, row by row
for ragged prompts; equal within 1e-5 relative / 1e-4 absolute in float32. Llama has grouped-query
attention and Llama-3.1 rope scaling; Gemma2 a sliding window (4) shorter than the sequences and
soft caps. Mixed precision is compared with float32 (see MIXED_MAX_ERROR).
"""

import keras
import numpy as np
import pytest
from family_checks import (
    TINY_LLAMA,
    assert_matches,
    decode_in_steps,
    decode_ragged,
    dtype_policy,
    predict,
    ragged_batch,
    ragged_prompts,
    run_decoding_protocol_test,
    to_numpy,
)
from layer_checks import compiled

from b4k3_models import build_transformer_model

FAMILIES = ["llama_gqa", "gemma2"]
# bfloat16 logits against float32 ones (which reach about 4 in magnitude here): transformers'
# own Llama cast to bfloat16 differs by 0.11 at most and 0.013 on average on this model.
MIXED_MAX_ERROR, MIXED_MEAN_ERROR = 0.25, 0.03
VOCAB_SIZE = TINY_LLAMA["vocab_size"]


def load(directory):
    return build_transformer_model(checkpoint_path=directory, with_lm="linear", return_keras_model=False)


@pytest.mark.parametrize("name", FAMILIES)
def test_cached_decoding_equals_the_full_pass_in_lock_step_and_for_ragged_rows(saved, name):
    transformer = load(saved(name)[0])
    tokens, _ = ragged_batch(VOCAB_SIZE, lengths=(10, 10))
    run_decoding_protocol_test(transformer, tokens)
    cache = transformer.build_cache(2, 12)
    assert tuple(cache[0].shape) == (2, 2, 12, transformer.num_attention_heads, transformer.attention_head_size)


@pytest.mark.parametrize("name", FAMILIES)
def test_compiled_decoding_step_equals_the_full_pass_and_traces_once_per_shape(saved, name):
    """Lock-step decoding (a scalar index) and ragged decoding (a `(batch,)` index, a chunk of 2
    tokens then single ones), each through one compiled step function that takes the cache as an
    argument: compiled once per input shape."""
    transformer = load(saved(name)[0])
    traces = []

    def step(tokens, cache, index):
        traces.append((tokens.shape, index.shape))
        return transformer.call_with_cache(tokens, cache, index)

    step = compiled(step)
    tokens, _ = ragged_batch(VOCAB_SIZE, lengths=(10, 10), seed=3)
    actual = decode_in_steps(step, transformer.build_cache(2, 10), tokens, 6)
    assert_matches(actual, predict(transformer.model, tokens))
    full_pass = lambda sequences: predict(transformer.model, sequences)  # noqa: E731
    decode_ragged(step, transformer, *ragged_prompts(VOCAB_SIZE), chunks=[2, 1, 1], full_pass=full_pass)
    if keras.backend.backend() != "torch":
        assert len(traces) == 5, f"traced for {traces}: expected once per (tokens, index) shape"


def test_mixed_bfloat16_llama_is_close_to_float32(saved):
    directory, _ = saved("llama_gqa")
    ids, mask = ragged_batch(VOCAB_SIZE)
    expected = predict(build_transformer_model(checkpoint_path=directory, with_lm="linear"), ids)

    with dtype_policy("mixed_bfloat16"):
        transformer = load(directory)
        logits = to_numpy(transformer.model(ids, training=False))
        cache = transformer.build_cache(len(ids), ids.shape[1])
        assert keras.backend.standardize_dtype(cache[0].dtype) == "bfloat16"
        decoded = decode_in_steps(transformer.call_with_cache, cache, ids, 4)

    assert np.isfinite(logits).all()
    assert np.isfinite(decoded).all()
    assert np.abs(expected).max() > 1.0, "the float32 logits are too small for the tolerance to mean anything"
    for actual in (logits, decoded):
        error = np.abs(actual[mask] - expected[mask])
        assert error.max() <= MIXED_MAX_ERROR, f"bfloat16 logits differ from float32 by up to {error.max()}"
        assert error.mean() <= MIXED_MEAN_ERROR, f"bfloat16 logits differ from float32 by {error.mean()} on average"
    assert keras.config.dtype_policy().name == "float32"
