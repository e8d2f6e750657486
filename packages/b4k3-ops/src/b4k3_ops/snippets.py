"""bert4keras3's `snippets` under its old name: padding batches, the DataGenerator base, and (from
their own modules) the decoders, parallel map, indexed files and the text helpers of b4k3-tokenize."""

import numpy as np
from tqdm.auto import tqdm

from b4k3_ops.arguments import delete_arguments, insert_arguments
from b4k3_ops.arrays import softmax, to_array
from b4k3_ops.autoregressive import AutoRegressiveDecoder
from b4k3_ops.files import open
from b4k3_ops.parallel import parallel_apply, parallel_apply_generator
from b4k3_ops.resize import orthogonally_resize  # where bert4keras3 users import it from
from b4k3_ops.viterbi import ViterbiDecoder
from b4k3_tokenize import (
    convert_to_str,
    convert_to_unicode,
    is_string,
    longest_common_subsequence,
    longest_common_substring,
    lowercase_and_normalize,
    string_matching,
    strQ2B,
    text_segmentate,
    truncate_sequences,
)

__all__ = [
    "AutoRegressiveDecoder",
    "DataGenerator",
    "ViterbiDecoder",
    "convert_to_str",
    "convert_to_unicode",
    "delete_arguments",
    "insert_arguments",
    "is_one_of",
    "is_string",
    "longest_common_subsequence",
    "longest_common_substring",
    "lowercase_and_normalize",
    "open",
    "orthogonally_resize",
    "parallel_apply",
    "parallel_apply_generator",
    "sequence_padding",
    "softmax",
    "strQ2B",
    "string_matching",
    "text_segmentate",
    "to_array",
    "truncate_sequences",
]


def is_one_of(x, ys):
    """True when `x` is (identity, not equality) one of `ys`: `x in ys` for arrays, which `==` cannot compare."""
    return any(x is y for y in ys)


def sequence_padding(inputs, length=None, value=0, seq_dims=1, mode="post", show_tqdm=False):
    """Pads (or truncates) the first `seq_dims` axes of every sequence to `length` and stacks them.

    Args:
        inputs: sequences (lists or arrays) of equal rank.
        length: target length per padded axis (an int, or one per axis); default the longest.
        value: the padding value.
        seq_dims: how many leading axes to pad.
        mode: `'post'` pads at the end, `'pre'` at the start (truncation keeps the start either way).
        show_tqdm: show a progress bar.
    Returns:
        A NumPy array `(len(inputs), *length, ...)`.
    """
    if mode not in ("post", "pre"):
        raise ValueError(f"sequence_padding: mode must be 'post' or 'pre', got {mode!r}")
    inputs = [np.asarray(x) for x in inputs]
    if not inputs:
        return np.array([])
    if length is None:
        length = np.max([np.shape(x)[:seq_dims] for x in inputs], axis=0)
    elif not hasattr(length, "__getitem__"):
        length = [length]
    slices = tuple(slice(None, length[i]) for i in range(seq_dims))
    outputs = []
    for x in tqdm(inputs, desc="sequence_padding", disable=not show_tqdm):
        x = x[slices]
        pad_width = [(0, 0)] * x.ndim
        for i in range(seq_dims):
            missing = length[i] - x.shape[i]
            pad_width[i] = (0, missing) if mode == "post" else (missing, 0)
        outputs.append(np.pad(x, pad_width, "constant", constant_values=value))
    return np.array(outputs)


class DataGenerator:
    """Base class of batch generators for `model.fit`: subclass it and write `__iter__(random)`
    to yield batches from `self.sample(random)`.

    Args:
        data: a sequence (shuffled by index) or any iterable (shuffled through a buffer).
        batch_size: examples per batch.
        buffer_size: shuffle buffer for iterables without a length; default `batch_size * 1000`.
    """

    def __init__(self, data, batch_size=32, buffer_size=None):
        self.data = data
        self.batch_size = batch_size
        self.steps = -(-len(data) // batch_size) if hasattr(data, "__len__") else None
        self.buffer_size = buffer_size or batch_size * 1000

    def __len__(self):
        if self.steps is None:
            raise TypeError("DataGenerator over an iterable without a length has no len(); pass a list")
        return self.steps

    def sample(self, random=False):
        """Yields `(is_last, example)` over the data, shuffled when `random`."""
        if not random:
            examples = iter(self.data)
        elif self.steps is not None:
            examples = (self.data[i] for i in np.random.permutation(len(self.data)))
        else:
            examples = self._buffer_shuffled()
        current = next(examples, _END)
        if current is _END:
            return
        for upcoming in examples:
            yield False, current
            current = upcoming
        yield True, current

    def _buffer_shuffled(self):
        buffer = []
        for example in self.data:
            buffer.append(example)
            if len(buffer) > self.buffer_size:
                yield buffer.pop(np.random.randint(len(buffer)))
        while buffer:
            yield buffer.pop(np.random.randint(len(buffer)))

    def __iter__(self, random=False):
        raise NotImplementedError("Subclass DataGenerator and write __iter__(self, random=False) yielding batches")

    def forfit(self, random=True):
        """Batches forever (shuffled each pass by default), for `model.fit(..., steps_per_epoch=len(gen))`."""
        while True:
            yield from self.__iter__(random)

    def fortest(self, random=False):
        """Inputs of the batches forever, for `model.predict`."""
        while True:
            for batch in self.__iter__(random):
                yield batch[0]


_END = object()
