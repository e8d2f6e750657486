"""The RWKV6 layers of bert4keras3: configs round-trip, the decoding forms (`cache=`, ChannelMix's
`rnn_mode`) give the sequence form's outputs token by token, and bad arguments are named."""

import keras
import numpy as np
import pytest
from rwkv_checks import assert_close

from b4k3_rwkv import ChannelMix, DecomposerDense, TimeMix, TimeShift

HIDDEN = 128


def randomized(layer, inputs, seed=0):
    """`layer` built on `inputs` with every weight redrawn at std 0.2 (zeros and ones hide bugs)."""
    layer(inputs)
    rng = np.random.default_rng(seed)
    for weight in layer.weights:
        weight.assign(rng.normal(size=weight.shape).astype("float32") * 0.2)
    return layer


def inputs(length=9, batch=2, seed=1):
    return np.random.default_rng(seed).normal(size=(batch, length, HIDDEN)).astype("float32")


def to_numpy(tensor):
    return keras.ops.convert_to_numpy(tensor)


LAYERS = [
    lambda: DecomposerDense(HIDDEN, 8, use_bias=True),
    lambda: ChannelMix(HIDDEN, 256),
    lambda: TimeMix("chunked", HIDDEN, 8, 64, time_decay_size=16),
]


@pytest.mark.parametrize("make", LAYERS, ids=["DecomposerDense", "ChannelMix", "TimeMix"])
def test_a_layer_rebuilt_from_its_config_gives_the_same_outputs(make):
    x = inputs()
    layer = randomized(make(), x)
    clone = type(layer).from_config(layer.get_config())
    clone(x)
    clone.set_weights(layer.get_weights())
    assert_close(to_numpy(clone(x)), to_numpy(layer(x)))


def test_time_shift_reads_the_previous_token_or_the_given_one():
    x = inputs(length=4)
    previous = inputs(length=1, seed=2)
    shifted = to_numpy(TimeShift()(x, cache_x=previous))
    np.testing.assert_allclose(shifted[:, 0], previous[:, 0] - x[:, 0], rtol=1e-6)
    np.testing.assert_allclose(shifted[:, 1:], x[:, :-1] - x[:, 1:], rtol=1e-6)
    np.testing.assert_allclose(to_numpy(TimeShift()(x))[:, 0], -x[:, 0], rtol=1e-6)


@pytest.mark.parametrize("make", LAYERS[1:], ids=["ChannelMix", "TimeMix"])
def test_token_by_token_with_its_state_equals_the_sequence(make):
    x = inputs()
    layer = randomized(make(), x)
    expected = to_numpy(layer(x))
    if isinstance(layer, TimeMix):
        cache = (np.zeros((2, HIDDEN), "float32"), np.zeros((2, layer.heads, 64, 64), "float32"))
    else:
        cache = np.zeros((2, HIDDEN), "float32")
    outputs = []
    for t in range(x.shape[1]):
        output, cache = layer(x[:, t : t + 1], cache=cache)
        outputs.append(to_numpy(output))
    assert_close(np.concatenate(outputs, axis=1), expected)


def test_channel_mix_rnn_mode_takes_the_token_and_the_previous_one():
    x = inputs()
    layer = randomized(ChannelMix(HIDDEN, 256), x)
    expected = to_numpy(layer(x))
    assert_close(to_numpy(layer([x[:, 4:5], x[:, 3:4]], rnn_mode=True)), expected[:, 4:5])


def test_padding_past_a_row_s_length_leaves_its_state():
    x = inputs()
    layer = randomized(TimeMix("chunked", HIDDEN, 8, 64, time_decay_size=16), x)
    zero = (np.zeros((2, HIDDEN), "float32"), np.zeros((2, 2, 64, 64), "float32"))
    _, (shift, state) = layer(x, cache=zero, lengths=np.array([9, 5]))
    _, (short_shift, short_state) = layer(x[1:, :5], cache=(zero[0][1:], zero[1][1:]))
    assert_close(to_numpy(state)[1], to_numpy(short_state)[0])
    assert_close(to_numpy(shift)[1], to_numpy(short_shift)[0])


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: TimeMix("cuda", HIDDEN, 8, 64), r"rwkv_kernel must be one of \['chunked', 'recurrent'\], got 'cuda'"),
        (lambda: TimeMix("chunked", 100, 8, 64), "hidden_size=100 is not a multiple of head_size=64"),
        (lambda: ChannelMix(HIDDEN, 0), "`expand_size` must be a positive integer, got 0"),
        (lambda: DecomposerDense(HIDDEN, 2.5), "`decomposer_size` must be a positive integer, got 2.5"),
    ],
)
def test_bad_arguments_are_named(make, message):
    with pytest.raises(ValueError, match=message):
        make()
