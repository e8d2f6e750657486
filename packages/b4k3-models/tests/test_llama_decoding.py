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
from layer_checks import compiled
from llm_checks import TINY_LLAMA, dtype_policy, ragged_batch, saver, to_numpy
from model_checks import assert_matches, predict

from b4k3_models import build_transformer_model

FAMILIES = ["llama_gqa", "gemma2"]
# bfloat16 logits against float32 ones (which reach about 4 in magnitude here): transformers'
# own Llama cast to bfloat16 differs by 0.11 at most and 0.013 on average on this model.
MIXED_MAX_ERROR, MIXED_MEAN_ERROR = 0.25, 0.03
VOCAB_SIZE = TINY_LLAMA["vocab_size"]


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """`saved(name)`: (directory, Hugging Face model) of the tiny family `name`, saved once."""
    return saver(tmp_path_factory)


def load(directory):
    return build_transformer_model(checkpoint_path=directory, with_lm="linear", return_keras_model=False)


def decode_in_steps(step, cache, tokens, prompt_length, as_index=np.int32):
    """Logits `(batch, len, vocab)` of `tokens`: the first `prompt_length` in one call at index
    0, then one token per call at its position (`as_index(position)`, one for the batch)."""
    logits, cache = step(tokens[:, :prompt_length], cache, as_index(0))
    outputs = [to_numpy(logits)]
    for position in range(prompt_length, tokens.shape[1]):
        logits, cache = step(tokens[:, position : position + 1], cache, as_index(position))
        outputs.append(to_numpy(logits))
    return np.concatenate(outputs, axis=1)


def scalar_tensor(position):
    return keras.ops.convert_to_tensor(position, "int32")


@pytest.mark.parametrize(
    ("name", "as_index"),
    [("llama_gqa", int), ("gemma2", int), ("llama_gqa", scalar_tensor)],
    ids=["llama_gqa", "gemma2", "llama_gqa-tensor-index"],
)
def test_cached_decoding_equals_the_full_pass(saved, name, as_index):
    transformer = load(saved(name)[0])
    tokens, _ = ragged_batch(VOCAB_SIZE, lengths=(10, 10))
    cache = transformer.build_cache(2, 12)  # longer than needed: the unused positions stay masked
    assert len(cache) == transformer.num_hidden_layers
    assert tuple(cache[0].shape) == (2, 2, 12, transformer.num_attention_heads, transformer.attention_head_size)

    actual = decode_in_steps(transformer.call_with_cache, cache, tokens, 6, as_index)
    assert_matches(actual, predict(transformer.model, tokens))


def decode_ragged(step, transformer, prompts, lengths, continuations, chunks):
    """Logits of right-padded `prompts` prefilled together at index 0, then of `continuations`
    fed in pieces of `chunks` tokens, each row from its own length (a `(batch,)` int32 index);
    checked row by row against the full pass of that row alone."""
    cache = transformer.build_cache(len(lengths), prompts.shape[1] + continuations.shape[1])
    logits, cache = step(prompts, cache, np.zeros(len(lengths), dtype="int32"))
    prefill = to_numpy(logits)
    decoded, done = [], 0
    for chunk in chunks:
        logits, cache = step(continuations[:, done : done + chunk], cache, lengths + done)
        decoded.append(to_numpy(logits))
        done += chunk
    decoded = np.concatenate(decoded, axis=1)

    for row, length in enumerate(lengths):
        sequence = np.concatenate([prompts[row, :length], continuations[row]])[None]
        expected = predict(transformer.model, sequence)[0]
        assert_matches(prefill[row, :length], expected[:length])
        assert_matches(decoded[row], expected[length:])


def ragged_prompts():
    """Three prompts of lengths 6, 3 and 1 right-padded with 0, and 4 further tokens per row."""
    lengths = np.array([6, 3, 1], dtype="int32")
    prompts, _ = ragged_batch(VOCAB_SIZE, lengths=tuple(lengths), seed=1)
    continuations = np.random.default_rng(2).integers(0, VOCAB_SIZE, size=(len(lengths), 4)).astype("int32")
    return prompts, lengths, continuations


@pytest.mark.parametrize("name", FAMILIES)
def test_ragged_prompts_continue_each_from_its_own_length(saved, name):
    transformer = load(saved(name)[0])
    decode_ragged(transformer.call_with_cache, transformer, *ragged_prompts(), chunks=[1, 1, 1, 1])


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
    decode_ragged(step, transformer, *ragged_prompts(), chunks=[2, 1, 1])
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
