"""State tuning: `enable_state_tuning` makes the initial states the only trainable weights (with
LoRA adapters when enabled); `fit` trains them and nothing else; a tuned state is saved with the
model's weights, loads back, and starts every generation."""

import keras
import numpy as np
import pytest

from b4k3_generate import generate
from b4k3_layers import enable_lora
from b4k3_models import build_transformer_model

TOKENS = np.array([[5, 17, 999, 3, 42, 7, 8, 100], [7, 8, 100, 31, 2, 650, 12, 77]], dtype="int32")


def tuned(rwkv6_pth, lora=False, **options):
    transformer = build_transformer_model(
        checkpoint_path=rwkv6_pth, model="rwkv6", with_lm="linear", return_keras_model=False
    )
    if lora:
        enable_lora(transformer.model, rank=4)
    transformer.enable_state_tuning(**options)
    return transformer


def values(model):
    return {variable.path: keras.ops.convert_to_numpy(variable).copy() for variable in model.variables}


def one_training_step(model):
    model.compile(
        optimizer=keras.optimizers.Adam(1e-2), loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    )
    before = values(model)
    model.fit(TOKENS[:, :-1], TOKENS[:, 1:], epochs=1, batch_size=2, verbose=0)
    after = values(model)
    return {path for path in before if not np.array_equal(before[path], after[path])}


@pytest.mark.parametrize("time_shift_tuning", [False, True])
def test_only_the_states_are_trainable_and_only_they_change(rwkv6_pth, time_shift_tuning):
    transformer = tuned(rwkv6_pth, time_shift_tuning=time_shift_tuning)
    trainable = sorted(variable.path for variable in transformer.model.trainable_variables)
    expected = [f"RWKV-{index}-TimeMix/initial_state" for index in range(2)]
    if time_shift_tuning:
        expected += [f"RWKV-{index}-{mix}/initial_shift" for index in range(2) for mix in ("TimeMix", "ChannelMix")]
    assert trainable == sorted(expected)
    assert one_training_step(transformer.model) == set(expected)


def test_with_lora_the_adapters_train_too(rwkv6_pth):
    transformer = tuned(rwkv6_pth, lora=True)
    trainable = {variable.path for variable in transformer.model.trainable_variables}
    states = {f"RWKV-{index}-TimeMix/initial_state" for index in range(2)}
    assert states < trainable
    assert all("lora_" in path for path in trainable - states)
    changed = one_training_step(transformer.model)
    assert states <= changed
    assert changed - states  # adapters trained
    assert changed <= trainable


def test_bert4keras3_spelling_is_accepted(rwkv6_pth):
    transformer = build_transformer_model(checkpoint_path=rwkv6_pth, model="rwkv6", return_keras_model=False)
    transformer.enable_state_tunig(time_shitf_tuning=True)
    assert len(transformer.model.trainable_variables) == 6


def test_a_tuned_state_is_saved_loaded_and_starts_generation(rwkv6, rwkv6_pth, tmp_path):
    """States assigned from a text make generation continue that text; they round-trip through
    `.weights.h5`."""
    prompt, follow_up = [5, 17, 999, 3, 42], [11, 12]
    transformer = tuned(rwkv6_pth, time_shift_tuning=True)
    for index, states in enumerate(rwkv6.read([prompt])):
        time_mix, channel_mix = transformer.mixing_layers(index)
        time_mix.initial_shift.assign(states[0])
        time_mix.initial_state.assign(states[1])
        channel_mix.initial_shift.assign(states[2])
    expected = generate(rwkv6, [prompt + follow_up], 8)
    assert generate(transformer, [follow_up], 8) == expected
    path = tmp_path / "tuned.weights.h5"
    transformer.model.save_weights(path)
    reloaded = tuned(rwkv6_pth, time_shift_tuning=True)
    reloaded.model.load_weights(path)
    for saved, loaded in zip(transformer.model.variables, reloaded.model.variables, strict=True):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(loaded), keras.ops.convert_to_numpy(saved))
    assert generate(reloaded, [follow_up], 8) == expected
