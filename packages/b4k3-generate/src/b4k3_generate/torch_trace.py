"""The decode step on torch as a TorchScript trace, what `jit_compile='auto'` runs there.

An eager torch step of a small model spends most of its time in Keras' per-layer and per-op
Python, not in torch's kernels. `torch.jit.trace` records the torch ops one call runs and replays
them from TorchScript's interpreter: the same kernels in the same order, without the Python
around them, and with no compile worth waiting for (a trace costs about one eager step).

A trace holds for the shapes and Python values it was recorded with, so one is made per shape of
the inputs (the cache grows through a few lengths), and the model's variables are passed in as
inputs (through a `keras.StatelessScope`, as the JAX loop does), so a trace always reads the
current weights. What a trace cannot follow is a value read on the host: torch's random draws take
their seed that way, so a sampling loop traces only the model (see `Decoder`). `jit_compile=False`
is the portable eager path; a test checks that both give the same logits and tokens.
"""

import warnings

import keras
import numpy as np


def traced(variables, function):
    """`function` (of nested tensors, returning nested tensors; the model's `variables` read inside)
    run as a TorchScript trace per shape of its inputs. A function that cannot be traced runs
    eagerly, with a warning saying so."""
    import torch

    traces = {}

    def run(*args):
        leaves = [torch.as_tensor(leaf) if isinstance(leaf, np.ndarray) else leaf for leaf in keras.tree.flatten(args)]
        is_tensor = [isinstance(leaf, torch.Tensor) for leaf in leaves]
        tensors = [leaf for leaf, tensor in zip(leaves, is_tensor, strict=True) if tensor]
        # The shapes and dtypes of the tensors and the other leaves as they are (the structure of a
        # step's inputs is fixed by the model, so the leaves tell traces apart).
        key = tuple(
            (tuple(leaf.shape), leaf.dtype) if tensor else leaf for leaf, tensor in zip(leaves, is_tensor, strict=True)
        )
        if key not in traces:
            traces[key] = _trace(variables, function, args, leaves, is_tensor)
        graph, outputs = traces[key]
        if graph is None:
            return function(*keras.tree.pack_sequence_as(args, leaves))
        values = [variable.value.detach() for variable in variables]
        return keras.tree.pack_sequence_as(outputs, list(graph(*values, *tensors)))

    return run


def _trace(variables, function, args, leaves, is_tensor):
    """`(graph, output structure)` of `function` on `args`, or `(None, None)` where tracing fails."""
    import torch

    outputs = []

    def graph(*inputs):
        values, tensors = inputs[: len(variables)], iter(inputs[len(variables) :])
        full = [next(tensors) if tensor else leaf for leaf, tensor in zip(leaves, is_tensor, strict=True)]
        with keras.StatelessScope(state_mapping=list(zip(variables, values, strict=True))):
            result = function(*keras.tree.pack_sequence_as(args, full))
        outputs.append(result)
        return tuple(keras.tree.flatten(result))

    try:
        # The trace warns at every Python value it records; those are the shapes and settings it is keyed on.
        with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
            example = [variable.value.detach() for variable in variables]
            # Copies, made outside inference mode: a step may write into its cache in place
            # (`caches_donated`), which an inference tensor allows only in inference mode.
            example += [leaf.clone() for leaf, tensor in zip(leaves, is_tensor, strict=True) if tensor]
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            warnings.filterwarnings("ignore", "`torch.jit.trace` is deprecated", DeprecationWarning)
            return torch.jit.trace(graph, tuple(example), check_trace=False), outputs[0]
    except Exception as error:  # any failure to trace leaves the eager step, which works
        warnings.warn(
            f"b4k3-generate could not trace the decode step on torch ({type(error).__name__}: {error}); it runs "
            "eagerly, several times slower. Pass jit_compile=False to choose that without trying.",
            stacklevel=4,
        )
        return None, None
