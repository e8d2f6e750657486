"""RWKV-6 generation, b4k3 against BlinkDL's `rwkv` package on the same weights, and the wkv
prefill of 1024 tokens, chunked against recurrent.

The model is a random RWKV-6 (x060) of `--layers` x `--hidden` (default 12 x 512, head size 64,
vocabulary 65536, low ranks 32 and 64) saved once as a `.pth`:

- `rwkv==0.8.32` `RWKV(strategy='cpu fp32')` (pure torch, `RWKV_JIT_ON=0`): the prompt in one
  `forward`, then one `forward` per token, greedy, under `torch.no_grad()`;
- b4k3 `build_transformer_model(checkpoint_path=pth, model='rwkv6')` and
  `b4k3_generate.generate(model, [prompt], new_tokens)` on jax, torch and tensorflow, each with
  its default `jit_compile="auto"`.

Batch 1, a 16-token prompt and `--new-tokens` greedy tokens; the first b4k3 call (compiling) is
timed alone, then one more call. Every implementation's tokens are checked against the package's.
Each runs in a fresh subprocess pinned to the same cores; other work on the machine skews the
numbers (the load average is printed).

    hatch run bench:run integration-tests/benchmarks/bench_rwkv.py [--layers 12] [--hidden 512]
"""

import argparse
import os
import pathlib
import sys
import tempfile
import time

import numpy as np
from bench_workers import load_average, pin_threads, report, run_in_subprocess

WORKERS = [("rwkv", "torch"), ("b4k3", "jax"), ("b4k3", "torch"), ("b4k3", "tensorflow")]
VOCAB_SIZE, PROMPT_LENGTH = 65_536, 16


def save_random_model(path, layers, hidden):
    import torch

    sys.path.insert(0, str(pathlib.Path(__file__).parents[2] / "packages" / "b4k3-rwkv" / "tests"))
    from rwkv_checks import save_pth, tiny_state_dict

    sizes = {"vocab_size": VOCAB_SIZE, "hidden_size": hidden, "num_hidden_layers": layers, "heads": hidden // 64}
    weights = tiny_state_dict(seed=0, sizes={**sizes, "intermediate_size": hidden * 7 // 2})
    # Smaller projections than the tests' std 0.2, so 12 layers keep activations in range.
    scaled = {name: t * 0.3 if t.ndim == 2 and "_w" not in name else t for name, t in weights.items()}
    save_pth({name: tensor.to(torch.float32) for name, tensor in scaled.items()}, path)


def prompt():
    return np.random.default_rng(0).integers(1, VOCAB_SIZE, PROMPT_LENGTH).tolist()


def rwkv_worker(path, new_tokens):
    import torch
    from rwkv.model import RWKV

    model = RWKV(model=str(path).removesuffix(".pth"), strategy="cpu fp32", verbose=False)
    with torch.no_grad():
        start = time.perf_counter()
        logits, state = model.forward(prompt(), None)
        tokens = []
        for _ in range(new_tokens):
            tokens.append(int(torch.argmax(logits)))
            logits, state = model.forward(tokens[-1:], state)
        seconds = time.perf_counter() - start
    return {"tokens": tokens, "seconds": seconds}


def b4k3_worker(path, new_tokens):
    import keras

    from b4k3_generate import generate
    from b4k3_models import build_transformer_model
    from b4k3_rwkv import wkv6_chunked, wkv6_recurrent

    model = build_transformer_model(checkpoint_path=path, model="rwkv6", with_lm="linear", return_keras_model=False)
    start = time.perf_counter()
    generate(model, [prompt()], new_tokens)
    first = time.perf_counter() - start
    start = time.perf_counter()
    tokens = generate(model, [prompt()], new_tokens)[0]
    seconds = time.perf_counter() - start
    rng = np.random.default_rng(1)
    heads = model.hidden_size // 64
    r, k, v = (rng.normal(size=(1, 1024, heads, 64)).astype("float32") * 0.5 for _ in range(3))
    log_w = -np.exp(rng.normal(size=(1, 1024, heads, 64)) - 1).astype("float32")
    u, state = np.zeros((heads, 64), "float32"), np.zeros((1, heads, 64, 64), "float32")
    prefill = {}
    for name, form in (("chunked", wkv6_chunked), ("recurrent", wkv6_recurrent)):
        for _ in range(2):  # the second run, after whatever the first compiled or warmed
            start = time.perf_counter()
            keras.ops.convert_to_numpy(form(r, k, v, log_w, u, state)[0])
            prefill[name] = time.perf_counter() - start
    return {"tokens": tokens, "seconds": seconds, "first": first, "prefill": prefill}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=12)
    parser.add_argument("--hidden", type=int, default=512)
    parser.add_argument("--new-tokens", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--worker", nargs=2, metavar=("IMPLEMENTATION", "PTH"))
    args = parser.parse_args()
    if args.worker:
        implementation, path = args.worker
        pin_threads(args.threads, "torch" if implementation == "rwkv" else os.environ["KERAS_BACKEND"])
        report((rwkv_worker if implementation == "rwkv" else b4k3_worker)(path, args.new_tokens))
        return
    print(f"load average before: {load_average()}")
    with tempfile.TemporaryDirectory() as directory:
        path = pathlib.Path(directory) / "random-x060.pth"
        save_random_model(path, args.layers, args.hidden)
        results = {}
        for implementation, backend in WORKERS:
            command = [sys.executable, __file__, "--worker", implementation, str(path)]
            command += ["--new-tokens", str(args.new_tokens), "--threads", str(args.threads)]
            results[implementation, backend] = run_in_subprocess(command, backend, RWKV_JIT_ON="0", RWKV_CUDA_ON="0")
    reference = results["rwkv", "torch"]
    print(f"RWKV-6 {args.layers} x {args.hidden}, fp32, batch 1, {PROMPT_LENGTH} + {args.new_tokens} greedy tokens")
    for (implementation, backend), result in results.items():
        if "error" in result:
            print(f"{implementation:5} {backend:10} error: {result['error']}")
            continue
        speed = (args.new_tokens + PROMPT_LENGTH) / result["seconds"]
        line = f"{implementation:5} {backend:10} {speed:7.1f} tokens/s"
        if implementation == "b4k3":
            same = result["tokens"] == reference.get("tokens")
            ratio = reference["seconds"] / result["seconds"] if "seconds" in reference else float("nan")
            prefill = result["prefill"]
            line += f"  {ratio:.2f}x the rwkv package  first call {result['first']:.1f} s  tokens equal: {same}"
            chunked, recurrent = prefill["chunked"] * 1e3, prefill["recurrent"] * 1e3
            line += f"  | wkv prefill 1024: chunked {chunked:.0f} ms, recurrent {recurrent:.0f} ms"
        print(line)
    print(f"load average after: {load_average()}")


if __name__ == "__main__":
    main()
