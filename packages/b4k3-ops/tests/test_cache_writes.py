"""A decode step's KV-cache write: each row's token at its own position, exactly, out-of-range rows
left alone; functional outside `caches_donated()`, in place within it on torch."""

import keras
import numpy as np
import pytest
from keras import ops

from b4k3_ops.cache_writes import caches_are_donated, caches_donated, write_token_rows

rng = np.random.default_rng(0)
CACHE = rng.normal(size=(4, 2, 6, 3, 5)).astype("float32")
NEW = rng.normal(size=(4, 2, 1, 3, 5)).astype("float32")
INDEX = np.array([0, 5, 2, 6], dtype="int32")  # the last row falls past the cache: not written


def expected():
    cache = CACHE.copy()
    for row, position in enumerate(INDEX):
        if 0 <= position < cache.shape[2]:
            cache[row, :, position] = NEW[row, :, 0]
    return cache


def test_each_row_gets_its_token_at_its_position_and_the_input_is_kept():
    cache = ops.convert_to_tensor(CACHE)
    written = write_token_rows(cache, ops.convert_to_tensor(INDEX), ops.convert_to_tensor(NEW))
    np.testing.assert_array_equal(ops.convert_to_numpy(written), expected())
    np.testing.assert_array_equal(ops.convert_to_numpy(cache), CACHE)  # functional outside the context


def test_a_donated_cache_gives_the_same_values():
    cache = ops.convert_to_tensor(CACHE.copy())
    with caches_donated():
        assert caches_are_donated()
        written = write_token_rows(cache, ops.convert_to_tensor(INDEX), ops.convert_to_tensor(NEW))
    assert not caches_are_donated()
    np.testing.assert_array_equal(ops.convert_to_numpy(written), expected())
    if keras.backend.backend() == "torch":
        assert written is cache  # written in place: no copy of the whole cache per step


def test_the_values_are_copied_exactly_in_half_precision():
    cache = ops.convert_to_tensor(CACHE, "bfloat16")
    written = write_token_rows(cache, ops.convert_to_tensor(INDEX), ops.convert_to_tensor(NEW, "bfloat16"))
    want = ops.convert_to_numpy(ops.cast(ops.convert_to_tensor(expected(), "bfloat16"), "float32"))
    assert ops.convert_to_numpy(ops.cast(written, "float32")).tolist() == want.tolist()


@pytest.mark.parametrize("index", [[-1, 0, 0, 0], [7, 7, 7, 7]])
def test_rows_outside_the_cache_are_not_written(index):
    index = np.array(index, dtype="int32")
    written = write_token_rows(ops.convert_to_tensor(CACHE), ops.convert_to_tensor(index), ops.convert_to_tensor(NEW))
    outside = (index < 0) | (index >= CACHE.shape[2])
    np.testing.assert_array_equal(ops.convert_to_numpy(written)[outside], CACHE[outside])
