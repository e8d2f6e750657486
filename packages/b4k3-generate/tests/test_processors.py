"""Logits processors against Hugging Face's processors (repetition penalty, temperature) and against NumPy
references written from bert4keras3's formulas (count range, window).

Tolerance: rtol 1e-6 against Hugging Face (float32, same operations); the NumPy references are float64,
compared with rtol 1e-6.
"""

import keras
import numpy as np
import pytest
import torch
from keras import ops
from layer_checks import compiled
from transformers.generation.logits_process import (
    LogitsProcessorList,
    RepetitionPenaltyLogitsProcessor,
    TemperatureLogitsWarper,
)

from b4k3_generate.processors import (
    check_processing,
    mask_output,
    process_logits,
    repetition_penalty,
    temperature,
)
from b4k3_generate.samplers import greedy, sample
from b4k3_ops.numerics import infinity

RNG = np.random.default_rng(0)
BATCH, LENGTH, VOCAB = 4, 16, 40
LOGITS = (RNG.normal(size=(BATCH, VOCAB)) * 3).astype("float32")
# Ids drawn from a quarter of the vocabulary, so most rows repeat tokens.
IDS = RNG.integers(0, VOCAB // 4, size=(BATCH, LENGTH)).astype("int32")
ALL_REAL = np.ones((BATCH, LENGTH), dtype=bool)


def hf(processor, ids, logits):
    return processor(torch.from_numpy(ids).long(), torch.from_numpy(logits)).numpy()


def numpy_penalty(logits, ids, mask, penalty, positions=None, window=None, count_range=None):
    """bert4keras3's penalty written from its definition, one row and one token at a time."""
    out = logits.astype("float64").copy()
    for b in range(logits.shape[0]):
        counts = np.zeros(logits.shape[1])
        for j, token in enumerate(ids[b]):
            if not mask[b, j]:
                continue
            if window is not None and not ((positions[b] // window - 1) * window <= j < positions[b]):
                continue
            counts[token] += 1
        for token, n in enumerate(counts):
            lo, hi = count_range or (1, 1)  # without a range, a present token is penalised once
            times = min(n, hi) if n >= lo else 0
            factor = penalty**times
            out[b, token] = out[b, token] * factor if out[b, token] < 0 else out[b, token] / factor
    return out


def to_numpy(x):
    return ops.convert_to_numpy(x)


@pytest.mark.parametrize("penalty", [1.3, 0.7])
def test_repetition_penalty_matches_hf(penalty):
    expected = hf(RepetitionPenaltyLogitsProcessor(penalty), IDS, LOGITS)
    out = repetition_penalty(LOGITS, IDS, ALL_REAL, penalty)
    np.testing.assert_allclose(to_numpy(out), expected, rtol=1e-6, atol=0)


def test_masked_context_positions_do_not_count():
    mask = RNG.random((BATCH, LENGTH)) < 0.6
    # What a masked position holds must not matter: padding, unwritten zeros, or ids outside the vocabulary.
    ids = np.where(mask, IDS, np.array([0, -1, VOCAB, 3])[:, None]).astype("int32")
    out = to_numpy(repetition_penalty(LOGITS, ids, mask, 1.5))
    for b in range(BATCH):
        real = IDS[b][mask[b]][None]
        expected = hf(RepetitionPenaltyLogitsProcessor(1.5), real, LOGITS[b : b + 1])
        np.testing.assert_allclose(out[b : b + 1], expected, rtol=1e-6, atol=0)


@pytest.mark.parametrize("count_range", [[0, 2], [2, 4], [3, 100]])
def test_count_range_matches_numpy_reference(count_range):
    out = repetition_penalty(LOGITS, IDS, ALL_REAL, 1.2, max_penalty_range=count_range)
    expected = numpy_penalty(LOGITS, IDS, ALL_REAL, 1.2, count_range=count_range)
    np.testing.assert_allclose(to_numpy(out), expected, rtol=1e-6)


@pytest.mark.parametrize("window", [1, 3, 4])
@pytest.mark.parametrize("count_range", [None, [1, 3]])
def test_window_matches_numpy_reference(window, count_range):
    positions = np.array([0, 5, 11, 16], dtype="int32")
    # Rows are written up to their position: beyond it the context holds zeros that are not real yet.
    mask = np.arange(LENGTH)[None] < positions[:, None]
    ids = np.where(mask, IDS, 0).astype("int32")
    out = repetition_penalty(
        LOGITS, ids, mask, 1.4, positions=positions, penalty_window=window, max_penalty_range=count_range
    )
    expected = numpy_penalty(LOGITS, ids, mask, 1.4, positions, window, count_range)
    np.testing.assert_allclose(to_numpy(out), expected, rtol=1e-6)


def test_window_ignores_real_tokens_at_or_after_the_position():
    ids = np.array([[7, 7, 7, 7]], dtype="int32")
    out = repetition_penalty(LOGITS[:1], ids, np.ones((1, 4), bool), 2.0, positions=np.array([0]), penalty_window=2)
    np.testing.assert_array_equal(to_numpy(out), LOGITS[:1])


def test_penalty_and_temperature_of_one_return_the_logits_unchanged():
    assert repetition_penalty(LOGITS, IDS, ALL_REAL, 1.0, max_penalty_range=[1, 2]) is LOGITS
    assert temperature(LOGITS, 1.0) is LOGITS
    assert mask_output(LOGITS, None) is LOGITS
    assert mask_output(LOGITS, []) is LOGITS


@pytest.mark.parametrize("value", [0.3, 2.0])
def test_temperature_matches_hf(value):
    expected = hf(TemperatureLogitsWarper(value), IDS, LOGITS)
    np.testing.assert_allclose(to_numpy(temperature(LOGITS, value)), expected, rtol=1e-6, atol=0)


def test_mask_output_bans_ids_from_greedy_and_sampling():
    banned = [3, 17, VOCAB - 1]
    logits = LOGITS.copy()
    logits[:, banned] = 50.0  # the banned tokens would otherwise be the only likely ones
    out = to_numpy(mask_output(logits, banned))
    assert (out[:, banned] == np.float32(-infinity())).all()
    kept = np.setdiff1d(np.arange(VOCAB), banned)
    np.testing.assert_array_equal(out[:, kept], logits[:, kept])
    assert not np.isin(to_numpy(greedy(out)), banned).any()
    many = np.repeat(out, 500, axis=0)
    assert not np.isin(to_numpy(sample(many, np.array([0, 1], "int32"))), banned).any()


def test_process_logits_applies_penalty_then_temperature_then_mask_in_float32():
    hf_order = LogitsProcessorList([RepetitionPenaltyLogitsProcessor(1.3), TemperatureLogitsWarper(0.7)])
    expected = hf(hf_order, IDS, LOGITS)
    expected[:, [0, 5]] = -infinity()
    out = process_logits(LOGITS.astype("float16"), IDS, ALL_REAL, penalty=1.3, temperature=0.7, mask_output=[0, 5])
    assert keras.backend.standardize_dtype(out.dtype) == "float32"
    hf_half = hf(hf_order, IDS, LOGITS.astype("float16").astype("float32"))
    hf_half[:, [0, 5]] = -infinity()
    np.testing.assert_allclose(to_numpy(out), hf_half, rtol=1e-6)
    out32 = process_logits(LOGITS, IDS, ALL_REAL, penalty=1.3, temperature=0.7, mask_output=[0, 5])
    np.testing.assert_allclose(to_numpy(out32), expected, rtol=1e-6)


def test_process_logits_traces_with_tensor_positions():
    def step(logits, ids, mask, positions):
        return process_logits(
            logits,
            ids,
            mask,
            penalty=1.2,
            temperature=0.8,
            mask_output=[1],
            positions=positions,
            penalty_window=4,
            max_penalty_range=[1, 3],
        )

    positions = np.array([3, 8, 12, 16], dtype="int32")
    mask = np.arange(LENGTH)[None] < positions[:, None]
    out = compiled(step)(LOGITS, IDS, mask, positions)
    expected = numpy_penalty(LOGITS, IDS, mask, 1.2, positions, 4, [1, 3]) / 0.8
    expected[:, 1] = -infinity()
    np.testing.assert_allclose(to_numpy(out), expected, rtol=1e-6)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"temperature": 0.0}, "temperature"),
        ({"temperature": -1.0}, "temperature"),
        ({"temperature": "hot"}, "temperature"),
        ({"penalty": 0}, "penalty"),
        ({"penalty": -1.2}, "penalty"),
        ({"penalty": float("nan")}, "penalty"),
        ({"max_penalty_range": [3, 3]}, "max_penalty_range"),
        ({"max_penalty_range": [-1, 3]}, "max_penalty_range"),
        ({"max_penalty_range": [1.0, 3]}, "max_penalty_range"),
        ({"max_penalty_range": [1, 2, 3]}, "max_penalty_range"),
        ({"max_penalty_range": 3}, "max_penalty_range"),
        ({"penalty_window": 0}, "penalty_window"),
        ({"penalty_window": 2.5}, "penalty_window"),
        ({"penalty_window": True}, "penalty_window"),
        ({"mask_output": [1, -2]}, "mask_output"),
        ({"mask_output": 3}, "mask_output"),
    ],
)
def test_invalid_settings_are_refused(settings, message):
    with pytest.raises(ValueError, match=message):
        check_processing(**settings)
    with pytest.raises(ValueError, match=message):
        process_logits(LOGITS, IDS, ALL_REAL, **settings)


def test_window_without_positions_is_refused():
    with pytest.raises(ValueError, match="positions"):
        repetition_penalty(LOGITS, IDS, ALL_REAL, 1.2, penalty_window=4)


def test_mask_output_outside_the_vocabulary_is_refused():
    with pytest.raises(ValueError, match="outside the vocabulary"):
        mask_output(LOGITS, [VOCAB])
    with pytest.raises(ValueError, match="bans all"):
        mask_output(LOGITS, list(range(VOCAB)))
