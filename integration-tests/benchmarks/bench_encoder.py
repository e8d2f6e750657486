"""Inference speed of a BERT-base encoder: b4k3 against Hugging Face transformers and keras-hub.

One random BERT-base model (hidden 768, 12 layers, 12 heads, intermediate 3072, vocab 30522, fp32)
is built with transformers from a fixed seed and saved as a Hugging Face directory (safetensors).
Every implementation loads that same directory and encodes the same batch of random token ids
(int32, pad id 0 at the end of some rows, attention mask = ids != 0):

- HF transformers `BertModel` on torch, under `torch.inference_mode()`, with the "sdpa" attention
  (the default) and with the "eager" one;
- keras-hub `BertBackbone.from_preset(directory)` on jax, torch and tensorflow;
- b4k3 `build_transformer_model(checkpoint_path=directory)` on jax, torch and tensorflow, with its
  own attention and with `FLASH_ATTN=1` (attention through `keras.ops.dot_product_attention`).

The Keras models are called the way a user would call them for inference: `model.predict_on_batch`
on jax and tensorflow (one compiled XLA function, resp. one `tf.function`, built on the first call)
and `model(inputs, training=False)` under `torch.inference_mode()` on torch (what `predict_on_batch`
computes there, under `no_grad`, with its per-call overhead). Each implementation runs in a fresh
subprocess of this script (KERAS_BACKEND is fixed at import), pinned to the same cores with the
same thread count. Before timing, each checks its sequence output against the HF model's on the
non-padded positions; keras-hub's BERT uses the tanh approximation of GELU where the HF config
says the exact one, so it is checked against the same HF weights run with
`hidden_act="gelu_pytorch_tanh"`. After `--warmup` calls (the first compiles), `--batches` calls
are timed, one run; ms/batch is their median, min ms the fastest. Other work on the machine skews
the numbers, torch's most (its OpenMP threads wait for each other): the load average before and
after is printed.

    hatch run bench:run integration-tests/benchmarks/bench_encoder.py [--batches 20] [--batch-size 8] [--length 128]
"""

import argparse
import os
import sys
import tempfile
import time

import numpy as np
from bench_workers import installed, load_average, pin_threads, report, run_in_subprocess

BERT_BASE = {
    "vocab_size": 30522,
    "hidden_size": 768,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "intermediate_size": 3072,
    "max_position_embeddings": 512,
    "type_vocab_size": 2,
}
TOLERANCE = 1e-4
WORKERS = [
    ("hf", "sdpa"),
    ("hf", "eager"),
    ("keras-hub", "jax"),
    ("keras-hub", "torch"),
    ("keras-hub", "tensorflow"),
    ("b4k3", "jax"),
    ("b4k3", "torch"),
    ("b4k3", "tensorflow"),
    ("b4k3-flash", "jax"),
    ("b4k3-flash", "torch"),
    ("b4k3-flash", "tensorflow"),
]
NAMES = {
    "hf": "HF transformers",
    "keras-hub": "keras-hub BertBackbone",
    "b4k3": "b4k3",
    "b4k3-flash": "b4k3 FLASH_ATTN=1",
}


def token_ids(batch_size, length, vocab_size, seed=0):
    """Random ids, [CLS] first and [SEP] last, every other row padded with 0 at the end."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(1000, vocab_size, size=(batch_size, length), dtype=np.int32)
    ids[:, 0] = 101
    for row in range(batch_size):
        used = length if row % 2 == 0 else int(rng.integers(length // 4, length))
        ids[row, used - 1] = 102
        ids[row, used:] = 0
    return ids


def save_model(directory, ids, seed=0):
    """Saves a random BERT-base as an HF directory; writes its outputs on `ids` (exact and tanh GELU)."""
    import torch
    import transformers

    torch.manual_seed(seed)
    model = transformers.BertModel(transformers.BertConfig(**BERT_BASE)).eval()
    model.save_pretrained(directory)
    tanh_model = transformers.BertModel(transformers.BertConfig(**BERT_BASE, hidden_act="gelu_pytorch_tanh")).eval()
    tanh_model.load_state_dict(model.state_dict())
    inputs = torch.from_numpy(ids).long()
    with torch.inference_mode():
        for name, each in [("reference", model), ("reference_tanh_gelu", tanh_model)]:
            output = each(input_ids=inputs, attention_mask=inputs != 0).last_hidden_state
            np.save(os.path.join(directory, f"{name}.npy"), output.numpy())
    np.save(os.path.join(directory, "ids.npy"), ids)


def hf_encoder(directory, attention, ids):
    """HF `BertModel` with the given attention implementation, and a call on `ids`."""
    import torch
    import transformers

    model = transformers.BertModel.from_pretrained(directory, attn_implementation=attention).eval()
    inputs = torch.from_numpy(ids).long()
    mask = inputs != 0

    def call():
        with torch.inference_mode():
            return model(input_ids=inputs, attention_mask=mask).last_hidden_state.numpy()

    return call, "inference_mode"


def keras_call(model, inputs):
    """The fastest inference call a user makes: predict_on_batch, or the model itself under torch."""
    import keras

    if keras.backend.backend() == "torch":
        import torch

        def call():
            with torch.inference_mode():
                return keras.tree.map_structure(keras.ops.convert_to_numpy, model(inputs, training=False))

        return call, "model() in inference_mode"
    return lambda: model.predict_on_batch(inputs), "predict_on_batch"


def keras_hub_encoder(directory, ids):
    """keras-hub `BertBackbone` read from the HF directory, and a call returning its sequence output."""
    import keras_hub

    model = keras_hub.models.BertBackbone.from_preset(directory)
    inputs = {"token_ids": ids, "segment_ids": np.zeros_like(ids), "padding_mask": (ids != 0).astype(np.int32)}
    call, method = keras_call(model, inputs)
    return (lambda: call()["sequence_output"]), method


def b4k3_encoder(directory, ids):
    """b4k3's model built from the HF directory, and a call returning its sequence output."""
    from b4k3_models import build_transformer_model

    model = build_transformer_model(checkpoint_path=directory)
    return keras_call(model, [ids, np.zeros_like(ids)])


def max_difference(output, reference, ids):
    """Largest absolute difference on the positions that are not padding."""
    valid = ids != 0
    return float(np.max(np.abs(np.asarray(output)[valid] - reference[valid])))


def worker(args):
    """Runs one implementation in this process and prints its timings as one JSON line."""
    threads = pin_threads(args.threads, "torch" if args.worker == "hf" else args.backend)
    ids = np.load(os.path.join(args.weights, "ids.npy"))
    start = time.perf_counter()
    if args.worker == "hf":
        call, method = hf_encoder(args.weights, args.backend, ids)
    else:
        build = keras_hub_encoder if args.worker == "keras-hub" else b4k3_encoder
        call, method = build(args.weights, ids)
    load_seconds = time.perf_counter() - start
    reference = "reference_tanh_gelu" if args.worker == "keras-hub" else "reference"
    start = time.perf_counter()
    output = call()
    first_seconds = time.perf_counter() - start
    difference = max_difference(output, np.load(os.path.join(args.weights, f"{reference}.npy")), ids)
    for _ in range(args.warmup - 1):
        call()
    times = []
    for _ in range(args.batches):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    result = {
        "method": method,
        "threads": threads,
        "load_s": load_seconds,
        "first_call_s": first_seconds,
        "seconds": times,
        "difference": difference,
        "reference": reference,
    }
    report(result)


def run_worker(implementation, backend, args, directory):
    """Runs one worker in a fresh process; returns its result, or {"error": ...} when it failed."""
    command = [sys.executable, os.path.abspath(__file__), "--worker", implementation, "--backend", backend]
    command += ["--weights", directory, "--threads", str(args.threads)]
    command += ["--batches", str(args.batches), "--warmup", str(args.warmup)]
    flash = "1" if implementation == "b4k3-flash" else "0"
    return run_in_subprocess(command, None if implementation == "hf" else backend, FLASH_ATTN=flash)


def print_table(results, args):
    """One row per implementation: speed, ratio to HF sdpa, and the check against HF."""
    reference = results[("hf", "sdpa")]
    baseline = np.median(reference["seconds"]) if "seconds" in reference else float("nan")
    print(f"{'implementation':24}{'backend':12}{'seq/s':>8}{'ms/batch':>10}{'min ms':>9}{'vs HF sdpa':>12}", end="")
    print(f"{'max |diff|':>12}  {'check':8}{'load s':>8}{'1st call s':>12}{'threads':>9}  method")
    for (implementation, backend), result in results.items():
        name = NAMES[implementation]
        if "error" in result:
            print(f"{name:24}{backend:12}  failed: {result['error'][:160]}")
            continue
        seconds = float(np.median(result["seconds"]))
        check = "ok" if result["difference"] <= TOLERANCE else "MISMATCH"
        fastest = min(result["seconds"]) * 1e3
        speed = f"{args.batch_size / seconds:8.2f}{seconds * 1e3:10.1f}{fastest:9.1f}{baseline / seconds:11.2f}x"
        print(f"{name:24}{backend:12}{speed}", end="")
        print(f"{result['difference']:12.1e}  {check:8}{result['load_s']:8.1f}{result['first_call_s']:12.2f}", end="")
        print(f"{result['threads']:9}  {result['method']}")


def print_best(results):
    """The fastest b4k3 row against HF transformers (sdpa), the number the goal is about."""
    timed = {key: np.median(each["seconds"]) for key, each in results.items() if "seconds" in each}
    ours = [key for key in timed if key[0].startswith("b4k3")]
    if not ours or ("hf", "sdpa") not in timed:
        print("best b4k3 / HF transformers: n/a (a run failed)")
        return
    best = min(ours, key=timed.get)
    ratio = timed["hf", "sdpa"] / timed[best]
    print(f"best b4k3 / HF transformers: {ratio:.2f}x (goal >= 1.2x), {NAMES[best[0]]} on {best[1]}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=20, help="timed calls per implementation")
    parser.add_argument("--warmup", type=int, default=3, help="untimed calls first (the first one compiles)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--length", type=int, default=128, help="sequence length")
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)), help="cores and threads each")
    parser.add_argument("--worker", choices=list(NAMES), help=argparse.SUPPRESS)
    parser.add_argument("--backend", help=argparse.SUPPRESS)
    parser.add_argument("--weights", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args)

    import torch
    import transformers

    transformers.utils.logging.disable_progress_bar()
    load_before = load_average()
    print(f"BERT-base, fp32, batch {args.batch_size} x length {args.length}, {args.batches} timed batches")
    print(f"cores: {os.cpu_count()}, threads per process: {args.threads}, torch threads: {torch.get_num_threads()}")
    with tempfile.TemporaryDirectory() as directory:
        ids = token_ids(args.batch_size, args.length, BERT_BASE["vocab_size"])
        print(f"non-padded tokens per row: {(ids != 0).sum(axis=1).tolist()}")
        save_model(directory, ids)
        results = {}
        for implementation, backend in WORKERS:
            results[implementation, backend] = run_worker(implementation, backend, args, directory)
            print(f"  done: {NAMES[implementation]} {backend}", flush=True)
    print_table(results, args)
    print(f"max |diff|: sequence output against HF's on the non-padded positions (ok when <= {TOLERANCE:g})")
    print_best(results)
    print(f"load average (1, 5, 15 min) before: {load_before}, after: {load_average()}")
    packages = ["torch", "transformers", "keras", "keras-hub", "jax", "tensorflow-cpu"]
    print(f"python {sys.version.split()[0]}, " + ", ".join(f"{name} {installed(name)}" for name in packages))


if __name__ == "__main__":
    main()
