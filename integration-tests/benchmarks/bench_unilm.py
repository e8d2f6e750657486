"""UniLM seq2seq generation speed of a BERT-base: b4k3-generate's KV cache against the uncached loop.

A BERT of the base shape (hidden 768, 12 layers, 12 heads, intermediate 3072, vocab 21128, 512
learned positions; random weights from a fixed seed, fp32) is built with `application='unilm'`
and a linear MLM head. Random sources of `--source-length` tokens are continued by exactly
`--new-tokens` greedy tokens (no end token), on the backend KERAS_BACKEND names:

- cached: `b4k3_generate.generate(model, sources, new_tokens)` (default `jit_compile="auto"`); the
  first call compiles and is timed on its own, the second is the figure;
- uncached: what a UniLM generator without a cache does (bert4keras' `AutoRegressiveDecoder`): at
  every step the whole Keras model runs on the source and the target so far (segment ids 0 then
  1) and the argmax at the last position is the next token.

Both must produce the same tokens ("match"). Tokens/s = new tokens x batch / seconds; the ratio is
cached / uncached. Other work on the machine skews both: the load average is printed.

    hatch run bench:run integration-tests/benchmarks/bench_unilm.py [--batch-size 1] [--new-tokens 32]
"""

import argparse
import os
import time

import keras
import numpy as np

from b4k3_generate import generate
from b4k3_models import build_transformer_model

BERT_BASE = {
    "vocab_size": 21128,
    "hidden_size": 768,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "intermediate_size": 3072,
    "hidden_act": "gelu",
    "max_position": 512,
}


def uncached(transformer, sources, new_tokens):
    """The new tokens of each row from re-running the full model at every step (rows in lock-step:
    the sources have one length)."""
    tokens = np.asarray(sources, dtype="int32")
    source_length = tokens.shape[1]
    for _ in range(new_tokens):
        segments = np.broadcast_to((np.arange(tokens.shape[1]) >= source_length).astype("int32"), tokens.shape)
        logits = keras.ops.convert_to_numpy(transformer.model([tokens, segments], training=False))
        tokens = np.concatenate([tokens, logits[:, -1].argmax(-1)[:, None].astype("int32")], axis=1)
    return tokens[:, source_length:].tolist()


def timed(function):
    start = time.perf_counter()
    result = function()
    return result, time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--source-length", type=int, default=64)
    parser.add_argument("--new-tokens", type=int, default=32)
    args = parser.parse_args()

    keras.utils.set_random_seed(0)
    transformer = build_transformer_model(**BERT_BASE, application="unilm", with_mlm="linear", return_keras_model=False)
    rng = np.random.default_rng(0)
    sources = rng.integers(1, BERT_BASE["vocab_size"], size=(args.batch_size, args.source_length)).tolist()
    print(f"Keras backend: {keras.backend.backend()}; load average before: {os.getloadavg()[0]:.2f}")

    _, compiling = timed(lambda: generate(transformer, sources, args.new_tokens))
    cached_tokens, cached = timed(lambda: generate(transformer, sources, args.new_tokens))
    uncached_tokens, plain = timed(lambda: uncached(transformer, sources, args.new_tokens))

    produced = args.new_tokens * args.batch_size
    verdict = "match" if cached_tokens == uncached_tokens else "DIFFER"
    print(f"batch {args.batch_size}, source {args.source_length}, {args.new_tokens} new tokens ({verdict})")
    print(f"  cached (KV cache, compiled loop): {produced / cached:8.1f} tokens/s  (first call {compiling:.1f} s)")
    print(f"  uncached (full model per step):   {produced / plain:8.1f} tokens/s")
    print(f"  ratio cached / uncached: {plain / cached:.1f}x; load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
