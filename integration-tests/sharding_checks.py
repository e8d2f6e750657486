"""Run by `test_sharding.py` in a fresh JAX process with 8 simulated CPU devices
(`XLA_FLAGS=--xla_force_host_platform_device_count=8`, which must be set before JAX starts):
runs a tiny Llama and a tiny BERT unsharded, then under a 2 x 4 (batch x model) `ModelParallel`
with b4k3's layout map, then a BERT under an 8-device `DataParallel`, and prints one JSON line
of what the tests compare. The distribution is global, so every unsharded run comes first.
"""

import json
import sys
import tempfile

import keras
import numpy as np
import transformers
from family_checks import TINY_BERT, TINY_LLAMA, predict, save_hf_model

from b4k3_generate import generate
from b4k3_models import build_transformer_model, get_layout_map

# Sizes that the model axis (4) divides: heads, key/value heads, feed-forward width, vocabulary.
LLAMA = {**TINY_LLAMA, "num_attention_heads": 8, "num_key_value_heads": 4, "model_type": "llama"}
# No dropout, so that training on several devices can be compared with training on one.
BERT = {**TINY_BERT, "intermediate_size": 40, "hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0}
# The variables whose shardings are reported: path -> the axis split across the model axis.
LLAMA_SHARDED = {
    "Embedding-Token/embeddings": 0,
    "Transformer-0-MultiHeadSelfAttention/q_dense/kernel": 1,
    "Transformer-0-MultiHeadSelfAttention/k_dense/kernel": 1,
    "Transformer-1-MultiHeadSelfAttention/o_dense/kernel": 0,
    "Transformer-1-FeedForward/feedforward_gate_dense/kernel": 1,
    "Transformer-1-FeedForward/feedforward_output_dense/kernel": 0,
    "Decoder-Output-LM/kernel": 1,
}
BERT_SHARDED = {
    "Embedding-Token/embeddings": 1,  # 99 rows: split by hidden size
    "Transformer-0-MultiHeadSelfAttention/v_dense/kernel": 1,
    "Transformer-0-MultiHeadSelfAttention/v_dense/bias": 0,
    "Transformer-1-MultiHeadSelfAttention/o_dense/kernel": 0,
    "Transformer-0-FeedForward/i0_dense/kernel": 1,
    "Transformer-1-FeedForward/o_dense/kernel": 0,
}
PROMPTS = [[5, 9, 3, 17], [40, 2], [11, 12, 13, 14, 15, 16]]


def shardings(model, paths):
    """`{path: [its PartitionSpec, the fraction of it one device holds]}`."""
    variables = {variable.path: variable.value for variable in model.variables}
    return {
        path: [
            [axis for axis in variables[path].sharding.spec],
            variables[path].addressable_shards[0].data.size / variables[path].size,
        ]
        for path in paths
    }


def one_fit_step(model, x, y, loss):
    """The loss of one SGD step of `model` on `(x, y)`, and the kernel of its first attention after it."""
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss=loss)
    history = model.fit(x, y, batch_size=len(y), epochs=1, shuffle=False, verbose=0)
    kernel = model.get_layer("Transformer-0-MultiHeadSelfAttention").q_dense.kernel
    return history.history["loss"][0], keras.ops.convert_to_numpy(kernel)


def llama_runs(directory):
    llama = build_transformer_model(checkpoint_path=directory, with_lm="linear", return_keras_model=False)
    tokens = np.random.default_rng(0).integers(0, 64, (4, 9)).astype("int32")
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    return {
        "logits": predict(llama.model, tokens),
        "greedy": generate(llama, PROMPTS, max_new_tokens=8),
        "fit": one_fit_step(llama.model, tokens[:, :-1], tokens[:, 1:], loss),
    }, llama


def bert_runs(directory):
    bert = build_transformer_model(checkpoint_path=directory)
    tokens = np.random.default_rng(1).integers(1, 99, (4, 9)).astype("int32")
    inputs = [tokens, np.zeros_like(tokens)]
    targets = np.random.default_rng(2).normal(size=(4, 9, 32)).astype("float32")
    return {"logits": predict(bert, inputs), "fit": one_fit_step(bert, inputs, targets, "mse")}, bert


def data_parallel_training(directory):
    """Three SGD steps of a BERT on batches of 8 (one row per device under DataParallel): the mean
    loss and the final weights."""
    bert = build_transformer_model(checkpoint_path=directory)
    rng = np.random.default_rng(3)
    tokens = rng.integers(1, 99, (24, 9)).astype("int32")
    targets = rng.normal(size=(24, 9, 32)).astype("float32")
    bert.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    history = bert.fit([tokens, np.zeros_like(tokens)], targets, batch_size=8, shuffle=False, verbose=0)
    return history.history["loss"][0], [keras.ops.convert_to_numpy(weight) for weight in bert.weights]


def max_difference(first, second):
    return max(float(np.max(np.abs(np.asarray(a) - np.asarray(b)))) for a, b in zip(first, second, strict=True))


def main():
    work = tempfile.mkdtemp()
    llama_dir, _ = save_hf_model(transformers.LlamaForCausalLM, transformers.LlamaConfig, LLAMA, f"{work}/llama")
    bert_dir, _ = save_hf_model(transformers.BertModel, transformers.BertConfig, BERT, f"{work}/bert")
    devices = keras.distribution.list_devices()
    single = {"llama": llama_runs(llama_dir)[0], "bert": bert_runs(bert_dir)[0]}
    single_training = data_parallel_training(bert_dir)

    # Maps from unsharded models of the same configs (only their layer names and sizes matter).
    mesh = keras.distribution.DeviceMesh((2, 4), ("batch", "model"), devices)
    llama_map = get_layout_map(build_transformer_model(checkpoint_path=llama_dir, return_keras_model=False), mesh)
    bert_map = get_layout_map(build_transformer_model(checkpoint_path=bert_dir), mesh)
    results = {"devices": len(devices)}
    for name, layout_map, runs, sharded in (
        ("llama", llama_map, llama_runs, LLAMA_SHARDED),
        ("bert", bert_map, bert_runs, BERT_SHARDED),
    ):
        distribution = keras.distribution.ModelParallel(layout_map=layout_map, batch_dim_name="batch")
        keras.distribution.set_distribution(distribution)
        directory = llama_dir if name == "llama" else bert_dir
        model_runs, transformer = runs(directory)
        model = getattr(transformer, "model", transformer)
        results[name] = {
            "logits_difference": max_difference([model_runs["logits"]], [single[name]["logits"]]),
            "shardings": shardings(model, sharded),
            "fit_loss": [model_runs["fit"][0], single[name]["fit"][0]],
            "fit_kernel_difference": max_difference([model_runs["fit"][1]], [single[name]["fit"][1]]),
        }
        if name == "llama":
            results[name]["greedy"] = [model_runs["greedy"], single[name]["greedy"]]
            cache = transformer.build_cache(3, 16)[0]
            results[name]["cache_spec"] = [axis for axis in cache.sharding.spec]

    keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices))
    losses, weights = data_parallel_training(bert_dir)
    results["data_parallel"] = {
        "losses": [losses, single_training[0]],
        "weights_difference": max_difference(weights, single_training[1]),
    }
    print(json.dumps(results))


if __name__ == "__main__":
    sys.exit(main())
