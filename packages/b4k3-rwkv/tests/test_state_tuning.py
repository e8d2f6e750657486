"""State tuning: `enable_state_tuning` makes the initial states the only trainable weights (with
LoRA adapters when enabled); `fit` trains them and nothing else. (That a tuned state saves, loads
and starts generation is in integration-tests/test_rwkv6_generation.py: it needs b4k3-generate.)"""

import keras
import numpy as np
import pytest
from rwkv_checks import build_rwkv6

from b4k3_layers import enable_lora

TOKENS = np.array([[5, 17, 999, 3, 42, 7, 8, 100], [7, 8, 100, 31, 2, 650, 12, 77]], dtype="int32")


def tuned(rwkv6_pth, lora=False, **options):
    transformer = build_rwkv6(rwkv6_pth)
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
    transformer = build_rwkv6(rwkv6_pth)
    transformer.enable_state_tunig(time_shitf_tuning=True)
    assert len(transformer.model.trainable_variables) == 6
