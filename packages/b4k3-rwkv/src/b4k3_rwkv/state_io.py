"""State in and state out for RWKV6 generation: bert4keras3's `build_cache_model(...,
input_state=True, output_state=True)` on top of b4k3-generate's generator.

The state a generation gives out is the model's states after reading each row whole: its prompt
and every token generated, the end token included. Feeding it back with the next prompt continues
exactly as one long call over the concatenated text would.
"""

import numpy as np


def rows_read(tokens, prompt_lengths, end_tokens):
    """Each row of a generator's output `(batch, max_length)` up to and including its first end
    token after the prompt (the whole row when it has none)."""
    rows = []
    for row, length in zip(np.asarray(tokens), prompt_lengths, strict=True):
        ends = [position for position in range(length, len(row)) if row[position] in end_tokens]
        rows.append(row[: ends[0] + 1 if ends else len(row)].tolist())
    return rows


class StateCacheModel:
    """An RWKV6 generator with state in and/or out (`RWKV6.build_cache_model`).

    `predict(tokens)`, or `predict([tokens, state])` with `input_state`: the prompts (right-padded
    with 0, as b4k3-generate's `CacheModel`) read after `state` (`RWKV6.read`'s form: per layer
    `(time shift, wkv, channel shift)`, one row per prompt). Returns the `(batch, max_length)`
    tokens, and with `output_state` `[tokens, state after them]`.
    """

    def __init__(self, rwkv, cache_model, input_state, output_state):
        self.rwkv = rwkv
        self.cache_model = cache_model
        self.input_state = input_state
        self.output_state = output_state

    def predict(self, inputs, prompt_lengths=None, seed=None):
        if self.input_state and (not isinstance(inputs, (list, tuple)) or len(inputs) != 2):
            raise ValueError("input_state=True: predict takes [tokens, state] (state as RWKV6.read returns it)")
        tokens, state = inputs if self.input_state else (inputs, None)
        tokens = np.asarray(tokens, dtype="int32")
        output = self.cache_model.predict(tokens, prompt_lengths, seed, cache=state)
        if not self.output_state:
            return output
        lengths = self.cache_model.prompt_lengths(tokens) if prompt_lengths is None else prompt_lengths
        rows = rows_read(output, lengths, self.cache_model.settings.end_tokens)
        return [output, self.rwkv.read(rows, state)]
