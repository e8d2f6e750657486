"""A Keras model that is not a b4k3 family, generating text through b4k3-generate alone.

b4k3-generate drives any model that implements its decoding protocol (the b4k3-generate README
describes it for downstream authors). `TinyCausalLM` below is written here in a few layers (token
and position embeddings, one causal attention head, a linear head) and implements the protocol's
`vocab_size`, `build_cache` and `call_with_cache` (plus the optional `max_positions`). That is all
it takes to get greedy, top-p and streamed generation, with the repetition penalty and banned
tokens, from `generate` and `stream`, compiled on JAX and TensorFlow.

    python examples/downstream_decoder.py

It prints the tokens of each kind of generation and checks the greedy ones against a plain loop
that reruns the whole sequence through the model and takes the argmax at every step.
"""

import os

os.environ.setdefault("KERAS_BACKEND", "jax")

import keras
import numpy as np
from keras import ops

from b4k3_generate import generate, stream

PROMPTS = [[3, 14, 15, 9, 26], [5, 35], [8, 9, 7, 9]]
NEW_TOKENS = 12


class TinyCausalLM(keras.Model):
    """Token + learned position embeddings, one causal attention head with a residual, a linear
    LM head. `call` is the ordinary full pass; `build_cache` and `call_with_cache` are the
    decoding protocol, the same computation one chunk of positions at a time."""

    def __init__(self, vocab_size=40, hidden_size=32, max_positions=64, **kwargs):
        super().__init__(**kwargs)
        self.vocab_size = vocab_size  # protocol: prompts and end tokens are checked against it
        self.max_positions = max_positions  # protocol (optional): longer generations are refused
        self.hidden_size = hidden_size
        self.token_embedding = keras.layers.Embedding(vocab_size, hidden_size)
        self.position_embedding = keras.layers.Embedding(max_positions, hidden_size)
        self.query = keras.layers.Dense(hidden_size)
        self.key_value = keras.layers.Dense(2 * hidden_size)
        self.head = keras.layers.Dense(vocab_size)

    def logits(self, token_ids, positions, keys_values, key_positions):
        """The logits of tokens at `positions` `(batch, T)`, attending to the keys and values
        `(batch, S, 2 * hidden)` at `key_positions` `(batch, S)` up to their own position."""
        x = self.token_embedding(token_ids) + self.position_embedding(positions)
        keys, values = ops.split(keys_values, 2, axis=-1)
        scores = ops.einsum("btd,bsd->bts", self.query(x), keys) / self.hidden_size**0.5
        visible = key_positions[:, None, :] <= positions[:, :, None]
        weights = ops.softmax(ops.where(visible, scores, -1e9), axis=-1)
        return self.head(x + ops.einsum("bts,bsd->btd", weights, values))

    def call(self, token_ids):
        token_ids = ops.convert_to_tensor(token_ids, "int32")
        positions = ops.broadcast_to(ops.arange(ops.shape(token_ids)[1], dtype="int32")[None], ops.shape(token_ids))
        x = self.token_embedding(token_ids) + self.position_embedding(positions)
        return self.logits(token_ids, positions, self.key_value(x), positions)

    def build_cache(self, batch_size, max_length):
        """Protocol: the empty cache, the keys and values of `max_length` positions."""
        return ops.zeros((batch_size, max_length, 2 * self.hidden_size), dtype=self.compute_dtype)

    def call_with_cache(self, inputs, cache, index):
        """Protocol: the logits of `inputs` `(batch, T)` at positions `index .. index + T - 1`
        (`index` one int for all rows or one per row), and the cache with their keys and values
        written in at those positions."""
        token_ids = ops.convert_to_tensor(inputs, "int32")
        index = ops.convert_to_tensor(index, "int32")
        batch_size, length = ops.shape(token_ids)[0], ops.shape(token_ids)[1]
        starts = index if len(index.shape) == 1 else ops.broadcast_to(index, (batch_size,))
        positions = starts[:, None] + ops.arange(length, dtype="int32")[None]
        x = self.token_embedding(token_ids) + self.position_embedding(positions)
        written = ops.one_hot(positions, ops.shape(cache)[1], dtype=cache.dtype)  # (batch, T, max_length)
        kept = 1 - ops.sum(written, axis=1)[:, :, None]
        cache = cache * kept + ops.einsum("btl,btd->bld", written, self.key_value(x))
        key_positions = ops.broadcast_to(ops.arange(ops.shape(cache)[1], dtype="int32")[None], ops.shape(cache)[:2])
        return self.logits(token_ids, positions, cache, key_positions), cache


def tiny_model(seed=0):
    """A `TinyCausalLM` with random weights drawn from `seed`, built."""
    keras.utils.set_random_seed(seed)
    model = TinyCausalLM()
    model(np.zeros((1, 2), dtype="int32"))
    return model


def plain_greedy(model, prompt, new_tokens, banned=()):
    """The reference: rerun the whole sequence and take the argmax (of the unbanned tokens)."""
    tokens = list(prompt)
    for _ in range(new_tokens):
        logits = ops.convert_to_numpy(model(np.array([tokens])))[0, -1]
        logits[list(banned)] = -np.inf
        tokens.append(int(np.argmax(logits)))
    return tokens[len(prompt) :]


def main():
    model = tiny_model()
    print(f"Keras backend: {keras.backend.backend()}")
    print(f"Prompts: {PROMPTS}")
    greedy = generate(model, PROMPTS, NEW_TOKENS)
    plain = [plain_greedy(model, prompt, NEW_TOKENS) for prompt in PROMPTS]
    print(f"greedy:                {greedy}")
    print(f"plain argmax loop:     {plain}")
    print(f"greedy equals the plain loop: {greedy == plain}")
    banned = sorted({token for row in greedy for token in row})[:3]
    without = generate(model, PROMPTS, NEW_TOKENS, mask_output=banned)
    print(f"greedy, {banned} banned: {without}")
    plain_without = [plain_greedy(model, prompt, NEW_TOKENS, banned) for prompt in PROMPTS]
    print(f"equals the plain loop with them banned: {without == plain_without}")
    top_p = generate(model, PROMPTS, NEW_TOKENS, search_mode="topp", k=0.9, seed=1)
    print(f"top-p 0.9, seed 1:     {top_p}")
    penalised = generate(model, PROMPTS, NEW_TOKENS, penalty=2.0, temperature=0.7, search_mode="topk", k=5, seed=1)
    print(f"penalty 2, T 0.7, top-5: {penalised}")
    end_token = greedy[1][-1]
    print(f"streamed greedy, {end_token} ends a row (None once a row has ended):")
    for step in stream(model, PROMPTS, NEW_TOKENS, end_token=end_token):
        print(f"  {step}")


if __name__ == "__main__":
    main()
