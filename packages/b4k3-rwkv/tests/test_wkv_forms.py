"""The wkv6 operator's forms agree: chunked == recurrent == a float64 NumPy recurrence (BlinkDL's
x060 formula), long sequences included, from zero and from a given state, in fp32."""

import keras
import numpy as np
import pytest
from rwkv_checks import assert_close

from b4k3_rwkv import wkv6, wkv6_chunked, wkv6_recurrent


def numpy_wkv6(r, k, v, log_w, u, state):
    """The x060 recurrence in float64, one token at a time."""
    r, k, v, log_w, u, state = (np.asarray(x, dtype="float64") for x in (r, k, v, log_w, u, state))
    outputs = []
    for t in range(r.shape[1]):
        kv = k[:, t, :, :, None] * v[:, t, :, None, :]
        outputs.append(np.einsum("bhi,bhij->bhj", r[:, t], u[None, :, :, None] * kv + state))
        state = kv + np.exp(log_w[:, t])[..., None] * state
    return np.stack(outputs, axis=1), state


def random_inputs(length, batch=2, heads=2, head_size=64, seed=0):
    """r, k, v at std 0.5; log-decays -exp(N(-1, 1.5)): per-token decays from ~0 to ~1."""
    rng = np.random.default_rng(seed)
    r, k, v = (rng.normal(size=(batch, length, heads, head_size)).astype("float32") * 0.5 for _ in range(3))
    log_w = -np.exp(rng.normal(size=(batch, length, heads, head_size)) * 1.5 - 1).astype("float32")
    u = (rng.normal(size=(heads, head_size)) * 0.2).astype("float32")
    state = (rng.normal(size=(batch, heads, head_size, head_size)) * 0.2).astype("float32")
    return r, k, v, log_w, u, state


def as_numpy(outputs):
    return [keras.ops.convert_to_numpy(output) for output in outputs]


@pytest.mark.parametrize("length", [1, 7, 32, 45])
def test_chunked_and_recurrent_equal_the_float64_recurrence(length):
    inputs = random_inputs(length)
    expected_y, expected_state = numpy_wkv6(*inputs)
    for form in (wkv6_chunked, wkv6_recurrent, wkv6):
        y, state = as_numpy(form(*inputs))
        assert_close(y, expected_y)
        assert_close(state, expected_state)


def test_chunked_equals_recurrent_over_1000_tokens():
    inputs = random_inputs(1000, batch=1, seed=1)
    chunked_y, chunked_state = as_numpy(wkv6_chunked(*inputs))
    recurrent_y, recurrent_state = as_numpy(wkv6_recurrent(*inputs))
    expected_y, expected_state = numpy_wkv6(*inputs)
    assert_close(recurrent_y, expected_y)
    assert_close(chunked_y, recurrent_y)
    assert_close(chunked_state, recurrent_state)
    assert_close(chunked_state, expected_state)


@pytest.mark.parametrize("chunk_size", [1, 5, 64])
def test_chunk_size_does_not_change_the_result(chunk_size):
    inputs = random_inputs(23, seed=2)
    expected_y, expected_state = numpy_wkv6(*inputs)
    y, state = as_numpy(wkv6_chunked(*inputs, chunk_size=chunk_size))
    assert_close(y, expected_y)
    assert_close(state, expected_state)


def test_a_sequence_split_in_two_carries_its_state():
    r, k, v, log_w, u, state = random_inputs(40, seed=3)
    whole_y, whole_state = as_numpy(wkv6_chunked(r, k, v, log_w, u, state))
    first_y, middle = wkv6_chunked(r[:, :17], k[:, :17], v[:, :17], log_w[:, :17], u, state)
    second_y, end = as_numpy(wkv6_chunked(r[:, 17:], k[:, 17:], v[:, 17:], log_w[:, 17:], u, middle))
    assert_close(np.concatenate([keras.ops.convert_to_numpy(first_y), second_y], axis=1), whole_y)
    assert_close(end, whole_state)
