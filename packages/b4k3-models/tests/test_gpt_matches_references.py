"""GPT (OpenAI GPT), GPT2 and GPT2_ML give their references' outputs.

References: Hugging Face's `OpenAIGPTLMHeadModel` and `GPT2LMHeadModel` saved from tiny random
configs (matrices drawn with std 0.2, norm gains and biases moved by 0.2: with HF's default 0.02 a
tanh-GELU / erf-GELU mix-up or a wrong norm epsilon would hide under the tolerance), on a ragged
right-padded batch where token 0 is also a real token; the same weights under the Google-TF names
bert4keras reads (CDial-GPT, CPM-LM); for GPT2_ML, which has no executable reference here, a
PyTorch transcription of its block (`reference_gpt2_ml`) on a TF checkpoint written with
GPT2-ML's variable names. Logits within 1e-5 relative / 1e-4 absolute (fp32); cached decoding
equals the full pass (`run_decoding_protocol_test`).
"""

import json

import numpy as np
import pytest
import torch
from family_checks import (
    TINY_GPT2,
    assert_matches,
    hf_logits,
    predict,
    ragged_batch,
    run_decoding_protocol_test,
    run_family_parity_test,
    write_tf_checkpoint,
)

from b4k3_layers.feed_forward import gelu_tanh
from b4k3_models import GPT, GPT2, GPT2_ML, build_transformer_model

VOCAB_SIZE = TINY_GPT2["vocab_size"]
FAMILIES = {"openai_gpt": GPT, "gpt2": GPT2}


@pytest.fixture(scope="module")
def batch():
    return ragged_batch(VOCAB_SIZE)


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_logits_match_hf_on_a_ragged_batch(saved, batch, name):
    directory, reference = saved(name)
    ids, mask = batch
    transformer = run_family_parity_test(
        directory, ids, hf_logits(reference, ids, mask), mask, final_activation="linear"
    )
    assert type(transformer) is FAMILIES[name]
    assert transformer.segment_vocab_size == 0
    assert transformer.pad_token_id is None


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_the_default_head_gives_probabilities(saved, batch, name):
    directory, reference = saved(name)
    ids, mask = batch
    expected = torch.softmax(torch.tensor(hf_logits(reference, ids, mask)), dim=-1).numpy()
    assert_matches(predict(build_transformer_model(checkpoint_path=directory), ids), expected, mask)


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_cached_decoding_equals_the_full_pass(saved, name):
    directory, _ = saved(name)
    transformer = build_transformer_model(
        checkpoint_path=directory, final_activation="linear", return_keras_model=False
    )
    tokens, _ = ragged_batch(VOCAB_SIZE, lengths=(10, 10), seed=3)
    run_decoding_protocol_test(transformer, tokens)


def test_gpt_has_no_other_heads_nor_unilm_options():
    with pytest.raises(TypeError, match=r"GPT2 has no \['with_mlm'\].*final_activation"):
        build_transformer_model(model="gpt2", **GOOGLE_SIZES, with_mlm=True)
    with pytest.raises(TypeError, match=r"GPT does not implement \['segment_attention'\]"):
        build_transformer_model(model="gpt", **GOOGLE_SIZES, segment_attention=True)


# Google-TF names (bert4keras' maps of CDial-GPT and CPM-LM)

GOOGLE_SIZES = {"vocab_size": VOCAB_SIZE, "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4}
GOOGLE_SIZES.update(intermediate_size=128, max_position=64)


def google_gpt_arrays(reference, pre_norm):
    """The Hugging Face GPT's weights under bert4keras' Google names: `gpt/embeddings/...`,
    `gpt/transformer/layer_i/...` (q/k/v split out of `c_attn`), norms after (GPT) or before
    (GPT2: `input/LayerNorm`, and the final `gpt/output/LayerNorm`) each sublayer."""
    weights = {key: tensor.numpy() for key, tensor in reference.state_dict().items()}
    base = "transformer."
    tokens, positions = ("wte", "wpe") if pre_norm else ("tokens_embed", "positions_embed")
    arrays = {
        "gpt/embeddings/word_embeddings": weights[f"{base}{tokens}.weight"],
        "gpt/embeddings/position_embeddings": weights[f"{base}{positions}.weight"],
    }
    norm_names = (
        ("attention/input/LayerNorm", "input/LayerNorm")
        if pre_norm
        else ("attention/output/LayerNorm", "output/LayerNorm")
    )
    for index in range(reference.config.n_layer):
        hf, google = f"{base}h.{index}.", f"gpt/transformer/layer_{index}/"
        kernels = np.split(weights[f"{hf}attn.c_attn.weight"], 3, axis=-1)
        biases = np.split(weights[f"{hf}attn.c_attn.bias"], 3, axis=-1)
        for name, kernel, bias in zip(("query", "key", "value"), kernels, biases, strict=True):
            arrays[f"{google}attention/self/{name}/kernel"] = kernel
            arrays[f"{google}attention/self/{name}/bias"] = bias
        for hf_name, google_name in (
            ("attn.c_proj", "attention/output/dense"),
            ("mlp.c_fc", "intermediate/dense"),
            ("mlp.c_proj", "output/dense"),
        ):
            arrays[f"{google}{google_name}/kernel"] = weights[f"{hf}{hf_name}.weight"]
            arrays[f"{google}{google_name}/bias"] = weights[f"{hf}{hf_name}.bias"]
        for hf_name, google_name in zip(("ln_1", "ln_2"), norm_names, strict=True):
            arrays[f"{google}{google_name}/gamma"] = weights[f"{hf}{hf_name}.weight"]
            arrays[f"{google}{google_name}/beta"] = weights[f"{hf}{hf_name}.bias"]
    if pre_norm:
        arrays["gpt/output/LayerNorm/gamma"] = weights[f"{base}ln_f.weight"]
        arrays["gpt/output/LayerNorm/beta"] = weights[f"{base}ln_f.bias"]
    return {name: np.ascontiguousarray(array) for name, array in arrays.items()}


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_google_names_give_hf_outputs(saved, batch, name):
    _, reference = saved(name)
    ids, mask = batch
    arrays = google_gpt_arrays(reference, pre_norm=name == "gpt2")
    model = build_transformer_model(
        checkpoint_path=arrays,
        model="gpt2" if name == "gpt2" else "gpt",
        **GOOGLE_SIZES,
        hidden_act=gelu_tanh,
        segment_vocab_size=0,
        layer_norm_eps=1e-5,
        pad_token_id=None,
        final_activation="linear",
    )
    assert_matches(predict(model, ids), hf_logits(reference, ids, mask), mask)


# GPT2_ML


def layer_norm(x, gamma, beta, eps=1e-5):
    return torch.nn.functional.layer_norm(x, x.shape[-1:], gamma, beta, eps)


def reference_gpt2_ml(arrays, ids, layers, heads):
    """GPT2-ML's forward pass transcribed from its description (imcaspar/gpt2-ml, bert4keras'
    GPT2_ML): embeddings + positions, a norm; per block `x += attention(x)` (causal), then
    `x = norm_1(x + ffn(norm_0(x)))` with an erf-GELU; logits against the token embeddings."""
    a = {name: torch.tensor(array, dtype=torch.float64) for name, array in arrays.items()}
    ids = torch.tensor(ids, dtype=torch.long)
    length = ids.shape[1]
    x = a["newslm/embeddings/word_embed"][ids] + a["newslm/embeddings/pos_embed"][:length]
    x = layer_norm(
        x, a["newslm/embeddings/LayerNorm_embed_norm/gamma"], a["newslm/embeddings/LayerNorm_embed_norm/beta"]
    )
    causal = torch.tril(torch.ones(length, length, dtype=torch.bool))
    for index in range(layers):
        p = f"newslm/layer{index:02d}/"

        def dense(h, name, p=p):
            return h @ a[f"{p}{name}/kernel"] + a[f"{p}{name}/bias"]

        q, k, v = (
            dense(x, name).unflatten(-1, (heads, -1)).transpose(1, 2)
            for name in ("query_layer", "key_layer", "value_layer")
        )
        scores = (q @ k.transpose(-1, -2)) / np.sqrt(q.shape[-1])
        weights = torch.softmax(scores.masked_fill(~causal, -torch.inf), dim=-1)
        x = x + dense((weights @ v).transpose(1, 2).flatten(2), "context_projection_layer")
        h = layer_norm(x, a[f"{p}LayerNorm_mlp_ln0/gamma"], a[f"{p}LayerNorm_mlp_ln0/beta"])
        h = dense(torch.nn.functional.gelu(dense(h, "intermediate")), "output")
        x = layer_norm(x + h, a[f"{p}LayerNorm_mlp_ln1/gamma"], a[f"{p}LayerNorm_mlp_ln1/beta"])
    return (x @ a["newslm/embeddings/word_embed"].T).numpy()


def gpt2_ml_arrays(layers, hidden, intermediate, seed=0):
    """Random GPT2-ML weights under its checkpoint's names (matrices std 0.2, gains 1 +- 0.2)."""
    rng = np.random.default_rng(seed)

    def normal(*shape, mean=0.0):
        return (mean + 0.2 * rng.standard_normal(shape)).astype("float32")

    arrays = {
        "newslm/embeddings/word_embed": normal(VOCAB_SIZE, hidden),
        "newslm/embeddings/pos_embed": normal(64, hidden),
        "newslm/embeddings/LayerNorm_embed_norm/gamma": normal(hidden, mean=1.0),
        "newslm/embeddings/LayerNorm_embed_norm/beta": normal(hidden),
    }
    for index in range(layers):
        p = f"newslm/layer{index:02d}/"
        for name in ("query_layer", "key_layer", "value_layer", "context_projection_layer"):
            arrays.update({f"{p}{name}/kernel": normal(hidden, hidden), f"{p}{name}/bias": normal(hidden)})
        arrays.update(
            {f"{p}intermediate/kernel": normal(hidden, intermediate), f"{p}intermediate/bias": normal(intermediate)}
        )
        arrays.update({f"{p}output/kernel": normal(intermediate, hidden), f"{p}output/bias": normal(hidden)})
        for norm in ("LayerNorm_mlp_ln0", "LayerNorm_mlp_ln1"):
            arrays.update({f"{p}{norm}/gamma": normal(hidden, mean=1.0), f"{p}{norm}/beta": normal(hidden)})
    return arrays


@pytest.fixture(scope="module")
def gpt2_ml_checkpoint(tmp_path_factory):
    """A TF checkpoint with GPT2-ML's variable names and its bert4keras config."""
    directory = tmp_path_factory.mktemp("gpt2_ml")
    arrays = gpt2_ml_arrays(GOOGLE_SIZES["num_hidden_layers"], GOOGLE_SIZES["hidden_size"], 128)
    write_tf_checkpoint(arrays, directory / "model.ckpt")
    config = {**GOOGLE_SIZES, "hidden_act": "gelu", "max_position_embeddings": 64}
    del config["max_position"]
    (directory / "config.json").write_text(json.dumps(config))
    return directory, arrays


def test_gpt2_ml_matches_its_block_on_a_tf_checkpoint(gpt2_ml_checkpoint):
    directory, arrays = gpt2_ml_checkpoint
    ids = np.random.default_rng(4).integers(1, VOCAB_SIZE, size=(2, 9)).astype("int32")
    transformer = build_transformer_model(
        config_path=directory / "config.json",
        checkpoint_path=directory / "model.ckpt",
        model="gpt2_ml",
        final_activation="linear",
        return_keras_model=False,
    )
    assert type(transformer) is GPT2_ML
    names = [layer.name for layer in transformer.model.layers]
    assert "Transformer-0-FeedForward-Norm-0" in names
    assert "Transformer-1-FeedForward-Norm-1" in names
    assert not any(name.startswith("Transformer-0-MultiHeadSelfAttention-Norm") for name in names)
    expected = reference_gpt2_ml(arrays, ids, GOOGLE_SIZES["num_hidden_layers"], GOOGLE_SIZES["num_attention_heads"])
    assert_matches(predict(transformer.model, ids), expected)
    run_decoding_protocol_test(transformer, ids, lowest_token=1)


def test_gpt2_ml_refuses_a_hugging_face_directory(saved):
    directory, _ = saved("gpt2")
    with pytest.raises(ValueError, match="GPT2_ML reads GPT2-ML's TF checkpoint"):
        build_transformer_model(checkpoint_path=directory, model="gpt2_ml")
