"""T5 loads Google's (mesh-TF) checkpoints under their original names, for t5.1.0, t5.1.1 and
mT5 (`rms_norm` for `layer_norm`), Adafactor slots and `global_step` beside the weights.

The checkpoints are the tiny Hugging Face models of `t5_checks` renamed and transposed into
Google's layout (what Hugging Face's `load_tf_weights_in_t5` undoes) and written with TensorFlow;
the reference is the Hugging Face model, compared within 1e-5 relative / 1e-4 absolute."""

import re

import numpy as np
import pytest
from family_checks import assert_matches, predict, write_tf_checkpoint
from t5_checks import TINY_T5, decoder_batch, encoder_batch, hf_t5_outputs, t5_saver

from b4k3_models import CheckpointMismatchError, build_transformer_model

# Hugging Face key -> Google key, for the keys that are not the embeddings or the head.
HF_BLOCK_KEY = re.compile(r"(encoder|decoder)\.block\.(\d+)\.layer\.(\d+)\.(.+)\.weight")


def google_checkpoint(state, norm):
    """`{Google name: array}` of a Hugging Face T5 state dict; `norm` is 'layer_norm' (t5) or
    'rms_norm' (mT5). Linear weights are transposed to kernels `(in, out)`, relative tables to
    `(heads, buckets)`; every weight gets Adafactor's slots, as a training checkpoint has."""
    arrays = {"global_step": np.array(1000, dtype="int64")}
    for key, value in state.items():
        value = value.detach().numpy()
        if key == "shared.weight":
            arrays["shared/embedding"] = value
        elif key == "lm_head.weight":
            arrays["decoder/logits/kernel"] = value.T
        elif key.endswith("final_layer_norm.weight"):
            final = "final_layer_norm" if norm == "layer_norm" else "rms_norm"
            arrays[f"{key.split('.')[0]}/{final}/scale"] = value
        elif match := HF_BLOCK_KEY.fullmatch(key):
            stack, block, layer, rest = match.groups()
            scope = f"{stack}/block_{int(block):03d}/layer_{int(layer):03d}"
            if rest == "layer_norm":
                arrays[f"{scope}/{norm}/scale"] = value
            elif rest.startswith("DenseReluDense"):
                arrays[f"{scope}/{rest.replace('.', '/')}/kernel"] = value.T
            else:  # SelfAttention / EncDecAttention q, k, v, o and the relative table
                arrays[f"{scope}/{rest.replace('.', '/')}"] = value.T
        elif not key.endswith("embed_tokens.weight"):
            raise AssertionError(f"unexpected key {key}")
    for name in [name for name in arrays if name != "global_step"]:
        arrays[f"{name}_slot_vr"] = np.zeros(arrays[name].shape[:1], dtype="float32")
        arrays[f"{name}_slot_vc"] = np.zeros(arrays[name].shape[-1:], dtype="float32")
    return arrays


SIZES = {
    "vocab_size": TINY_T5["vocab_size"],
    "hidden_size": TINY_T5["d_model"],
    "num_hidden_layers": TINY_T5["num_layers"],
    "num_attention_heads": TINY_T5["num_heads"],
    "attention_head_size": TINY_T5["d_kv"],
    "intermediate_size": TINY_T5["d_ff"],
    "relative_attention_num_buckets": TINY_T5["relative_attention_num_buckets"],
    "relative_attention_max_distance": TINY_T5["relative_attention_max_distance"],
}
# Hugging Face model -> (b4k3 model name, Google's norm name, logit scale)
GOOGLE_RELEASES = {
    "t5.1.0": ("t5.1.0", "layer_norm", True),
    "t5.1.1": ("t5.1.1", "layer_norm", False),
    "mt5": ("mt5.1.1", "rms_norm", False),
}


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    return t5_saver(tmp_path_factory)


def write_release(saved, name, directory):
    _, reference = saved(name)
    state = dict(reference.state_dict())  # its lm_head.weight becomes decoder/logits/kernel
    if name == "t5.1.0":  # t5.1.0's head is the token embeddings: its releases have no logits kernel
        del state["lm_head.weight"]
    return write_tf_checkpoint(google_checkpoint(state, GOOGLE_RELEASES[name][1]), directory / "model.ckpt"), reference


@pytest.mark.parametrize("name", sorted(GOOGLE_RELEASES))
def test_google_checkpoint_gives_hf_logits(saved, tmp_path, name):
    checkpoint, reference = write_release(saved, name, tmp_path)
    model, _, scale = GOOGLE_RELEASES[name]
    encoder_ids, mask = encoder_batch()
    decoder_ids = decoder_batch()
    t5 = build_transformer_model(
        checkpoint_path=checkpoint,
        model=model,
        with_lm="linear",
        cross_position_bias=False,
        logit_scale=scale,
        return_keras_model=False,
        **SIZES,
    )
    assert t5.version == model
    assert_matches(
        predict(t5.model, [encoder_ids, decoder_ids]), hf_t5_outputs(reference, encoder_ids, mask, decoder_ids)[1]
    )


def test_mt5_encoder_loads_from_the_whole_checkpoint(saved, tmp_path):
    checkpoint, reference = write_release(saved, "mt5", tmp_path)
    encoder_ids, mask = encoder_batch()
    encoder = build_transformer_model(checkpoint_path=checkpoint, model="mt5.1.1_encoder", **SIZES)
    assert_matches(predict(encoder, encoder_ids), hf_t5_outputs(reference, encoder_ids, mask)[0], mask)


def test_wrong_version_names_the_missing_google_keys(saved, tmp_path):
    """An mT5 checkpoint (`rms_norm`) read as t5.1.1 (`layer_norm`)."""
    checkpoint, _ = write_release(saved, "mt5", tmp_path)
    with pytest.raises(CheckpointMismatchError, match="encoder/block_000/layer_000/layer_norm/scale"):
        build_transformer_model(checkpoint_path=checkpoint, model="t5.1.1", **SIZES)
