"""Every model family b4k3 builds, tiny and random: what the tests that must cover them all
(`.keras` round trips, int8 quantization) share.

`TINY_FAMILIES` maps a `build_transformer_model(model=...)` name to its arguments; `tiny_model`
builds one (seeded) and `tiny_inputs` gives it a batch.
"""

import keras
import numpy as np

from b4k3_models import build_transformer_model

SIZES = {"vocab_size": 64, "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 40}
DECODER = {"with_lm": "linear"}
TINY_FAMILIES = {
    "bert": {"with_mlm": True},
    "roberta": {"pad_token_id": 1},
    "albert": {},
    "nezha": {},
    "electra": {},
    "roformer": {},
    "roformer_v2": {},
    "gau_alpha": {},
    "gpt": {"final_activation": "linear"},
    "gpt2": {"final_activation": "linear"},
    "gpt2_ml": {"final_activation": "linear"},
    "t5": {},
    "llama": {**DECODER, "query_head": 4, "num_attention_heads": 2},
    "qwen": {**DECODER, "use_bias": True, "o_bias": False},
    "gemma": DECODER,
    "gemma2": {**DECODER, "use_sliding_window_attention": True, "sliding_window_size": 3},
    "rwkv6": {"num_attention_heads": 2, "decomposer_size": 8, "time_decay_size": 8},
}


def tiny_model(family, seed=0):
    """The Keras model of the tiny `family`, its weights drawn from `seed`."""
    keras.utils.set_random_seed(seed)
    return build_transformer_model(model=family, **{**SIZES, **TINY_FAMILIES[family]})


def tiny_inputs(model, seed=1, batch=2, length=7):
    """A batch for every input of `model`: token ids in 2..63 (never a pad id), zeros for segments."""
    tokens = np.random.default_rng(seed).integers(2, SIZES["vocab_size"], (batch, length)).astype("int32")
    names = [tensor.name for tensor in model.inputs]
    inputs = [np.zeros_like(tokens) if "Segment" in name else tokens for name in names]
    return inputs[0] if len(inputs) == 1 else inputs
