"""Writes `nezha_reference.npz`, the NEZHA reference outputs `test_nezha_matches_reference.py` checks.

transformers 5 dropped NEZHA; its last implementation is `NezhaForPreTraining` in transformers
4.57.6 (`models/deprecated/nezha`), which pins `tokenizers<=0.23` and `huggingface-hub<1.0` and so
cannot share the test environments. This script builds a tiny random NEZHA there and stores, in one
`.npz`:
- `config`: the Hugging Face `config.json` as `save_pretrained` writes it (a JSON string;
  `max_relative_position=3`, so the relative distances of the 11-token rows are clipped);
- `weight/<key>`: every weight under Hugging Face's names (`nezha.*`, `cls.*`), matrices drawn at
  std 0.2, LayerNorm gains 1 ± 0.2, biases ± 0.1 (HF's std 0.02 would hide an activation or
  epsilon error);
- `token_ids`, `segment_ids`, `attention_mask`: a padded batch of three rows (11, 7 and 3 tokens);
- `sequence_output`, `pooled_output` (`NezhaModel`), `mlm_logits`, `nsp_logits` (the heads).

It was run with Python 3.11, torch 2.13.0 (CPU) and transformers 4.57.6. To rerun it:

    python -m venv nezha-reference
    nezha-reference/bin/pip install torch==2.13.0 transformers==4.57.6 numpy
    nezha-reference/bin/python make_nezha_reference.py  # from this folder
"""

import json
import pathlib

import numpy as np
import torch
import transformers

CONFIG = {
    "vocab_size": 99,
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "intermediate_size": 37,
    "hidden_act": "gelu",
    "max_position_embeddings": 64,
    "max_relative_position": 3,
    "type_vocab_size": 2,
    "initializer_range": 0.2,
    "layer_norm_eps": 1e-12,
}
LENGTHS = (11, 7, 3)
OUTPUT = pathlib.Path(__file__).with_name("nezha_reference.npz")


def padded_batch(vocab_size, seed=0):
    """Token ids (never the pad id 0 inside a row) padded with 0, segment 1 from the fifth token, the mask."""
    rng = np.random.default_rng(seed)
    ids = np.zeros((len(LENGTHS), max(LENGTHS)), dtype="int32")
    for row, length in enumerate(LENGTHS):
        ids[row, :length] = rng.integers(1, vocab_size, size=length)
    segments = np.zeros_like(ids)
    segments[:, 4:] = 1
    return ids, segments, (ids != 0).astype("int32")


def main():
    torch.manual_seed(0)
    model = transformers.NezhaForPreTraining(transformers.NezhaConfig(**CONFIG)).eval()
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if name.endswith("LayerNorm.weight"):
                parameter.copy_(1 + 0.2 * torch.randn_like(parameter))
            elif parameter.ndim == 1:
                parameter.copy_(0.1 * torch.randn_like(parameter))
    ids, segments, mask = padded_batch(CONFIG["vocab_size"])
    inputs = {
        "input_ids": torch.tensor(ids, dtype=torch.long),
        "token_type_ids": torch.tensor(segments, dtype=torch.long),
        "attention_mask": torch.tensor(mask, dtype=torch.long),
    }
    with torch.no_grad():
        base = model.nezha(**inputs)
        heads = model(**inputs)
    # The MLM decoder is tied to the word embeddings (its bias to cls.predictions.bias): not stored.
    weights = {
        f"weight/{key}": tensor.numpy()
        for key, tensor in model.state_dict().items()
        if not key.startswith("cls.predictions.decoder.")
    }
    np.savez_compressed(
        OUTPUT,
        config=np.array(json.dumps(model.config.to_diff_dict())),
        token_ids=ids,
        segment_ids=segments,
        attention_mask=mask,
        sequence_output=base.last_hidden_state.numpy(),
        pooled_output=base.pooler_output.numpy(),
        mlm_logits=heads.prediction_logits.numpy(),
        nsp_logits=heads.seq_relationship_logits.numpy(),
        **weights,
    )
    print(f"wrote {OUTPUT} ({OUTPUT.stat().st_size} bytes, transformers {transformers.__version__})")


if __name__ == "__main__":
    main()
