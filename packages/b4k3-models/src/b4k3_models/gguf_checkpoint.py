"""GGUF files (llama.cpp, Ollama, LM Studio) read as Hugging Face checkpoints.

`GGUFCheckpoint` presents a GGUF file under the Hugging Face names of its tensors
(`blk.0.attn_q.weight` -> `model.layers.0.self_attn.q_proj.weight`), so a family's Hugging Face
name map loads it unchanged. Each tensor is dequantized to float32 when it is read (F32, F16,
BF16, Q8_0, Q4_0, Q4_1, the K-quants: whatever the `gguf` package dequantizes), one at a time,
and llama.cpp's interleaving of the query/key rows (its rotary layout) is undone. `hf_config()`
writes the file's `<architecture>.*` metadata as a Hugging Face config, which the family's own
translation then reads.
"""

import pathlib
import re

import numpy as np

from b4k3_models.checkpoints import CheckpointReader
from b4k3_tokenize.gguf_file import gguf_value, open_gguf

GGUF_MAGIC = b"GGUF"

# general.architecture -> Hugging Face model_type. Gemma's GGUF norms are stored with the +1 of
# its RMS norm folded in, which no reader here undoes yet: refused until then.
ARCHITECTURES = {"llama": "llama", "qwen2": "qwen2"}

# GGUF tensor names -> Hugging Face's (`{}` is the block index).
TENSOR_NAMES = {
    "token_embd.weight": "model.embed_tokens.weight",
    "output_norm.weight": "model.norm.weight",
    "output.weight": "lm_head.weight",
}
BLOCK_TENSOR_NAMES = {
    "attn_norm.weight": "input_layernorm.weight",
    "attn_q.weight": "self_attn.q_proj.weight",
    "attn_q.bias": "self_attn.q_proj.bias",
    "attn_k.weight": "self_attn.k_proj.weight",
    "attn_k.bias": "self_attn.k_proj.bias",
    "attn_v.weight": "self_attn.v_proj.weight",
    "attn_v.bias": "self_attn.v_proj.bias",
    "attn_output.weight": "self_attn.o_proj.weight",
    "attn_output.bias": "self_attn.o_proj.bias",
    "ffn_norm.weight": "post_attention_layernorm.weight",
    "ffn_gate.weight": "mlp.gate_proj.weight",
    "ffn_up.weight": "mlp.up_proj.weight",
    "ffn_down.weight": "mlp.down_proj.weight",
}
BLOCK = re.compile(r"^blk\.(\d+)\.(.+)$")
# The architectures whose converter interleaves the q/k rows (llama.cpp's `LlamaModel.permute`).
PERMUTED = {"llama"}


def is_gguf_file(path):
    """Whether `path` names a GGUF file: its name ends in .gguf, or it starts with the GGUF magic."""
    try:
        path = pathlib.Path(path)
        if not path.is_file():
            return False
        if path.suffix == ".gguf":
            return True
        with open(path, "rb") as file:
            return file.read(4) == GGUF_MAGIC
    except (TypeError, OSError):
        return False


def hf_tensor_name(name):
    """The Hugging Face name of a GGUF tensor, or None when it has none."""
    if name in TENSOR_NAMES:
        return TENSOR_NAMES[name]
    match = BLOCK.match(name)
    if match and match.group(2) in BLOCK_TENSOR_NAMES:
        return f"model.layers.{match.group(1)}.{BLOCK_TENSOR_NAMES[match.group(2)]}"
    return None


def unpermute_rows(weight, heads):
    """Undoes llama.cpp's q/k permutation: within each head, its converter interleaved the two
    rotary halves (`reshape(heads, 2, d, ...).swapaxes(1, 2)`); this puts them back."""
    half = weight.shape[0] // heads // 2
    return np.ascontiguousarray(weight.reshape(heads, half, 2, *weight.shape[1:]).swapaxes(1, 2).reshape(weight.shape))


class GGUFCheckpoint(CheckpointReader):
    """A GGUF file of a supported architecture, under Hugging Face tensor names (format 'hf').

    A tensor without a Hugging Face name keeps its GGUF name, so a strict load reports it as unused.
    """

    format = "hf"

    def __init__(self, path):
        self._reader = open_gguf(path)
        self.path = path
        architecture = gguf_value(self._reader, "general.architecture")
        if architecture not in ARCHITECTURES:
            raise ValueError(
                f"{path}: GGUF architecture {architecture!r} is not supported; b4k3 reads {sorted(ARCHITECTURES)}"
            )
        self.architecture = architecture
        self._tensors = {}
        shapes = {}
        for tensor in self._reader.tensors:
            name = hf_tensor_name(tensor.name) or tensor.name
            self._tensors[name] = tensor
            shapes[name] = tuple(int(size) for size in reversed(tensor.shape))  # GGUF lists the fastest axis first
        super().__init__(str(path), shapes)

    def metadata(self, key, default=None):
        """The value of `<architecture>.<key>` (e.g. 'block_count'), or `default`."""
        return gguf_value(self._reader, f"{self.architecture}.{key}", default)

    def hf_config(self):
        """The file's model metadata as a Hugging Face `config.json` dict."""
        heads = self.metadata("attention.head_count")
        kv_heads = self.metadata("attention.head_count_kv", heads)
        if isinstance(heads, list) or isinstance(kv_heads, list):
            raise ValueError(f"{self.source}: per-layer head counts ({heads}, {kv_heads}) are not supported")
        hidden_size = self.metadata("embedding_length")
        head_dim = self.metadata("attention.key_length") or hidden_size // heads
        rotary = self.metadata("rope.dimension_count", head_dim)
        if rotary != head_dim:
            raise ValueError(f"{self.source}: rotary dimensions {rotary} != head size {head_dim} is not supported")
        scaling = self.metadata("rope.scaling.type", "none")
        if scaling not in ("none", "linear"):
            raise ValueError(f"{self.source}: rope scaling {scaling!r} is not supported (b4k3 reads none or linear)")
        embeddings = self._shapes.get("model.embed_tokens.weight")
        config = {
            "model_type": ARCHITECTURES[self.architecture],
            "vocab_size": embeddings[0] if embeddings else self.metadata("vocab_size"),
            "hidden_size": hidden_size,
            "num_hidden_layers": self.metadata("block_count"),
            "intermediate_size": self.metadata("feed_forward_length"),
            "num_attention_heads": heads,
            "num_key_value_heads": kv_heads,
            "head_dim": head_dim,
            "rms_norm_eps": self.metadata("attention.layer_norm_rms_epsilon", 1e-6),
            "rope_theta": self.metadata("rope.freq_base", 10_000.0),
            "max_position_embeddings": self.metadata("context_length"),
            "hidden_act": "silu",
            "tie_word_embeddings": "lm_head.weight" not in self._shapes,
            "attention_bias": "model.layers.0.self_attn.q_proj.bias" in self._shapes,
        }
        if scaling == "linear":
            config["rope_scaling"] = {"rope_type": "linear", "factor": self.metadata("rope.scaling.factor")}
        missing = sorted(key for key, value in config.items() if value is None)
        if missing:
            raise ValueError(f"{self.source}: the GGUF metadata lacks what gives {missing}")
        return config

    def _read(self, key):
        from gguf.quants import dequantize

        tensor = self._tensors[key]
        try:
            array = dequantize(tensor.data, tensor.tensor_type)
        except NotImplementedError as error:
            raise ValueError(
                f"{self.source}: tensor {tensor.name} is {tensor.tensor_type.name}, which gguf cannot dequantize"
            ) from error
        array = np.asarray(array, dtype=np.float32).reshape(self._shapes[key])
        if self.architecture in PERMUTED and ".self_attn.q_proj." in key:
            array = unpermute_rows(array, self.metadata("attention.head_count"))
        elif self.architecture in PERMUTED and ".self_attn.k_proj." in key:
            heads = self.metadata("attention.head_count")
            array = unpermute_rows(array, self.metadata("attention.head_count_kv", heads))
        return array
