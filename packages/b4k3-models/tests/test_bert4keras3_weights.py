"""Gemma and Gemma2 `.weights.h5` files as bert4keras3 wrote them load exactly: the same layout as
b4k3's, but its attention projections are `query_dense`, `key_dense`, `value_dense`,
`output_dense` (b4k3: `q_dense`...) and Gemma2's attention was its own class (`gemma2_attention`).
The files are written here from random Hugging Face models in bert4keras3's layout; a file that
does not fit still names every missing and unused array.

Reference: the Hugging Face model the weights come from; logits within 1e-5 relative / 1e-4 absolute."""

import h5py
import numpy as np
import pytest
from family_checks import assert_matches, hf_logits, predict, ragged_batch

from b4k3_models import CheckpointMismatchError, build_transformer_model

# Per family: bert4keras3's attention class as Keras names it in a file, and the Hugging Face norms
# of a block in the order its layers were created (each an `rms_normalization` of the file).
LAYOUTS = {
    "gemma": ("multi_head_attention", ["input_layernorm"], ["post_attention_layernorm"]),
    "gemma2": (
        "gemma2_attention",
        ["input_layernorm", "post_attention_layernorm"],
        ["pre_feedforward_layernorm", "post_feedforward_layernorm"],
    ),
}


def numbered(name, index):
    """Keras' name in a weights file for the `index`-th layer of a class: `name`, `name_1`, ..."""
    return f"{name}_{index}" if index else name


def per_head(matrix, heads):
    """A Hugging Face projection `(heads * head_size, hidden)` as an EinsumDense kernel `(heads, hidden, head_size)`."""
    return matrix.reshape(heads, -1, matrix.shape[1]).transpose(0, 2, 1)


def write_bert4keras3_file(reference, name, path):
    """The Hugging Face model's weights in the `.weights.h5` layout bert4keras3's model had."""
    attention, attention_norms, feed_forward_norms = LAYOUTS[name]
    config = reference.config
    weights = {key: value.detach().numpy() for key, value in reference.state_dict().items()}
    arrays = {"layers/embedding/vars/0": weights["model.embed_tokens.weight"]}
    norms = 0
    for index in range(config.num_hidden_layers):
        scope = f"model.layers.{index}"
        attention_layer = f"layers/{numbered(attention, index)}"
        heads = {"q": config.num_attention_heads, "k": config.num_key_value_heads, "v": config.num_key_value_heads}
        for projection, sublayer in (("q", "query"), ("k", "key"), ("v", "value")):
            matrix = weights[f"{scope}.self_attn.{projection}_proj.weight"]
            arrays[f"{attention_layer}/{sublayer}_dense/vars/0"] = per_head(matrix, heads[projection])
        output = weights[f"{scope}.self_attn.o_proj.weight"].T  # (heads * head_size, hidden)
        output = output.reshape(config.num_attention_heads, -1, config.hidden_size)
        arrays[f"{attention_layer}/output_dense/vars/0"] = output
        feed_forward = f"layers/{numbered('gemma_feed_forward', index)}"
        for sublayer, projection in (("i0_dense", "gate_proj"), ("i1_dense", "up_proj"), ("o_dense", "down_proj")):
            arrays[f"{feed_forward}/{sublayer}/vars/0"] = weights[f"{scope}.mlp.{projection}.weight"].T
        for norm in attention_norms + feed_forward_norms:
            arrays[f"layers/{numbered('rms_normalization', norms)}/vars/0"] = weights[f"{scope}.{norm}.weight"]
            norms += 1
    arrays[f"layers/{numbered('rms_normalization', norms)}/vars/0"] = weights["model.norm.weight"]
    with h5py.File(path, "w") as file:
        for key, array in arrays.items():
            file.create_dataset(key, data=array)
    return path


@pytest.mark.parametrize("name", ["gemma", "gemma2"])
def test_bert4keras3_file_gives_hugging_faces_logits(saved, name, tmp_path):
    directory, reference = saved(name)
    path = write_bert4keras3_file(reference, name, tmp_path / f"{name}.weights.h5")
    model = build_transformer_model(config_path=directory / "config.json", with_lm="linear", keras_weights_path=path)
    ids, mask = ragged_batch(reference.config.vocab_size)
    assert_matches(predict(model, ids), hf_logits(reference, ids, mask), mask)


def test_bert4keras3_file_that_does_not_fit_names_every_missing_and_unused_array(saved, tmp_path):
    directory, reference = saved("gemma2")
    path = write_bert4keras3_file(reference, "gemma2", tmp_path / "gemma2.weights.h5")
    with h5py.File(path, "a") as file:
        del file["layers/gemma2_attention_1/value_dense/vars/0"]
        file.create_dataset("layers/gemma2_attention_1/extra_dense/vars/0", data=np.zeros(3))
    with pytest.raises(CheckpointMismatchError) as error:
        build_transformer_model(config_path=directory / "config.json", with_lm="linear", keras_weights_path=path)
    assert error.value.missing == [
        "Transformer-1-MultiHeadSelfAttention/value/kernel (2, 32, 16) "
        "(layers/multi_head_attention_1/v_dense/vars/0): not in the file"
    ]
    assert error.value.unused == ["layers/gemma2_attention_1/extra_dense/vars/0 (3,)"]
