"""Reading BlinkDL's RWKV-6 checkpoints: the `.pth` state dicts of the official releases and a
safetensors file of the same names, and the model sizes their arrays' shapes imply (they carry no
config, as the `rwkv` package reads them).

A `.pth` file is read with `torch.load(weights_only=True)`, which refuses anything but tensors and
plain containers: a checkpoint from anyone cannot run code.
"""

import pathlib

import numpy as np

from b4k3_models.checkpoints import CheckpointReader, open_checkpoint

# Keys every RWKV-6 (x060) state dict has; an RWKV-4/5/7 one lacks some of them.
X060_KEYS = (
    "emb.weight",
    "blocks.0.att.time_maa_x",
    "blocks.0.att.time_maa_w1",
    "blocks.0.att.time_decay_w1",
    "blocks.0.att.time_faaaa",
    "blocks.0.ffn.key.weight",
)


class RWKVCheckpoint(CheckpointReader):
    """An RWKV state dict: a `.pth` file (needs torch) or a `.safetensors` file, official names."""

    format = "rwkv"

    def __init__(self, path):
        path = pathlib.Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"No RWKV checkpoint at {path}: give the .pth (or .safetensors) file")
        self._file = None
        if path.suffix == ".safetensors":
            from safetensors import safe_open

            self._file = str(path)
            with safe_open(self._file, framework="np") as handle:
                shapes = {key: handle.get_slice(key).get_shape() for key in handle.keys()}  # noqa: SIM118
        else:
            self._tensors = _torch_state_dict(path)
            shapes = {key: tuple(tensor.shape) for key, tensor in self._tensors.items()}
        super().__init__(str(path), shapes)

    def _read(self, key):
        if self._file is not None:
            from safetensors import safe_open

            with safe_open(self._file, framework="np") as handle:
                return handle.get_tensor(key).astype("float32")
        return self._tensors[key].float().numpy()  # bfloat16 and float16 releases -> float32


def _torch_state_dict(path):
    try:
        import torch
    except ImportError as error:
        raise ImportError(
            f"Reading the PyTorch checkpoint {path} needs torch (pip install torch), or convert it once to "
            "safetensors (safetensors.torch.save_file(torch.load(path, weights_only=True), 'model.safetensors'))"
        ) from error
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises UnpicklingError, RuntimeError or EOFError
        raise ValueError(
            f"{path} is not a PyTorch state dict b4k3 can read safely (torch.load(weights_only=True) failed: "
            f"{error}); it is damaged, or holds more than tensors"
        ) from error
    if not isinstance(state, dict) or not all(isinstance(value, torch.Tensor) for value in state.values()):
        raise ValueError(f"{path} holds a {type(state).__name__}, not a state dict of tensors (name -> tensor)")
    return state


def open_rwkv_checkpoint(checkpoint):
    """The reader of an RWKV checkpoint: a `.pth` / `.safetensors` path, a reader, or a dict."""
    if isinstance(checkpoint, (str, pathlib.Path)) and pathlib.Path(checkpoint).suffix in (".pth", ".safetensors"):
        return RWKVCheckpoint(checkpoint)
    return open_checkpoint(checkpoint)


def rwkv6_config(checkpoint):
    """The RWKV6 sizes a state dict implies (as the `rwkv` package infers them)."""
    missing = [key for key in X060_KEYS if key not in checkpoint]
    if missing:
        raise ValueError(
            f"{checkpoint.source} is not an RWKV-6 (x060) state dict: it lacks {missing}. b4k3 reads RWKV-6 only "
            "(RWKV-4/5/7 checkpoints have other names)"
        )
    vocab_size, hidden_size = checkpoint.shape("emb.weight")
    heads, head_size = checkpoint.shape("blocks.0.att.time_faaaa")
    blocks = {int(key.split(".")[1]) for key in checkpoint if key.startswith("blocks.")}
    return {
        "vocab_size": vocab_size,
        "hidden_size": hidden_size,
        "num_hidden_layers": max(blocks) + 1,
        "num_attention_heads": heads,
        "attention_head_size": head_size,
        "intermediate_size": checkpoint.shape("blocks.0.ffn.key.weight")[0],
        "decomposer_size": checkpoint.shape("blocks.0.att.time_maa_w1")[1] // 5,
        "time_decay_size": checkpoint.shape("blocks.0.att.time_decay_w1")[1],
    }


# Named transforms of official arrays.


def flat(array):
    """`time_maa_*` / `time_decay` `(1, 1, hidden)` as a `(hidden,)` vector."""
    return np.reshape(array, (-1,))


def mix_columns(index, rank):
    """Columns `index * rank ...` of `time_maa_w1` `(hidden, 5 * rank)`: one mix's first matrix."""
    return lambda array: np.ascontiguousarray(array[:, index * rank : (index + 1) * rank])


def mix_matrix(index):
    """Entry `index` of `time_maa_w2` `(5, rank, hidden)`: one mix's second matrix."""
    return lambda array: np.ascontiguousarray(array[index])


def per_head(heads):
    """`ln_x` weight or bias `(hidden,)` as the group norm's `(heads, head_size)`."""
    return lambda array: np.reshape(array, (heads, -1))


def time_state(array):
    """An RWKV-PEFT `time_state` `(heads, head_size, head_size)` (values first) as the wkv state
    variable `(1, heads, head_size, head_size)` (keys first, the `rwkv` package's layout)."""
    return np.ascontiguousarray(np.transpose(array, (0, 2, 1))[None])
