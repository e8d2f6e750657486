"""RWKV6 loaded from a BlinkDL `.pth` gives the `rwkv` package's logits and states (0.8.32,
pure torch, `cpu fp32`), within 1e-5 relative: the whole sequence at once (a right-padded ragged
batch), one token at a time, and ragged rows read in one call."""

import keras
import numpy as np
import pytest
from rwkv_checks import assert_close, layer_states

from b4k3_models import build_transformer_model

PROMPTS = [[5, 17, 999, 3, 42, 7, 8, 100, 200, 300, 1], [0, 650, 12, 77, 431, 9, 2], [88, 301, 4]]


def padded(rows):
    batch = np.zeros((len(rows), max(map(len, rows))), dtype="int32")
    for index, row in enumerate(rows):
        batch[index, : len(row)] = row
    return batch


def test_sequence_logits_match_on_a_padded_ragged_batch(rwkv6, reference):
    logits = keras.ops.convert_to_numpy(rwkv6.model.predict(padded(PROMPTS), verbose=0))
    for row, prompt in enumerate(PROMPTS):
        expected, _ = reference.forward(prompt)
        assert_close(logits[row, : len(prompt)], expected)


def test_one_token_at_a_time_gives_the_logits_and_states(rwkv6, reference):
    prompt = PROMPTS[0]
    cache = rwkv6.build_cache(1)
    logits = []
    for token in prompt:
        step_logits, cache = rwkv6.call_with_cache(np.array([[token]]), cache, 0)
        logits.append(keras.ops.convert_to_numpy(step_logits)[0, 0])
    expected, state = reference.forward(prompt)
    assert_close(np.stack(logits), expected)
    for layer, layer_cache in enumerate(cache):
        for actual, wanted in zip(layer_cache, layer_states(state, layer), strict=True):
            assert_close(keras.ops.convert_to_numpy(actual)[0], wanted)


def test_ragged_rows_read_in_one_call_stop_at_their_own_length(rwkv6, reference):
    states = rwkv6.read(PROMPTS)
    for row, prompt in enumerate(PROMPTS):
        _, state = reference.forward(prompt)
        for layer, layer_cache in enumerate(states):
            for actual, wanted in zip(layer_cache, layer_states(state, layer), strict=True):
                assert_close(keras.ops.convert_to_numpy(actual)[row], wanted)


def test_the_recurrent_kernel_gives_the_chunked_one_s_logits(rwkv6, rwkv6_pth):
    recurrent = build_transformer_model(
        checkpoint_path=rwkv6_pth, model="rwkv6", with_lm="linear", rwkv_kernel="recurrent"
    )
    batch = padded(PROMPTS)
    expected = keras.ops.convert_to_numpy(rwkv6.model.predict(batch, verbose=0))
    assert_close(keras.ops.convert_to_numpy(recurrent.predict(batch, verbose=0)), expected)


@pytest.mark.parametrize("with_lm", [True, False])
def test_heads(rwkv6, rwkv6_pth, with_lm):
    """with_lm=True: softmax of the logits; False: the final hidden states."""
    model = build_transformer_model(checkpoint_path=rwkv6_pth, model="rwkv6", with_lm=with_lm)
    outputs = keras.ops.convert_to_numpy(model.predict(padded(PROMPTS[:1]), verbose=0))
    logits = keras.ops.convert_to_numpy(rwkv6.model.predict(padded(PROMPTS[:1]), verbose=0))
    if with_lm:
        assert_close(outputs, keras.ops.convert_to_numpy(keras.ops.softmax(logits)))
    else:
        assert outputs.shape == (1, len(PROMPTS[0]), rwkv6.hidden_size)


def test_batches_of_other_sizes_and_lengths_reuse_the_model(rwkv6, reference):
    """Later calls with new shapes run in a graph of unknown batch and length (TensorFlow)."""
    for rows in (PROMPTS[1:], PROMPTS[:1], PROMPTS[2:]):
        logits = keras.ops.convert_to_numpy(rwkv6.model.predict(padded(rows), verbose=0))
        for row, prompt in enumerate(rows):
            assert_close(logits[row, : len(prompt)], reference.forward(prompt)[0])
