"""sequence_padding, DataGenerator, orthogonally_resize and the re-exported text helpers."""

import numpy as np
import pytest

from b4k3_ops import DataGenerator, sequence_padding, snippets, truncate_sequences


def test_pads_to_the_longest_at_the_end_by_default():
    out = sequence_padding([[1, 2, 3], [4], [5, 6]])
    np.testing.assert_array_equal(out, [[1, 2, 3], [4, 0, 0], [5, 6, 0]])


def test_pads_at_the_start_and_truncates_to_length():
    out = sequence_padding([[1, 2, 3, 4], [5]], length=3, value=-1, mode="pre")
    np.testing.assert_array_equal(out, [[1, 2, 3], [-1, -1, 5]])


def test_pads_two_axes():
    out = sequence_padding([np.ones((2, 3)), np.ones((1, 1))], seq_dims=2)
    assert out.shape == (2, 2, 3)
    assert out[1].sum() == 1


def test_pads_only_the_sequence_axis_of_feature_arrays():
    out = sequence_padding([np.ones((2, 4)), np.ones((3, 4))], show_tqdm=True)
    assert out.shape == (2, 3, 4)
    assert out[0, 2].sum() == 0


def test_bad_mode_and_empty_input():
    with pytest.raises(ValueError, match="mode"):
        sequence_padding([[1]], mode="middle")
    assert sequence_padding([]).shape == (0,)


class Batches(DataGenerator):
    def __iter__(self, random=False):
        batch = []
        for is_end, example in self.sample(random):
            batch.append(example)
            if len(batch) == self.batch_size or is_end:
                yield sequence_padding(batch)
                batch = []


def test_data_generator_batches_in_order_and_flags_the_last_example():
    generator = Batches([[1], [2, 2], [3], [4], [5]], batch_size=2)
    assert len(generator) == 3
    assert [is_end for is_end, _ in generator.sample()] == [False] * 4 + [True]
    assert [batch.tolist() for batch in generator] == [[[1, 0], [2, 2]], [[3], [4]], [[5]]]


def test_data_generator_shuffles_sequences_and_iterables():
    data = list(range(50))
    shuffled = [example for _, example in DataGenerator(data).sample(random=True)]
    assert sorted(shuffled) == data
    assert shuffled != data
    stream = DataGenerator(iter(data), buffer_size=10)
    assert sorted(example for _, example in stream.sample(random=True)) == data


def test_data_generator_forfit_repeats_forever():
    batches = Batches([[1], [2], [3]], batch_size=2).forfit(random=False)
    assert [next(batches).shape[0] for _ in range(5)] == [2, 1, 2, 1, 2]


def test_data_generator_on_empty_data_yields_nothing():
    assert list(DataGenerator([]).sample()) == []


def test_data_generator_without_length():
    with pytest.raises(TypeError, match="len"):
        len(DataGenerator(iter([1, 2])))
    with pytest.raises(NotImplementedError, match="__iter__"):
        next(iter(DataGenerator([1])))


def test_text_helpers_are_the_tokenizer_ones():
    first, second = [1, 2, 3, 4], [5, 6]
    truncate_sequences(4, -1, first, second)
    assert (first, second) == ([1, 2], [5, 6])
    assert snippets.lowercase_and_normalize("Héllo") == "hello"


def test_orthogonally_resize_repeats_blocks_then_keeps_the_norm():
    vector = np.array([1.0, 2.0, 3.0, 4.0])
    grown = snippets.orthogonally_resize(vector, (6,))
    blocks = np.array([1.0, 2.0, 1.0, 2.0, 3.0, 4.0])  # blocks of 2 repeated twice, cut to 6
    np.testing.assert_allclose(grown, blocks * np.linalg.norm(vector) / np.linalg.norm(blocks))

    kernel = np.arange(1.0, 17.0).reshape(4, 4)
    shrunk = snippets.orthogonally_resize(kernel, (2, 3))
    np.testing.assert_allclose(shrunk, kernel[:2, :3] * np.linalg.norm(kernel) / np.linalg.norm(kernel[:2, :3]))
    assert snippets.orthogonally_resize(kernel, (8, 4)).shape == (8, 4)


def test_orthogonally_resize_refuses_what_it_cannot_do():
    with pytest.raises(ValueError, match="different rank"):
        snippets.orthogonally_resize(np.ones((2, 2)), (2, 2, 2))
    with pytest.raises(ValueError, match="not a multiple"):
        snippets.orthogonally_resize(np.ones(3), (6,))
