"""RWKV6 generates through b4k3-generate's one loop, its recurrent states as the cache: greedy
tokens equal the `rwkv` package's greedy continuation on ragged prompts, every sampler and
processor runs, a generation continued from its output state equals one long call, and a
state-tuned state starts generation. It crosses b4k3-rwkv and b4k3-generate, so it lives here."""

import keras
import numpy as np
import pytest
import transformers
from family_checks import save_hf_model
from rwkv_checks import Reference, assert_close, build_rwkv6, layer_states, save_pth, tiny_state_dict

from b4k3_generate import generate, stream
from b4k3_models import build_transformer_model

PROMPTS = [[5, 17, 999, 3, 42], [7, 8, 100], [301, 4, 650, 12, 77, 431, 9]]
NEW_TOKENS = 12


@pytest.fixture(scope="module")
def rwkv6_pth(tmp_path_factory):
    return save_pth(tiny_state_dict(), tmp_path_factory.mktemp("rwkv6") / "tiny-x060.pth")


@pytest.fixture(scope="module")
def reference(rwkv6_pth):
    return Reference(rwkv6_pth)


@pytest.fixture(scope="module")
def rwkv6(rwkv6_pth):
    return build_rwkv6(rwkv6_pth)


@pytest.fixture(scope="module")
def expected_greedy(reference):
    return [reference.greedy(prompt, NEW_TOKENS) for prompt in PROMPTS]


def test_greedy_tokens_equal_the_reference_on_ragged_prompts(rwkv6, expected_greedy):
    assert generate(rwkv6, PROMPTS, NEW_TOKENS) == expected_greedy


def test_stream_and_build_cache_model_give_the_same_tokens(rwkv6, expected_greedy):
    steps = list(stream(rwkv6, PROMPTS, NEW_TOKENS))
    assert [[step[row] for step in steps] for row in range(len(PROMPTS))] == expected_greedy
    padded = np.zeros((len(PROMPTS), 7), dtype="int32")
    for row, prompt in enumerate(PROMPTS):
        padded[row, : len(prompt)] = prompt
    tokens = rwkv6.build_cache_model([7 + NEW_TOKENS], end_token=None).predict(padded)
    for row, prompt in enumerate(PROMPTS):
        assert (
            tokens[row, len(prompt) : len(prompt) + NEW_TOKENS].tolist()
            == expected_greedy[row][: 7 + NEW_TOKENS - len(prompt)]
        )


def test_an_end_token_stops_its_row(rwkv6, expected_greedy):
    end = expected_greedy[0][3]
    new = generate(rwkv6, PROMPTS[:1], NEW_TOKENS, end_token=end)
    assert new == [expected_greedy[0][:4]]


@pytest.mark.parametrize(
    ("search_mode", "k", "processing"),
    [
        ("topk", 5, {"temperature": 0.7}),
        ("topp", 0.9, {"penalty": 1.3, "penalty_window": 4}),
        ("topp", [0.8, 10], {"mask_output": [1, 2, 3]}),
    ],
)
def test_samplers_and_processors_run_reproducibly(rwkv6, search_mode, k, processing):
    first = generate(rwkv6, PROMPTS, 6, search_mode=search_mode, k=k, seed=3, **processing)
    assert first == generate(rwkv6, PROMPTS, 6, search_mode=search_mode, k=k, seed=3, **processing)
    assert all(len(row) == 6 and all(0 <= token < rwkv6.vocab_size for token in row) for row in first)
    if "mask_output" in processing:
        assert not {1, 2, 3} & {token for row in first for token in row}


def test_states_after_a_text_equal_the_reference_states(rwkv6, reference, expected_greedy):
    rows = [prompt + new for prompt, new in zip(PROMPTS, expected_greedy, strict=True)]
    states = rwkv6.read(rows)
    for row, tokens in enumerate(rows):
        _, state = reference.forward(tokens)
        for layer, layer_cache in enumerate(states):
            for actual, wanted in zip(layer_cache, layer_states(state, layer), strict=True):
                assert_close(keras.ops.convert_to_numpy(actual)[row], wanted)


def test_continuing_from_the_output_state_equals_one_long_call(rwkv6):
    follow_ups = [[11, 12], [13, 14, 15, 16], [17]]
    first = generate(rwkv6, PROMPTS, 5)
    state = rwkv6.read([prompt + new for prompt, new in zip(PROMPTS, first, strict=True)])
    continued = generate(rwkv6, follow_ups, 8, cache=state)
    whole = [prompt + new + more for prompt, new, more in zip(PROMPTS, first, follow_ups, strict=True)]
    assert continued == generate(rwkv6, whole, 8)


def test_a_starting_cache_of_the_wrong_rows_or_for_a_kv_model_is_refused(rwkv6, tmp_path):
    state = rwkv6.read(PROMPTS[:2])
    with pytest.raises(ValueError, match=r"states of \[2\] rows for 3 prompts"):
        generate(rwkv6, PROMPTS, 4, cache=state)
    with pytest.raises(ValueError, match="one \\(time shift, wkv, channel shift\\) per layer"):
        generate(rwkv6, PROMPTS[:2], 4, cache=state[:1])
    config = dict(vocab_size=64, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32)
    llama_dir, _ = save_hf_model(transformers.LlamaForCausalLM, transformers.LlamaConfig, config, tmp_path)
    llama = build_transformer_model(checkpoint_path=llama_dir, with_lm="linear", return_keras_model=False)
    with pytest.raises(ValueError, match="cache= continues a state model's states"):
        generate(llama, [[1, 2]], 2, cache=state)


def test_build_cache_model_with_input_and_output_state(rwkv6):
    """bert4keras3's form: `predict([tokens, state])` -> `[tokens, state]`; the rows that end
    early leave the state after their end token."""
    first = generate(rwkv6, PROMPTS[:2], 5)
    end = first[0][1]  # row 0 ends after two new tokens
    generator = rwkv6.build_cache_model([12], end_token=end, input_state=True, output_state=True)
    tokens = np.array([PROMPTS[0] + [0], PROMPTS[1] + [0, 0, 0]], dtype="int32")
    output, state = generator.predict([tokens, rwkv6.build_cache(2)])
    rows = [output[0, : len(PROMPTS[0]) + 2].tolist(), output[1].tolist()]
    assert rows[0][-1] == end
    assert end not in output[1, len(PROMPTS[1]) :]
    for actual_layer, expected_layer in zip(state, rwkv6.read(rows), strict=True):
        for actual, expected in zip(actual_layer, expected_layer, strict=True):
            assert_close(keras.ops.convert_to_numpy(actual), keras.ops.convert_to_numpy(expected))
    follow_ups = np.array([[21, 22, 0], [23, 24, 25]], dtype="int32")
    continued, _ = generator.predict([follow_ups, state])
    generator_from_zero = rwkv6.build_cache_model([len(rows[1]) + 12], end_token=end)
    whole = np.zeros((2, len(rows[1]) + 3), dtype="int32")
    whole[0, : len(rows[0]) + 2] = rows[0] + [21, 22]
    whole[1] = rows[1] + [23, 24, 25]
    expected = generator_from_zero.predict(whole)
    assert continued[0, 2:].tolist() == expected[0, len(rows[0]) + 2 : len(rows[0]) + 12].tolist()
    assert continued[1, 3:].tolist() == expected[1, len(rows[1]) + 3 : len(rows[1]) + 12].tolist()


def test_input_state_needs_tokens_and_state(rwkv6):
    generator = rwkv6.build_cache_model([8], end_token=None, input_state=True)
    with pytest.raises(ValueError, match=r"predict takes \[tokens, state\]"):
        generator.predict(np.array([[5, 6]]))


def test_a_tuned_state_is_saved_loaded_and_starts_generation(rwkv6, rwkv6_pth, tmp_path):
    """States assigned from a text make generation continue that text; they round-trip through
    `.weights.h5`."""
    prompt, follow_up = [5, 17, 999, 3, 42], [11, 12]
    transformer = build_rwkv6(rwkv6_pth)
    transformer.enable_state_tuning(time_shift_tuning=True)
    for index, states in enumerate(rwkv6.read([prompt])):
        time_mix, channel_mix = transformer.mixing_layers(index)
        time_mix.initial_shift.assign(states[0])
        time_mix.initial_state.assign(states[1])
        channel_mix.initial_shift.assign(states[2])
    expected = generate(rwkv6, [prompt + follow_up], 8)
    assert generate(transformer, [follow_up], 8) == expected
    path = tmp_path / "tuned.weights.h5"
    transformer.model.save_weights(path)
    reloaded = build_rwkv6(rwkv6_pth)
    reloaded.enable_state_tuning(time_shift_tuning=True)
    reloaded.model.load_weights(path)
    for saved, loaded in zip(transformer.model.variables, reloaded.model.variables, strict=True):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(loaded), keras.ops.convert_to_numpy(saved))
    assert generate(reloaded, [follow_up], 8) == expected
