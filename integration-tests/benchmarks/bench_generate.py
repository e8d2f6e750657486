"""Greedy generation speed of a small Llama or GPT-2: b4k3-generate against Hugging Face transformers and keras-hub.

One random 55M-parameter Llama (hidden 512, 8 layers, 8 query heads, 2 key/value heads,
intermediate 1408, vocab 32000, untied LM head, fp32; `--model llama`, the default) or a random
GPT-2 of the 124M shape (hidden 768, 12 layers, 12 heads, vocab 50257, 1024 learned positions,
tied LM head; `--model gpt2`) is built with transformers (`LlamaForCausalLM`, `GPT2LMHeadModel`)
from a fixed seed and saved as a Hugging Face directory (safetensors). Every
implementation loads that same directory and continues the same random 32-token prompts by exactly
128 greedy tokens (no end token), at batch 1 and batch 8:

- HF transformers `model.generate(do_sample=False, max_new_tokens=128)` without an end token on
  torch, run eagerly (no `torch.compile`) under `torch.inference_mode()`, with its default
  dynamic KV cache and its default ("sdpa") attention;
- keras-hub `Llama3CausalLM` / `GPT2CausalLM` `.from_preset(directory, preprocessor=None)` (what
  keras-hub reads an HF Llama / GPT-2 directory as), compiled with the "greedy" sampler,
  `generate({"token_ids", "padding_mask"}, stop_token_ids=None)` on the prompt padded to 160
  positions, on jax and torch;
- b4k3 `build_transformer_model(checkpoint_path=directory, return_keras_model=False)` with a
  linear LM head (`with_lm="linear"`, GPT-2's `final_activation="linear"`) and
  `b4k3_generate.generate(model, prompts, 128)` on jax, torch and tensorflow (XLA), each with its
  default `jit_compile="auto"` (on torch a TorchScript trace of the decode step), and on torch with
  `jit_compile=True` ("torch+compile": the decode step under `torch.compile`) and False
  ("torch+eager": the portable eager step).

With `--int8`, b4k3 also runs the same model after Keras' `model.quantize("int8")` on jax, torch
and tensorflow ("b4k3-generate int8"), and the int8 / fp32 ratios of tokens/s and of weight
memory are printed. Every row reports the worker's peak resident memory and, for b4k3, the bytes
of its weights (int8 kernels and embeddings with their float32 scales). int8's greedy tokens are
checked against HF's fp32 ones like the others: they may part from them after a near tie.
`--model tiny` (a 2-layer Llama, vocab 1000) checks the benchmark itself in seconds.

Each implementation runs in a fresh subprocess of this script (KERAS_BACKEND is fixed at import),
pinned to the same cores with the same thread count. At each batch size the first call compiles
(jax.jit, tf.function; keras-hub's jax.jit) and is timed on its own; then `--calls` calls are
timed and the fastest counts (tokens/s = new tokens x batch / seconds). A call for a single new
token (compiled the same way first) times the prefill; the other steps' mean is what is left of
the full call, per step. Every row's tokens are checked against HF's: "match", or the first row
and step that differ. The bandwidth bound is what batch 1 could reach if each step only read the
weights once, at the read bandwidth of a NumPy sum (one thread) or a NumPy matrix-vector product
(BLAS's threads), the faster, over a 1 GiB array (DRAM) and over one the size of the weights
(where a large last-level cache holds some or all of them). Other work on the machine skews the
numbers, torch's most (its OpenMP threads wait for each other, and eager per-op overhead is
paid on every step): the load average before and after is printed.

    hatch run bench:run integration-tests/benchmarks/bench_generate.py [--model gpt2] [--calls 1] [--batch-sizes 1 8]
        [--int8]
"""

import argparse
import functools
import os
import resource
import sys
import tempfile
import time

import numpy as np
from bench_workers import hf_greedy_call, installed, load_average, pin_threads, report, run_in_subprocess

LLAMA_55M = {
    "vocab_size": 32000,
    "hidden_size": 512,
    "num_hidden_layers": 8,
    "num_attention_heads": 8,
    "num_key_value_heads": 2,
    "intermediate_size": 1408,
    "max_position_embeddings": 2048,
    "tie_word_embeddings": False,
}
TINY_LLAMA = {**LLAMA_55M, "vocab_size": 1000, "hidden_size": 64, "num_hidden_layers": 2, "intermediate_size": 128}
GPT2_124M = {"vocab_size": 50257, "n_embd": 768, "n_layer": 12, "n_head": 12, "n_positions": 1024}


class Model:
    """What the benchmark needs of a model: its config, classes and b4k3's logits option."""

    def __init__(self, title, config, hf_class, keras_hub_class, logits_option):
        self.title, self.config, self.hf_class = title, config, hf_class
        self.keras_hub_class, self.logits_option = keras_hub_class, logits_option

    @property
    def vocab_size(self):
        return self.config["vocab_size"]


MODELS = {
    "llama": Model("Llama 55M", LLAMA_55M, "LlamaForCausalLM", "Llama3CausalLM", {"with_lm": "linear"}),
    "tiny": Model("Llama tiny (2 layers)", TINY_LLAMA, "LlamaForCausalLM", "Llama3CausalLM", {"with_lm": "linear"}),
    "gpt2": Model("GPT-2 124M", GPT2_124M, "GPT2LMHeadModel", "GPT2CausalLM", {"final_activation": "linear"}),
}
WORKERS = [
    ("hf", "torch"),
    ("keras-hub", "jax"),
    ("keras-hub", "torch"),
    ("b4k3", "jax"),
    ("b4k3", "torch"),
    ("b4k3", "torch+compile"),
    ("b4k3", "torch+eager"),
    ("b4k3", "tensorflow"),
]
INT8_WORKERS = [("b4k3-int8", "jax"), ("b4k3-int8", "torch"), ("b4k3-int8", "tensorflow")]
NAMES = {
    "hf": "HF transformers",
    "keras-hub": "keras-hub CausalLM",
    "b4k3": "b4k3-generate",
    "b4k3-int8": "b4k3-generate int8",
}
# (name, numerator, denominator, batch size, goal): numerator / denominator in tokens/s.
RATIOS = [
    ("b4k3 jax / keras-hub jax, batch 1", ("b4k3", "jax"), ("keras-hub", "jax"), 1, 1.1),
    ("b4k3 jax / HF eager, batch 1", ("b4k3", "jax"), ("hf", "torch"), 1, 2.0),
    ("b4k3 torch+compile / HF eager, batch 1", ("b4k3", "torch+compile"), ("hf", "torch"), 1, 1.5),
    ("b4k3 torch (default: traced) / HF eager, batch 1", ("b4k3", "torch"), ("hf", "torch"), 1, 1.0),
    ("b4k3 torch (default: traced) / HF eager, batch 8", ("b4k3", "torch"), ("hf", "torch"), 8, 1.0),
    ("b4k3 torch+eager (jit_compile=False) / HF eager, batch 1", ("b4k3", "torch+eager"), ("hf", "torch"), 1, None),
    ("b4k3 jax / keras-hub jax, batch 8", ("b4k3", "jax"), ("keras-hub", "jax"), 8, None),
    ("b4k3 jax / HF eager, batch 8", ("b4k3", "jax"), ("hf", "torch"), 8, None),
    ("b4k3 torch+compile / HF eager, batch 8", ("b4k3", "torch+compile"), ("hf", "torch"), 8, None),
]
# (name, numerator, denominator, batch size) of --int8: int8 / fp32 in tokens/s.
INT8_RATIOS = [
    (f"b4k3 int8 / fp32 {backend}, batch {batch_size}", ("b4k3-int8", backend), ("b4k3", backend), batch_size)
    for batch_size in (1, 8)
    for backend in ("jax", "torch", "tensorflow")
]
# (implementation, batch size, tokens/s goal)
SPEED_GOALS = [(("b4k3", "jax"), 1, 125.0), (("b4k3", "jax"), 8, 600.0)]


def prompts(batch_size, length, vocab_size, seed=0):
    """Random prompt ids (int32), drawn row by row: row 0 is the same prompt at every batch size."""
    return np.random.default_rng(seed).integers(3, vocab_size, size=(batch_size, length), dtype=np.int32)


def save_model(model_name, directory, seed=0):
    """Saves a random fp32 model as an HF directory; returns (parameters, weight bytes, bytes a
    decode step reads: all but the input embedding table, of which it reads one row per token,
    unless the LM head is tied to it)."""
    import torch
    import transformers

    spec = MODELS[model_name]
    torch.manual_seed(seed)
    hf_class = getattr(transformers, spec.hf_class)
    model = hf_class(hf_class.config_class(**spec.config)).eval()
    model.save_pretrained(directory)
    parameters = sum(each.numel() for each in model.parameters())
    embedding = model.get_input_embeddings().weight.numel()
    tied = model.get_output_embeddings().weight is model.get_input_embeddings().weight
    return parameters, parameters * 4, parameters * 4 if tied else (parameters - embedding) * 4


def read_bandwidth(nbytes, repeats=5):
    """Bytes/s read from a float32 array of about `nbytes`: (a NumPy sum, one thread; a NumPy
    matrix-vector product, BLAS's threads: the read a decode step mostly is)."""
    data = np.ones(nbytes // 4096 * 1024, dtype=np.float32)
    matrix, vector = data.reshape(-1, 1024), np.ones(1024, dtype=np.float32)

    def fastest(read):
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            read()
            best = min(best, time.perf_counter() - start)
        return data.nbytes / best

    return fastest(data.sum), fastest(lambda: matrix @ vector)


def last_level_cache():
    """The size of the L3 cache as Linux reports it ('480 MiB'), or 'unknown'."""
    try:
        with open("/sys/devices/system/cpu/cpu0/cache/index3/size") as file:
            size = file.read().strip()
    except OSError:
        return "unknown"
    units = {"K": 2**10, "M": 2**20, "G": 2**30}
    if size[-1:] in units and size[:-1].isdigit():
        return f"{int(size[:-1]) * units[size[-1]] / 2**20:g} MiB"
    return size


def print_bound(weight_bytes, read_bytes):
    """Batch-1 tokens/s if every step only read the weights once, at the measured read bandwidth:
    of DRAM (a 1 GiB array) and of an array the size of the weights (which caches may hold)."""
    print(f"read bandwidth, GB/s (NumPy sum on 1 thread / NumPy float32 matrix @ vector), L3 {last_level_cache()}:")
    sizes = [("1 GiB array", 2**30), (f"{weight_bytes / 2**20:.0f} MiB array (the weights)", weight_bytes)]
    for label, nbytes in sizes:
        summed, product = read_bandwidth(nbytes)
        bandwidth = max(summed, product)
        print(f"  {label:32}{summed / 1e9:6.1f} / {product / 1e9:5.1f}  -> batch-1 bound", end="")
        print(f" {bandwidth / weight_bytes:4.0f} tok/s (all weights),", end="")
        print(f" {bandwidth / read_bytes:4.0f} tok/s (a step's weights)")


def hf_generator(spec, directory):
    """HF's causal LM, and a call `(ids, new_tokens)` returning each row's new tokens."""
    import transformers

    transformers.utils.logging.set_verbosity_error()
    model = getattr(transformers, spec.hf_class).from_pretrained(directory).eval()
    return hf_greedy_call(model), f"generate, {model.config._attn_implementation} attention, inference_mode"


def keras_hub_generator(spec, directory):
    """keras-hub's causal LM read from the HF directory, greedy, and a call returning new tokens."""
    import keras_hub

    model = getattr(keras_hub.models, spec.keras_hub_class).from_preset(directory, preprocessor=None)
    model.compile(sampler="greedy")

    def call(ids, new_tokens):
        batch_size, length = ids.shape
        token_ids = np.zeros((batch_size, length + new_tokens), dtype=np.int32)
        token_ids[:, :length] = ids
        padding_mask = np.zeros(token_ids.shape, dtype=bool)
        padding_mask[:, :length] = True
        output = model.generate({"token_ids": token_ids, "padding_mask": padding_mask}, stop_token_ids=None)
        return np.asarray(output["token_ids"])[:, length:]

    return call, "generate, greedy sampler"


def b4k3_generator(spec, directory, jit_compile="auto", quantize=None):
    """b4k3's model built from the HF directory (then `model.quantize(quantize)` when given), and a
    `generate` call returning new tokens."""
    import warnings

    from b4k3_generate import generate
    from b4k3_models import build_transformer_model

    model = build_transformer_model(checkpoint_path=directory, return_keras_model=False, **spec.logits_option)
    if quantize:
        with warnings.catch_warnings():  # one per layer that has no quantized form (norms, ...)
            warnings.simplefilter("ignore", UserWarning)
            model.model.quantize(quantize)
    weights = sum(np.prod(weight.shape) * np.dtype(weight.dtype).itemsize for weight in model.model.weights)

    def call(ids, new_tokens):
        return np.asarray(generate(model, ids.tolist(), new_tokens, jit_compile=jit_compile))

    return call, f"generate(jit_compile={jit_compile!r}), weights {weights / 2**20:.1f} MiB"


def worker(args):
    """Runs one implementation in this process and prints its timings and tokens as one JSON line."""
    framework, _, mode = args.backend.partition("+")
    threads = pin_threads(args.threads, "torch" if args.worker == "hf" else framework)
    build = {
        "hf": hf_generator,
        "keras-hub": keras_hub_generator,
        "b4k3": b4k3_generator,
        "b4k3-int8": functools.partial(b4k3_generator, quantize="int8"),
    }[args.worker]
    start = time.perf_counter()
    spec = MODELS[args.model]
    jit_compile = {"compile": True, "eager": False}.get(mode)
    call, method = build(spec, args.weights) if jit_compile is None else build(spec, args.weights, jit_compile)
    result = {"method": method, "threads": threads, "load_s": time.perf_counter() - start}
    result["batches"] = time_batches(call, args, spec.vocab_size)
    result["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    report(result)


def run_worker(implementation, backend, args, directory):
    """Runs one worker in a fresh process; returns its result, or {"error": ...} when it failed."""
    command = [sys.executable, os.path.abspath(__file__), "--worker", implementation, "--backend", backend]
    command += ["--model", args.model]
    command += ["--weights", directory, "--threads", str(args.threads), "--calls", str(args.calls)]
    command += ["--prompt-length", str(args.prompt_length), "--new-tokens", str(args.new_tokens)]
    command += ["--batch-sizes", *map(str, args.batch_sizes)]
    return run_in_subprocess(command, None if implementation == "hf" else backend.partition("+")[0])


def tokens_per_second(result, batch_size, args):
    """New tokens per second of the fastest timed call, or None when the run failed."""
    batch = result.get("batches", {}).get(str(batch_size))
    return None if batch is None else batch_size * args.new_tokens / min(batch["seconds"])


def check(tokens, reference):
    """'match', or where the first row that differs from HF's greedy tokens first differs."""
    tokens, reference = np.asarray(tokens), np.asarray(reference)
    if tokens.shape != reference.shape:
        return f"shape {tokens.shape} != {reference.shape}"
    for row, (ours, theirs) in enumerate(zip(tokens, reference, strict=True)):
        differ = np.flatnonzero(ours != theirs)
        if differ.size:
            step = int(differ[0])
            return f"row {row} step {step}: {int(ours[step])} != {int(theirs[step])}"
    return "match"


def versus_hf(implementation, batch, reference, batch_size):
    """How a run's tokens at `batch_size` compare with HF's (`reference`, HF's result)."""
    if implementation == "hf":
        return "(reference)"
    if "error" in reference:
        return "n/a (HF failed)"
    return check(batch["tokens"], reference["batches"][str(batch_size)]["tokens"])


def time_batches(call, args, vocab_size):
    """`{batch size: timings}` of `call(ids, new_tokens)` on random prompts of each of
    `args.batch_sizes`: the first (compiling) call and `args.calls` more, for `args.new_tokens`
    and for one new token (the prefill), with the first call's tokens."""
    batches = {}
    for batch_size in args.batch_sizes:
        ids = prompts(batch_size, args.prompt_length, vocab_size)
        batch = batches[str(batch_size)] = {}
        for key, new_tokens in [("", args.new_tokens), ("one_token_", 1)]:
            start = time.perf_counter()
            tokens = call(ids, new_tokens)
            batch[key + "first_call_s"] = time.perf_counter() - start
            batch[key + "seconds"] = []
            for _ in range(args.calls):
                start = time.perf_counter()
                call(ids, new_tokens)
                batch[key + "seconds"].append(time.perf_counter() - start)
            batch.setdefault("tokens", tokens.tolist())
    return batches


def print_table(results, args):
    """One row per implementation and batch size: speed, compile time, the check against HF."""
    reference = results["hf", "torch"]
    print(f"{'implementation':26}{'backend':12}{'batch':>6}{'tok/s':>9}{'s/call':>8}{'ms/token':>10}", end="")
    print(f"{'1 token ms':>12}{'ms/step':>9}{'1st call s':>12}{'load s':>8}{'RSS MiB':>9}{'threads':>9}", end="")
    print(f"  {'vs HF greedy':28}method")
    for (implementation, backend), result in results.items():
        name = NAMES[implementation]
        if "error" in result:
            print(f"{name:26}{backend:12}  failed: {result['error'][:160]}")
            continue
        for batch_size in args.batch_sizes:
            batch = result["batches"][str(batch_size)]
            seconds, one_token = min(batch["seconds"]), min(batch["one_token_seconds"])
            speed = tokens_per_second(result, batch_size, args)
            token_ms = seconds / args.new_tokens * 1e3
            step_ms = (seconds - one_token) / max(args.new_tokens - 1, 1) * 1e3
            verdict = versus_hf(implementation, batch, reference, batch_size)
            print(f"{name:26}{backend:12}{batch_size:6}{speed:9.1f}{seconds:8.2f}{token_ms:10.2f}", end="")
            print(f"{one_token * 1e3:12.1f}{step_ms:9.2f}{batch['first_call_s']:12.2f}{result['load_s']:8.1f}", end="")
            print(f"{result['peak_rss_mib']:9.0f}", end="")
            print(f"{result['threads']:9}  {verdict:28}", end="")
            print(result["method"])


def verdict(value, goal, unit):
    """'(goal >= 2x: met)' and the like; nothing without a goal."""
    if goal is None:
        return ""
    return f"  (goal >= {goal:g}{unit}: " + ("n/a)" if value is None else ("met)" if value >= goal else "missed)"))


def print_int8_ratios(results, args):
    """int8 / fp32 of b4k3's tokens/s per backend and batch size, and of the weights' bytes."""
    for name, ours, theirs, batch_size in INT8_RATIOS:
        if batch_size not in args.batch_sizes:
            continue
        mine, other = (tokens_per_second(results[key], batch_size, args) for key in (ours, theirs))
        print(f"{name:40}" + ("n/a (a run failed)" if mine is None or other is None else f"{mine / other:.2f}x"))
    sizes = [
        results[key].get("method", "").rpartition("weights ")[2] for key in (("b4k3-int8", "jax"), ("b4k3", "jax"))
    ]
    print(f"{'b4k3 weights, int8 / fp32':40}{sizes[0]} / {sizes[1]}")


def print_goals(results, args):
    """The ratios and speeds the goals are about, each with its goal and whether it is met."""
    for name, ours, theirs, batch_size, goal in RATIOS:
        if batch_size not in args.batch_sizes:
            continue
        mine, other = (tokens_per_second(results[key], batch_size, args) for key in (ours, theirs))
        ratio = None if mine is None or other is None else mine / other
        value = "n/a (a run failed)" if ratio is None else f"{ratio:.2f}x"
        print(f"{name:40}{value:>20}{verdict(ratio, goal, 'x')}")
    for key, batch_size, goal in SPEED_GOALS:
        if batch_size not in args.batch_sizes:
            continue
        speed = tokens_per_second(results[key], batch_size, args)
        value = "n/a (the run failed)" if speed is None else f"{speed:.1f} tok/s"
        print(f"{f'b4k3 {key[1]}, batch {batch_size}':40}{value:>20}{verdict(speed, goal, ' tok/s')}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=sorted(MODELS), default="llama", help="the model generated with")
    parser.add_argument("--calls", type=int, default=1, help="timed calls per batch size after the compiling one")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--prompt-length", type=int, default=32)
    parser.add_argument("--new-tokens", type=int, default=128, help="greedy tokens generated per row")
    parser.add_argument("--int8", action="store_true", help="also b4k3 after model.quantize('int8')")
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)), help="cores and threads each")
    parser.add_argument("--worker", choices=list(NAMES), help=argparse.SUPPRESS)
    parser.add_argument("--backend", help=argparse.SUPPRESS)
    parser.add_argument("--weights", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args)

    import transformers

    transformers.utils.logging.disable_progress_bar()
    load_before = load_average()
    print(
        f"{MODELS[args.model].title}, fp32, prompt {args.prompt_length} tokens + {args.new_tokens} greedy tokens",
        end="",
    )
    print(f", batch sizes {args.batch_sizes}, fastest of {args.calls} timed call(s) after the first")
    print(f"cores: {os.cpu_count()}, threads per process: {args.threads}")
    with tempfile.TemporaryDirectory() as directory:
        parameters, weight_bytes, read_bytes = save_model(args.model, directory)
        print(f"parameters: {parameters / 1e6:.1f}M, weights {weight_bytes / 2**20:.0f} MiB", end="")
        print(f", {read_bytes / 2**20:.0f} MiB read by a step")
        results = {}
        for implementation, backend in WORKERS + (INT8_WORKERS if args.int8 else []):
            results[implementation, backend] = run_worker(implementation, backend, args, directory)
            print(f"  done: {NAMES[implementation]} {backend}", flush=True)
    print_table(results, args)
    print(f"ms/token: s/call / {args.new_tokens}; 1 token ms: a call for 1 new token (the prefill); ", end="")
    print(f"ms/step: the other {args.new_tokens - 1} steps' mean; 1st call s: the first full call (compiles)")
    print_bound(weight_bytes, read_bytes)
    print_goals(results, args)
    if args.int8:
        print_int8_ratios(results, args)
    print(f"load average (1, 5, 15 min) before: {load_before}, after: {load_average()}")
    packages = ["torch", "transformers", "keras", "keras-hub", "jax", "tensorflow-cpu"]
    print(f"python {sys.version.split()[0]}, " + ", ".join(f"{name} {installed(name)}" for name in packages))


if __name__ == "__main__":
    main()
