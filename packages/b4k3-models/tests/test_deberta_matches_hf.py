"""DeBERTa-v2/v3 loaded from Hugging Face `deberta-v2` directories gives transformers 5's
`DebertaV2Model` and `DebertaV2ForMaskedLM` outputs on a padded batch, within 1e-5 relative /
1e-4 absolute (fp32) at the real tokens, for several configurations (both disentangled terms or
one, shared or own relative projections, absolute positions on or off or alone, buckets fewer than
the 11-token rows, DeBERTa-v2's convolution). Weights are drawn at std 0.2, 1-d weights moved by noise.

A `.weights.h5` written here in bert4keras3's layout (keras-nlp's DeBERTa-v3 layers) from the
same Hugging Face weights loads to the same outputs; a classifier on top trains with `fit`, LoRA
adapters included."""

import json

import h5py
import keras
import numpy as np
import pytest
import torch
import transformers
from family_checks import INITIALIZER_RANGE, TINY_BERT, assert_matches, padded_batch, predict, save_hf_model

from b4k3_layers import enable_lora
from b4k3_models import CheckpointMismatchError, DeBERTa, build_transformer_model
from b4k3_models.bert import FirstToken
from b4k3_ops.positions import log_bucket_positions

TINY_DEBERTA = {
    **TINY_BERT,
    "layer_norm_eps": 1e-7,
    "initializer_range": INITIALIZER_RANGE,
    "relative_attention": True,
    "max_relative_positions": 16,
}
# DeBERTa-v3: both terms through the shared projections, bucketed distances, normalized relative
# embeddings, no absolute positions, no segments.
V3 = {
    **TINY_DEBERTA,
    "type_vocab_size": 0,
    "pos_att_type": ["p2c", "c2p"],
    "position_buckets": 6,
    "share_att_key": True,
    "norm_rel_ebd": "layer_norm",
    "position_biased_input": False,
}
CONFIGS = {
    "v3": V3,
    # DeBERTa-v2: own relative projections, plain distances clipped at 4, absolute positions,
    # segments and the convolution after the first block.
    "v2_conv": {
        **TINY_DEBERTA,
        "pos_att_type": "p2c|c2p",
        "max_relative_positions": 4,
        "share_att_key": False,
        "position_biased_input": True,
        "conv_kernel_size": 3,
        "conv_act": "gelu",
    },
    "c2p_own_keys": {**V3, "pos_att_type": ["c2p"], "share_att_key": False, "norm_rel_ebd": "none"},
    "p2c_absolute": {**V3, "pos_att_type": ["p2c"], "position_biased_input": True, "position_buckets": 4},
    # No relative terms: absolute positions only, the logits still scaled as if both were summed.
    "absolute_only": {**TINY_DEBERTA, "relative_attention": False, "pos_att_type": ["c2p", "p2c"]},
}


def save(tmp_path_factory, name, model_class, seed=0, **config):
    directory = tmp_path_factory.mktemp(f"deberta_{name}")
    config = {**CONFIGS[name], **config}
    return save_hf_model(model_class, transformers.DebertaV2Config, config, directory, seed=seed, perturb=0.2)


def batch(config):
    ids, mask = padded_batch(config["vocab_size"])
    segments = np.zeros_like(ids)
    segments[:, 5:] = 1 if config["type_vocab_size"] else 0
    inputs = [ids, segments] if config["type_vocab_size"] else ids
    return inputs, ids, mask, segments


def hf_outputs(model, ids, mask, segments):
    with torch.no_grad():
        return model(
            input_ids=torch.tensor(ids, dtype=torch.long),
            attention_mask=torch.tensor(mask, dtype=torch.long),
            token_type_ids=torch.tensor(segments, dtype=torch.long),
        )


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_sequence_output_matches_hugging_face(name, tmp_path_factory):
    directory, reference = save(tmp_path_factory, name, transformers.DebertaV2Model)
    inputs, ids, mask, segments = batch(CONFIGS[name])
    expected = hf_outputs(reference, ids, mask, segments).last_hidden_state.numpy()

    transformer = build_transformer_model(checkpoint_path=directory, return_keras_model=False)
    assert type(transformer) is DeBERTa  # from the config's model_type
    assert_matches(predict(transformer.model, inputs), expected, mask)


@pytest.mark.parametrize(("name", "legacy"), [("v3", True), ("v3", False), ("v2_conv", True)])
def test_mlm_logits_match_hugging_face(name, legacy, tmp_path_factory):
    directory, reference = save(tmp_path_factory, name, transformers.DebertaV2ForMaskedLM, seed=1, legacy=legacy)
    inputs, ids, mask, segments = batch(CONFIGS[name])
    expected = hf_outputs(reference, ids, mask, segments).logits.numpy()

    model = build_transformer_model(checkpoint_path=directory, with_mlm="linear")
    assert_matches(predict(model, inputs), expected, mask)
    encoder = build_transformer_model(checkpoint_path=directory)  # the head's keys are known, not unused
    assert encoder.output.shape[-1] == CONFIGS[name]["hidden_size"]


def test_log_buckets_match_hugging_face_at_deberta_v3_sizes():
    """256 buckets up to 512 positions (every DeBERTa-v3), distances well past both."""
    from transformers.models.deberta_v2.modeling_deberta_v2 import make_log_bucket_position

    relative = np.arange(-1500, 1501)
    expected = make_log_bucket_position(torch.tensor(relative), 256, 512).numpy()
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(log_bucket_positions(relative, 256, 512)), expected)


# bert4keras3's DeBERTa `.weights.h5`: keras-nlp's layers, numbered by class in the model's order.


def bert4keras3_arrays(reference):
    """The weights of a Hugging Face DeBERTa-v3 `DebertaV2ForMaskedLM` (legacy head) under the
    paths bert4keras3's model saves: `layers/<class>_<n>/<attribute>/vars/<i>`."""
    config = reference.config
    heads, size = config.num_attention_heads, config.hidden_size // config.num_attention_heads
    weights = {key: value.detach().numpy() for key, value in reference.state_dict().items()}
    arrays = {
        "layers/embedding/vars/0": weights["deberta.embeddings.word_embeddings.weight"],
        "layers/layer_normalization/vars/0": weights["deberta.embeddings.LayerNorm.weight"],
        "layers/layer_normalization/vars/1": weights["deberta.embeddings.LayerNorm.bias"],
        "layers/deberta_relative_embedding/vars/0": weights["deberta.encoder.rel_embeddings.weight"],
        "layers/deberta_relative_embedding/layer_norm/vars/0": weights["deberta.encoder.LayerNorm.weight"],
        "layers/deberta_relative_embedding/layer_norm/vars/1": weights["deberta.encoder.LayerNorm.bias"],
        "layers/masked_lm_head/vars/0": weights["cls.predictions.bias"],
    }
    for source, target in (("dense", "_intermediate_dense"), ("LayerNorm", "_intermediate_layer_norm")):
        kernel = weights[f"cls.predictions.transform.{source}.weight"]
        arrays[f"layers/masked_lm_head/{target}/vars/0"] = kernel.T if kernel.ndim == 2 else kernel
        arrays[f"layers/masked_lm_head/{target}/vars/1"] = weights[f"cls.predictions.transform.{source}.bias"]
    numbered = lambda name, index: f"layers/{name}_{index}" if index else f"layers/{name}"  # noqa: E731
    for index in range(config.num_hidden_layers):
        scope = f"deberta.encoder.layer.{index}"
        attention = numbered("disentangled_self_attention", index)
        for source, target in (
            ("query_proj", "_query_dense"),
            ("key_proj", "_key_dense"),
            ("value_proj", "_value_dense"),
        ):
            kernel = weights[f"{scope}.attention.self.{source}.weight"].T
            arrays[f"{attention}/{target}/vars/0"] = kernel.reshape(-1, heads, size)
            arrays[f"{attention}/{target}/vars/1"] = weights[f"{scope}.attention.self.{source}.bias"].reshape(
                heads, size
            )
        arrays[f"{attention}/_output_dense/vars/0"] = weights[f"{scope}.attention.output.dense.weight"].T
        arrays[f"{attention}/_output_dense/vars/1"] = weights[f"{scope}.attention.output.dense.bias"]
        feed_forward = numbered("feed_forward", index)
        for source, target in (("intermediate.dense", "i0_dense"), ("output.dense", "o_dense")):
            arrays[f"{feed_forward}/{target}/vars/0"] = weights[f"{scope}.{source}.weight"].T
            arrays[f"{feed_forward}/{target}/vars/1"] = weights[f"{scope}.{source}.bias"]
        for offset, norm in ((1, "attention.output.LayerNorm"), (2, "output.LayerNorm")):
            path = numbered("layer_normalization", 2 * index + offset)
            arrays[f"{path}/vars/0"] = weights[f"{scope}.{norm}.weight"]
            arrays[f"{path}/vars/1"] = weights[f"{scope}.{norm}.bias"]
    return arrays


@pytest.fixture(scope="module")
def bert4keras3_file(tmp_path_factory):
    directory, reference = save(tmp_path_factory, "v3", transformers.DebertaV2ForMaskedLM, seed=2)
    path = directory / "deberta.weights.h5"
    with h5py.File(path, "w") as file:
        for key, array in bert4keras3_arrays(reference).items():
            file.create_dataset(key, data=array)
    return directory, reference, path


def test_bert4keras3_weights_file_gives_hugging_faces_logits(bert4keras3_file):
    directory, reference, path = bert4keras3_file
    inputs, ids, mask, segments = batch(V3)
    model = build_transformer_model(config_path=directory / "config.json", with_mlm="linear", keras_weights_path=path)
    assert_matches(predict(model, inputs), hf_outputs(reference, ids, mask, segments).logits.numpy(), mask)


def test_bert4keras3_config_and_weights_file_give_hugging_faces_logits(bert4keras3_file, tmp_path):
    """bert4keras3's own config keys (`bucket_size`, `max_position`, which also bounds the log
    buckets) with `model='deberta'`, as its users build the model."""
    _, reference, path = bert4keras3_file
    sizes = ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size", "hidden_act")
    config = {key: V3[key] for key in sizes}
    config.update(max_position=V3["max_relative_positions"], bucket_size=V3["position_buckets"], segment_vocab_size=0)
    (tmp_path / "bert4keras3_config.json").write_text(json.dumps(config))
    inputs, ids, mask, segments = batch(V3)
    model = build_transformer_model(
        tmp_path / "bert4keras3_config.json", model="deberta", with_mlm="linear", keras_weights_path=path
    )
    assert_matches(predict(model, inputs), hf_outputs(reference, ids, mask, segments).logits.numpy(), mask)


def test_bert4keras3_weights_file_that_does_not_fit_names_what_is_missing_and_unused(bert4keras3_file, tmp_path):
    directory, _, path = bert4keras3_file
    broken = tmp_path / "broken.weights.h5"
    with h5py.File(path, "r") as source, h5py.File(broken, "w") as file:
        for key in ("layers/embedding", "layers/deberta_relative_embedding", "layers/disentangled_self_attention"):
            source.copy(key, file, name=key)
        file.create_dataset("layers/extra/vars/0", data=np.zeros(3))
    with pytest.raises(CheckpointMismatchError) as error:
        build_transformer_model(config_path=directory / "config.json", keras_weights_path=broken)
    assert any(entry.startswith("Transformer-1-MultiHeadSelfAttention/q_dense/kernel") for entry in error.value.missing)
    assert error.value.unused == ["layers/extra/vars/0 (3,)"]


# Fine-tuning


@pytest.mark.parametrize("name", ["v3", "v2_conv"])
def test_classifier_on_top_trains_with_fit_and_lora_and_reloads(name, tmp_path):
    config = CONFIGS[name]
    config_path = tmp_path / "config.json"
    config_path.write_text(json.dumps({**config, "model_type": "deberta-v2"}))
    encoder = build_transformer_model(config_path=config_path)
    enable_lora(encoder, rank=2)
    classifier = keras.Model(encoder.input, keras.layers.Dense(2)(FirstToken()(encoder.output)))
    classifier.compile(optimizer=keras.optimizers.Adam(1e-2), loss=keras.losses.SparseCategoricalCrossentropy(True))
    tokens, _ = padded_batch(config["vocab_size"], lengths=(9, 9, 6, 4))
    inputs = [tokens, np.zeros_like(tokens)] if config["type_vocab_size"] else tokens
    labels = np.array([0, 1, 0, 1])
    assert any("MultiHeadSelfAttention/q_dense/lora_kernel_a" in weight.path for weight in classifier.trainable_weights)
    kernel = next(weight for weight in encoder.weights if weight.path.endswith("Attention/q_dense/kernel"))
    frozen = keras.ops.convert_to_numpy(kernel)

    history = classifier.fit(inputs, labels, epochs=8, batch_size=4, verbose=0)

    assert history.history["loss"][-1] < history.history["loss"][0]
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(kernel), frozen)  # LoRA trains, the kernel stays
    classifier.save(tmp_path / "classifier.keras")
    reloaded = keras.saving.load_model(tmp_path / "classifier.keras")
    assert_matches(predict(reloaded, inputs), predict(classifier, inputs))


# Errors


def test_unsupported_options_are_refused_by_name():
    sizes = {"vocab_size": 20, "hidden_size": 8, "num_hidden_layers": 1, "num_attention_heads": 2}
    sizes["intermediate_size"] = 12
    with pytest.raises(ValueError, match=r"pos_att_type entries must be 'c2p' or 'p2c', got \['p2p'\]"):
        DeBERTa(**sizes, pos_att_type="c2p|p2p")
    with pytest.raises(ValueError, match=r"norm_rel_ebd must be one of \('none', 'layer_norm'\), got 'batch_norm'"):
        DeBERTa(**sizes, norm_rel_ebd="batch_norm")
    with pytest.raises(ValueError, match="conv_kernel_size must be 0 or odd"):
        DeBERTa(**sizes, conv_kernel_size=2)
    with pytest.raises(TypeError, match=r"does not implement \['query_head'\]"):
        DeBERTa(**sizes, query_head=4)
    with pytest.raises(TypeError, match=r"no \['with_nsp'\]"):
        DeBERTa(**sizes, with_nsp=True)
    with pytest.raises(TypeError, match=r"no absolute positions, so no \['custom_position_ids'\]"):
        DeBERTa(**sizes, custom_position_ids=True)
