"""Writing Hugging Face Gemma and Gemma2 weights in the `.weights.h5` layout bert4keras3's models had
(for the tests of its files and the ported example that loads one)."""

import h5py

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
