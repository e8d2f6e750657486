"""Greedy encoder-decoder generation speed of a t5-small-shaped T5: b4k3-generate against Hugging Face transformers.

One random T5 of t5-small's shape (t5.1.0: vocab 32128, d_model 512, 6 + 6 layers, 8 heads of 64,
ReLU feed-forward of 2048, head tied to the embeddings, fp32; 60M parameters) is built with
transformers' `T5ForConditionalGeneration` from a fixed seed and saved as a Hugging Face
directory. Both implementations load it and continue the same random 64-token encoder inputs by
exactly 64 greedy tokens (no end token), at batch 1 and batch 8:

- HF transformers `model.generate(do_sample=False, max_new_tokens=64)` on torch, eager, under
  `torch.inference_mode()`, with its default cache (cross-attention keys/values computed once);
- b4k3 `build_transformer_model(checkpoint_path=directory, with_lm="linear",
  return_keras_model=False)` and `b4k3_generate.generate(model, encoder_ids, 64)` on jax, torch
  and tensorflow (XLA), each with its default `jit_compile="auto"`.

Each runs in a fresh subprocess pinned to the same cores (`bench_workers`); the first call at each
batch size compiles and is timed on its own, then `--calls` calls are timed and the fastest
counts (tokens/s = new tokens x batch / seconds); a call for one new token times the encoder and
prefill. Every row's tokens are checked against HF's.

    hatch run bench:run integration-tests/benchmarks/bench_t5.py [--calls 1] [--batch-sizes 1 8]
"""

import argparse
import os
import sys
import tempfile
import time

import numpy as np
from bench_generate import print_table, time_batches, tokens_per_second
from bench_workers import installed, load_average, pin_threads, report, run_in_subprocess

T5_SMALL = {
    "vocab_size": 32128,
    "d_model": 512,
    "d_kv": 64,
    "d_ff": 2048,
    "num_layers": 6,
    "num_heads": 8,
    "feed_forward_proj": "relu",
    "decoder_start_token_id": 0,
    "pad_token_id": 0,
    "eos_token_id": 1,
}
WORKERS = [("hf", "torch"), ("b4k3", "jax"), ("b4k3", "torch"), ("b4k3", "tensorflow")]


def hf_generator(directory):
    """HF's T5 and a call `(encoder ids, new_tokens)` returning each row's new tokens."""
    import torch
    import transformers

    transformers.utils.logging.set_verbosity_error()
    model = transformers.T5ForConditionalGeneration.from_pretrained(directory).eval()
    model.generation_config.eos_token_id = None

    def call(ids, new_tokens):
        inputs = torch.from_numpy(ids).long()
        with torch.inference_mode():
            output = model.generate(
                inputs, attention_mask=torch.ones_like(inputs), do_sample=False, max_new_tokens=new_tokens
            )
        return output[:, 1:].numpy()  # without the decoder start token

    return call, "generate, inference_mode"


def b4k3_generator(directory):
    """b4k3's T5 from the HF directory and a `generate` call returning new tokens."""
    from b4k3_generate import generate
    from b4k3_models import build_transformer_model

    model = build_transformer_model(checkpoint_path=directory, with_lm="linear", return_keras_model=False)
    return (lambda ids, new_tokens: np.asarray(generate(model, ids.tolist(), new_tokens))), "generate"


def worker(args):
    """Runs one implementation in this process and prints its timings and tokens as one JSON line."""
    threads = pin_threads(args.threads, "torch" if args.worker == "hf" else args.backend)
    start = time.perf_counter()
    call, method = {"hf": hf_generator, "b4k3": b4k3_generator}[args.worker](args.weights)
    result = {"method": method, "threads": threads, "load_s": time.perf_counter() - start}
    result["batches"] = time_batches(call, args, T5_SMALL["vocab_size"])
    report(result)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1, help="timed calls per batch size after the compiling one")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--prompt-length", type=int, default=64, help="encoder tokens per row")
    parser.add_argument("--new-tokens", type=int, default=64, help="greedy tokens generated per row")
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)), help="cores and threads each")
    parser.add_argument("--worker", choices=["hf", "b4k3"], help=argparse.SUPPRESS)
    parser.add_argument("--backend", help=argparse.SUPPRESS)
    parser.add_argument("--weights", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args)

    import torch
    import transformers

    transformers.utils.logging.disable_progress_bar()
    load_before = load_average()
    print(f"T5 (t5-small shape), fp32, {args.prompt_length} encoder tokens -> {args.new_tokens} greedy tokens", end="")
    print(f", batch sizes {args.batch_sizes}, fastest of {args.calls} timed call(s) after the first")
    results = {}
    with tempfile.TemporaryDirectory() as directory:
        torch.manual_seed(0)
        model = transformers.T5ForConditionalGeneration(transformers.T5Config(**T5_SMALL))
        model.save_pretrained(directory)
        print(f"parameters: {sum(each.numel() for each in model.parameters()) / 1e6:.1f}M")
        for implementation, backend in WORKERS:
            command = [sys.executable, os.path.abspath(__file__), "--worker", implementation, "--backend", backend]
            command += ["--weights", directory, "--threads", str(args.threads), "--calls", str(args.calls)]
            command += ["--prompt-length", str(args.prompt_length), "--new-tokens", str(args.new_tokens)]
            command += ["--batch-sizes", *map(str, args.batch_sizes)]
            results[implementation, backend] = run_in_subprocess(command, None if implementation == "hf" else backend)
            print(f"  done: {implementation} {backend}", flush=True)
    print_table(results, args)
    for batch_size in args.batch_sizes:
        reference = tokens_per_second(results["hf", "torch"], batch_size, args)
        for backend in ("jax", "torch", "tensorflow"):
            speed = tokens_per_second(results["b4k3", backend], batch_size, args)
            ratio = "n/a" if speed is None or reference is None else f"{speed / reference:.2f}x"
            print(f"b4k3 {backend} / HF eager, batch {batch_size}: {ratio}")
    print(f"load average (1, 5, 15 min) before: {load_before}, after: {load_average()}")
    packages = ["torch", "transformers", "keras", "jax", "tensorflow-cpu"]
    print(f"python {sys.version.split()[0]}, " + ", ".join(f"{name} {installed(name)}" for name in packages))


if __name__ == "__main__":
    main()
