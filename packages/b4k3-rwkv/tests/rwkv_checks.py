"""What the RWKV6 tests share: a tiny random RWKV-6 (x060) state dict under the official names,
saved as BlinkDL's `.pth`, the reference run of BlinkDL's `rwkv` package (0.8.32, its pure-torch
path, `strategy='cpu fp32'`, single sequence) on it, and the fp32 comparison.

Weights are drawn at std 0.2 (the low-rank mix and decay matrices at 0.1, so the data-dependent
paths move), decays in a realistic range (`time_decay` ~ N(-1, 0.5): per-token decays from about
0.1 to 0.9), the static mixes uniform in [0, 1].
"""

import os

os.environ.setdefault("RWKV_JIT_ON", "0")  # the rwkv package reads both at import
os.environ.setdefault("RWKV_CUDA_ON", "0")

import numpy as np
import torch

TINY_RWKV6 = {"vocab_size": 1000, "hidden_size": 128, "num_hidden_layers": 2, "heads": 2, "intermediate_size": 448}
DECOMPOSER_SIZE, TIME_DECAY_SIZE = 32, 64
# fp32 parity with the reference: max |difference| / max |reference|.
RTOL = 1e-5


def tiny_state_dict(seed=0, sizes=TINY_RWKV6):
    """A random RWKV-6 state dict `{official name: float32 tensor}`."""
    generator = torch.Generator().manual_seed(seed)
    vocab, hidden, heads, ffn = sizes["vocab_size"], sizes["hidden_size"], sizes["heads"], sizes["intermediate_size"]

    def normal(*shape, std=0.2, mean=0.0):
        return torch.randn(*shape, generator=generator) * std + mean

    def uniform(*shape):
        return torch.rand(*shape, generator=generator)

    weights = {"emb.weight": normal(vocab, hidden)}
    weights.update(
        {"blocks.0.ln0.weight": normal(hidden, std=0.1, mean=1.0), "blocks.0.ln0.bias": normal(hidden, std=0.1)}
    )
    for index in range(sizes["num_hidden_layers"]):
        block = f"blocks.{index}"
        for norm in ("ln1", "ln2"):
            weights[f"{block}.{norm}.weight"] = normal(hidden, std=0.1, mean=1.0)
            weights[f"{block}.{norm}.bias"] = normal(hidden, std=0.1)
        att = f"{block}.att"
        for mix in "xwkvrg":
            weights[f"{att}.time_maa_{mix}"] = uniform(1, 1, hidden)
        weights[f"{att}.time_maa_w1"] = normal(hidden, 5 * DECOMPOSER_SIZE, std=0.1)
        weights[f"{att}.time_maa_w2"] = normal(5, DECOMPOSER_SIZE, hidden, std=0.1)
        weights[f"{att}.time_decay"] = normal(1, 1, hidden, std=0.5, mean=-1.0)
        weights[f"{att}.time_decay_w1"] = normal(hidden, TIME_DECAY_SIZE, std=0.1)
        weights[f"{att}.time_decay_w2"] = normal(TIME_DECAY_SIZE, hidden, std=0.1)
        weights[f"{att}.time_faaaa"] = normal(heads, hidden // heads)
        for name in ("receptance", "key", "value", "gate", "output"):
            weights[f"{att}.{name}.weight"] = normal(hidden, hidden)
        weights[f"{att}.ln_x.weight"] = normal(hidden, std=0.1, mean=1.0)
        weights[f"{att}.ln_x.bias"] = normal(hidden, std=0.1)
        ffn_scope = f"{block}.ffn"
        weights[f"{ffn_scope}.time_maa_k"] = uniform(1, 1, hidden)
        weights[f"{ffn_scope}.time_maa_r"] = uniform(1, 1, hidden)
        weights[f"{ffn_scope}.key.weight"] = normal(ffn, hidden)
        weights[f"{ffn_scope}.receptance.weight"] = normal(hidden, hidden)
        weights[f"{ffn_scope}.value.weight"] = normal(hidden, ffn)
    weights.update({"ln_out.weight": normal(hidden, std=0.1, mean=1.0), "ln_out.bias": normal(hidden, std=0.1)})
    weights["head.weight"] = normal(vocab, hidden)
    return weights


def build_rwkv6(pth_path, **options):
    """b4k3's RWKV6 transformer of a `.pth` file, logits out, its sizes read from the state dict."""
    from b4k3_models import build_transformer_model

    arguments = {"model": "rwkv6", "with_lm": "linear", "return_keras_model": False, **options}
    return build_transformer_model(checkpoint_path=pth_path, **arguments)


def save_pth(weights, path):
    """Saves `weights` as BlinkDL's releases are saved (`torch.save` of the state dict)."""
    torch.save({name: tensor.clone() for name, tensor in weights.items()}, path)
    return path


class Reference:
    """BlinkDL's `rwkv` package on a `.pth` file: logits and states of one sequence at a time."""

    def __init__(self, pth_path):
        from rwkv.model import RWKV

        self.model = RWKV(model=str(pth_path).removesuffix(".pth"), strategy="cpu fp32", verbose=False)

    def forward(self, tokens, state=None):
        """`(logits (T, vocab), state)`: the state is the package's flat list, per layer
        `[time-mix shift (hidden,), wkv (heads, head_size, head_size), channel-mix shift (hidden,)]`."""
        with torch.no_grad():
            logits, state = self.model.forward(list(tokens), state, full_output=True)
        return logits.numpy().reshape(len(tokens), -1), state

    def greedy(self, prompt, max_new_tokens):
        """The greedy continuation of `prompt`, token by token."""
        logits, state = self.forward(prompt)
        tokens = []
        for _ in range(max_new_tokens):
            tokens.append(int(np.argmax(logits[-1])))
            logits, state = self.forward(tokens[-1:], state)
        return tokens


def relative_error(actual, expected):
    actual, expected = np.asarray(actual, dtype="float64"), np.asarray(expected, dtype="float64")
    return float(np.abs(actual - expected).max() / np.abs(expected).max())


def assert_close(actual, expected, rtol=RTOL):
    """fp32 parity: max |difference| within `rtol` of max |expected|."""
    error = relative_error(actual, expected)
    assert error <= rtol, f"relative error {error:.2e} > {rtol:.0e}"


def layer_states(reference_state, layer):
    """The reference's three states of `layer`, as NumPy."""
    return [tensor.numpy() for tensor in reference_state[3 * layer : 3 * layer + 3]]
