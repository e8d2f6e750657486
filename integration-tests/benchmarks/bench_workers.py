"""What the benchmarks share: each implementation runs in a fresh subprocess of the benchmark
script (a Keras backend is fixed at import), pinned to the same cores, and reports one JSON line;
the parent reads it back and prints what the machine was doing."""

import importlib.metadata
import json
import os
import subprocess

RESULT_PREFIX = "RESULT "


def report(result):
    """Prints a worker's result as the one line `run_in_subprocess` reads back."""
    print(RESULT_PREFIX + json.dumps(result), flush=True)


def run_in_subprocess(command, backend=None, **environment):
    """Runs a worker `command` (an argument list) with `KERAS_BACKEND=backend` when given and the
    extra `environment` variables; returns its result, or {"error": its last output line}."""
    environment = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", **environment)
    if backend is not None:
        environment["KERAS_BACKEND"] = backend
    done = subprocess.run(command, env=environment, capture_output=True, text=True)
    for line in done.stdout.splitlines():
        if line.startswith(RESULT_PREFIX):
            return json.loads(line[len(RESULT_PREFIX) :])
    lines = (done.stderr or done.stdout).strip().splitlines() or [f"exit status {done.returncode}"]
    return {"error": lines[-1]}


def hf_greedy_call(model):
    """A call `(ids, new_tokens)` of an HF causal LM: greedy `generate` under inference mode,
    returning each row's new tokens (NumPy). No end token, as b4k3 runs in the benchmarks: every
    row gets exactly `new_tokens` (with `min_new_tokens` instead, HF would mask the end token's
    logit and differ where a row's argmax is the end)."""
    import torch

    model.generation_config.eos_token_id = None

    def call(ids, new_tokens):
        inputs = torch.from_numpy(ids).long()
        with torch.inference_mode():
            output = model.generate(
                inputs,
                attention_mask=torch.ones_like(inputs),
                do_sample=False,
                max_new_tokens=new_tokens,
                pad_token_id=0,
            )
        return output[:, ids.shape[1] :].numpy()

    return call


def pin_threads(threads, framework):
    """Pins this process to its first `threads` cores (XLA sizes its thread pool from them) and gives
    torch or TensorFlow the same count; returns the count the framework reports."""
    os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[:threads])
    if framework == "torch":
        import torch

        torch.set_num_threads(threads)
        return torch.get_num_threads()
    if framework == "tensorflow":
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(threads)
        return tf.config.threading.get_intra_op_parallelism_threads()
    return len(os.sched_getaffinity(0))


def load_average():
    """The machine's load averages: other work on the cores skews every timing."""
    return ", ".join(f"{load:.2f}" for load in os.getloadavg())


def installed(package):
    """The installed version of a package, read without importing it."""
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"
