"""parallel_apply, the indexed `open`, the argument decorators and the text helpers re-exported
from b4k3-tokenize, with bert4keras3's names and behaviour."""

import numpy as np
import pytest

from b4k3_ops import snippets
from b4k3_ops.snippets import delete_arguments, insert_arguments, open, parallel_apply, parallel_apply_generator


def square(x):
    return x * x


@pytest.mark.parametrize("dummy", [True, False])
def test_parallel_apply_applies_the_function_to_every_item(dummy):
    items = list(range(30))
    assert parallel_apply(square, items, workers=2, max_queue_size=4, dummy=dummy, unordered=False) == [
        x * x for x in items
    ]
    assert sorted(parallel_apply(square, items, workers=2, max_queue_size=4, dummy=dummy)) == [x * x for x in items]


def test_parallel_apply_generator_yields_indices_and_callback_sees_every_result():
    pairs = list(parallel_apply_generator(square, range(10), workers=3, max_queue_size=2, dummy=True))
    assert sorted(pairs) == [(i, i * i) for i in range(10)]
    seen = []
    assert parallel_apply(square, range(10), 2, 3, callback=seen.append, dummy=True) is None
    assert sorted(seen) == [i * i for i in range(10)]


def test_parallel_apply_leaves_numpy_alone_without_seeds():
    assert parallel_apply(square, range(6), 2, 2, random_seeds=False, unordered=False) == [x * x for x in range(6)]


def test_parallel_apply_seeds_each_worker():
    def draw(_):
        return np.random.randint(1 << 30)

    first = parallel_apply(draw, range(4), 1, 4, dummy=True, random_seeds=[7], unordered=False)
    np.random.seed(7)
    assert first == [np.random.randint(1 << 30) for _ in range(4)]


def test_open_reads_lines_by_number_and_keeps_the_index(tmp_path):
    path = tmp_path / "corpus.txt"
    lines = [f"第{i}行 line {i}\n" for i in range(50)]
    path.write_text("".join(lines), encoding="utf-8")
    index = str(tmp_path / "corpus.index.json")
    with open(str(path), encoding="utf-8", indexable=index) as f:
        assert len(f) == 50
        assert f[17] == lines[17]
        assert f[0] == lines[0]
        assert f[-1] == lines[-1]
    with open(str(path), encoding="utf-8", indexable=index) as f:  # the saved index
        assert f[33] == lines[33]
        f.seek(0)
        assert list(f) == lines
    with open(str(path), encoding="utf-8") as f:
        assert f.readline() == lines[0]
        with pytest.raises(TypeError, match="indexable=True"):
            f[3]


def test_insert_and_delete_arguments():
    class Base:
        def __init__(self, size=1, name=None):
            self.size, self.name = size, name

    class Inserted(Base):
        @insert_arguments(scale=2.0)
        @delete_arguments("name")
        def __init__(self, **kwargs):
            super().__init__(**kwargs)

    layer = Inserted(size=3, scale=5.0)
    assert (layer.size, layer.scale) == (3, 5.0)
    assert Inserted().scale == 2.0
    with pytest.raises(TypeError, match="unexpected keyword argument 'name'"):
        Inserted(name="x")


def test_text_helpers_are_re_exported_from_b4k3_tokenize():
    import b4k3_tokenize

    for name in ("text_segmentate", "strQ2B", "string_matching", "longest_common_substring", "convert_to_unicode"):
        assert getattr(snippets, name) is getattr(b4k3_tokenize, name)
    x = np.zeros(2)
    assert snippets.is_one_of(x, [np.zeros(2), x])
    assert not snippets.is_one_of(x, [np.zeros(2)])
