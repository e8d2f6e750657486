"""Writes the golden fixtures of RoFormerV2 and GAU-alpha (`fixtures/roformer_v2`, `fixtures/gau_alpha`).

Their only executable references are JunnYu's PyTorch ports, which run on transformers 4.47.1
alone (they import internals that later versions removed), so the fixtures are committed rather
than built at test time. Each directory holds what a Hugging Face directory of the port holds
(`config.json`, `model.safetensors`: tiny random weights under the port's names, matrices and
tables drawn at std 0.2, the q/k gains of GAU at 1 +- 0.2) and `outputs.npz`: a ragged batch
(`token_ids`, `segment_ids`, `mask`) and the port's `hidden_states` (last layer) and MLM `logits`
on it. GAU-alpha's rows hold at least 16 real tokens: its `softmax_plus` scales logits by
`log(n) / log(512)`, which bert4keras (and b4k3) floor at n = 16 and the port does not.

Ran under Python 3.11, torch 2.13.0 (CPU), transformers 4.47.1, numpy 2.4.6, roformer 0.4.3 and
gau-alpha 0.0.3 (both installed with --no-deps). To rerun:

    python3 -m venv ref && ref/bin/pip install torch==2.13.0 transformers==4.47.1 safetensors
    ref/bin/pip install --no-deps roformer==0.4.3 gau-alpha==0.0.3
    ref/bin/python make_junnyu_fixtures.py   # from this tests folder
"""

import pathlib

import numpy as np
import torch
from gau_alpha.modeling_gau_alpha import GAUAlphaConfig, GAUAlphaForMaskedLM
from roformer import RoFormerConfig, RoFormerForMaskedLM
from safetensors.torch import save_file

FIXTURES = pathlib.Path(__file__).parent / "fixtures"
SIZES = {"vocab_size": 64, "hidden_size": 32, "num_hidden_layers": 2, "intermediate_size": 40}


def redraw(model, seed):
    """Matrices and tables at std 0.2, vectors (GAU's q/k gains) at 1 +- 0.2; RoFormer's sinusoid
    table (a saved buffer) stays as it is."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "embed_positions" in name:
                continue
            noise = torch.randn(parameter.shape, generator=generator) * 0.2
            parameter.copy_(noise if parameter.ndim > 1 else 1 + noise)


def ragged_batch(lengths, seed):
    """Token ids right-padded with 0, segment ids (1 from the middle of each row), the real-token mask."""
    rng = np.random.default_rng(seed)
    ids = np.zeros((len(lengths), max(lengths)), dtype="int64")
    segments = np.zeros_like(ids)
    for row, length in enumerate(lengths):
        ids[row, :length] = rng.integers(1, SIZES["vocab_size"], size=length)
        segments[row, length // 2 : length] = 1
    mask = (np.arange(ids.shape[1])[None] < np.asarray(lengths)[:, None]).astype("int64")
    return ids, segments, mask


def write(name, model, base, lengths, seed):
    directory = FIXTURES / name
    directory.mkdir(parents=True, exist_ok=True)
    redraw(model, seed)
    model.eval()
    model.config.to_json_file(directory / "config.json")
    # Tied weights share memory, which safetensors refuses: one copy of each.
    save_file(
        {key: value.clone().contiguous() for key, value in model.state_dict().items()}, directory / "model.safetensors"
    )
    ids, segments, mask = ragged_batch(lengths, seed)
    with torch.no_grad():
        names = ("input_ids", "token_type_ids", "attention_mask")
        inputs = {name: torch.tensor(array) for name, array in zip(names, (ids, segments, mask), strict=True)}
        hidden = getattr(model, base)(**inputs)[0]
        logits = model(**inputs).logits
    np.savez_compressed(
        directory / "outputs.npz",
        token_ids=ids.astype("int32"),
        segment_ids=segments.astype("int32"),
        mask=mask.astype(bool),
        hidden_states=hidden.numpy(),
        logits=logits.numpy(),
    )


if __name__ == "__main__":
    roformer_v2 = RoFormerConfig(
        **SIZES,
        num_attention_heads=4,
        hidden_act="relu",
        use_bias=False,
        norm_type="rms_norm",
        max_position_embeddings=64,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    write("roformer_v2", RoFormerForMaskedLM(roformer_v2), "roformer", lengths=(12, 7, 3), seed=0)
    gau_alpha = GAUAlphaConfig(
        **SIZES,
        attention_key_size=16,
        hidden_act="swish",
        max_position_embeddings=64,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    write("gau_alpha", GAUAlphaForMaskedLM(gau_alpha), "gau_alpha", lengths=(20, 17, 16), seed=1)
