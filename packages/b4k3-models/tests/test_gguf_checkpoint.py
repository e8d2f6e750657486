"""GGUF files (llama.cpp's format) written here with `gguf.GGUFWriter` from tiny random Hugging
Face models: llama.cpp's tensor names, its q/k row permutation (Llama), and several quantization
types. Loaded with `build_transformer_model(checkpoint_path='model.gguf')`, they must equal the
same weights loaded from safetensors, exactly (the safetensors hold the weights dequantized by the
gguf package), and give Hugging Face's logits (tolerance 1e-5 relative to the largest logit).
A damaged, foreign, incomplete or unsupported file is an error naming it."""

import numpy as np
import pytest
import torch
import transformers
from family_checks import hf_logits, ragged_batch, to_numpy
from gguf import GGMLQuantizationType, GGUFWriter
from gguf.quants import dequantize, quantize

from b4k3_models import CheckpointMismatchError, build_transformer_model

Q = GGMLQuantizationType
CONFIG = {
    "vocab_size": 96,
    "hidden_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "intermediate_size": 64,
    "max_position_embeddings": 64,
    "rms_norm_eps": 1e-5,
    "rope_theta": 5_000.0,
    "initializer_range": 0.2,
}
# Hugging Face name part -> (llama.cpp name part, the type it is stored as)
BLOCK_TENSORS = {
    "input_layernorm.weight": ("attn_norm.weight", Q.F32),
    "self_attn.q_proj.weight": ("attn_q.weight", Q.Q8_0),
    "self_attn.k_proj.weight": ("attn_k.weight", Q.Q4_0),
    "self_attn.v_proj.weight": ("attn_v.weight", Q.Q5_0),
    "self_attn.o_proj.weight": ("attn_output.weight", Q.Q4_1),
    "self_attn.q_proj.bias": ("attn_q.bias", Q.F32),
    "self_attn.k_proj.bias": ("attn_k.bias", Q.F32),
    "self_attn.v_proj.bias": ("attn_v.bias", Q.F32),
    "post_attention_layernorm.weight": ("ffn_norm.weight", Q.F32),
    "mlp.gate_proj.weight": ("ffn_gate.weight", Q.BF16),
    "mlp.up_proj.weight": ("ffn_up.weight", Q.F16),
    "mlp.down_proj.weight": ("ffn_down.weight", Q.Q8_0),
}
TENSORS = {
    "model.embed_tokens.weight": ("token_embd.weight", Q.F16),
    "model.norm.weight": ("output_norm.weight", Q.F32),
    "lm_head.weight": ("output.weight", Q.Q8_0),
}
# name -> (GGUF architecture, Hugging Face classes, config)
VARIANTS = {
    "llama": ("llama", transformers.LlamaForCausalLM, transformers.LlamaConfig, CONFIG),
    "llama_tied": (
        "llama",
        transformers.LlamaForCausalLM,
        transformers.LlamaConfig,
        {**CONFIG, "tie_word_embeddings": True},
    ),
    "qwen2": ("qwen2", transformers.Qwen2ForCausalLM, transformers.Qwen2Config, CONFIG),
}


def gguf_name_and_type(name):
    if name in TENSORS:
        return TENSORS[name]
    _, _, index, rest = name.split(".", 3)
    gguf_name, kind = BLOCK_TENSORS[rest]
    return f"blk.{index}.{gguf_name}", kind


def llama_cpp_permute(weight, heads):
    """llama.cpp's converter (`LlamaModel.permute`): each head's two rotary halves interleaved."""
    return (
        weight.reshape(heads, 2, weight.shape[0] // heads // 2, *weight.shape[1:]).swapaxes(1, 2).reshape(weight.shape)
    )


def write_gguf(path, architecture, config, state, skip=()):
    """`state` (Hugging Face names, float32) written as llama.cpp names, permuted and quantized."""
    writer = GGUFWriter(str(path), architecture)
    writer.add_block_count(config["num_hidden_layers"])
    writer.add_context_length(config["max_position_embeddings"])
    writer.add_embedding_length(config["hidden_size"])
    writer.add_feed_forward_length(config["intermediate_size"])
    writer.add_head_count(config["num_attention_heads"])
    writer.add_head_count_kv(config["num_key_value_heads"])
    writer.add_rope_freq_base(config["rope_theta"])
    writer.add_layer_norm_rms_eps(config["rms_norm_eps"])
    writer.add_rope_dimension_count(config["hidden_size"] // config["num_attention_heads"])
    for name, weight in state.items():
        gguf_name, kind = gguf_name_and_type(name)
        if gguf_name in skip:
            continue
        if architecture == "llama" and ".attn_q." in gguf_name:
            weight = llama_cpp_permute(weight, config["num_attention_heads"])
        elif architecture == "llama" and ".attn_k." in gguf_name:
            weight = llama_cpp_permute(weight, config["num_key_value_heads"])
        writer.add_tensor(gguf_name, quantize(weight, kind), raw_dtype=kind)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


@pytest.fixture(scope="module", params=sorted(VARIANTS))
def variant(request, tmp_path_factory):
    """`(gguf path, safetensors directory of the same dequantized weights, Hugging Face model)`."""
    architecture, model_class, config_class, config = VARIANTS[request.param]
    torch.manual_seed(0)
    model = model_class(config_class(**config, attn_implementation="eager")).eval()
    folder = tmp_path_factory.mktemp(request.param)
    state = {name: tensor.detach().numpy().astype(np.float32) for name, tensor in model.state_dict().items()}
    if config.get("tie_word_embeddings"):
        state.pop("lm_head.weight", None)
    path = write_gguf(folder / "model.gguf", architecture, config, state)
    with torch.no_grad():  # the weights as GGUF stores them, quantized and back
        for name, parameter in model.named_parameters():
            kind = gguf_name_and_type(name)[1]
            parameter.copy_(torch.from_numpy(dequantize(quantize(state[name], kind), kind).reshape(parameter.shape)))
    model.save_pretrained(folder / "hf")
    return path, folder / "hf", model


def test_gguf_loads_the_weights_safetensors_give(variant):
    path, directory, _ = variant
    from_gguf = build_transformer_model(checkpoint_path=str(path), with_lm="linear")
    from_safetensors = build_transformer_model(checkpoint_path=str(directory), with_lm="linear")
    assert len(from_gguf.weights) == len(from_safetensors.weights)
    for ours, theirs in zip(from_gguf.weights, from_safetensors.weights, strict=True):
        assert ours.path == theirs.path
        np.testing.assert_array_equal(to_numpy(ours), to_numpy(theirs), err_msg=ours.path)


def test_gguf_model_gives_hf_logits(variant):
    path, _, model = variant
    ids, mask = ragged_batch(CONFIG["vocab_size"], lengths=(9, 9))
    logits = to_numpy(build_transformer_model(checkpoint_path=path, with_lm="linear")(ids))
    expected = hf_logits(model, ids, mask)
    np.testing.assert_allclose(logits, expected, rtol=0, atol=1e-5 * np.abs(expected).max())


@pytest.fixture(scope="module")
def llama_state():
    torch.manual_seed(1)
    model = transformers.LlamaForCausalLM(transformers.LlamaConfig(**CONFIG))
    return {name: tensor.detach().numpy() for name, tensor in model.state_dict().items()}


def test_truncated_gguf_is_an_error_naming_the_file(llama_state, tmp_path):
    whole = write_gguf(tmp_path / "whole.gguf", "llama", CONFIG, llama_state).read_bytes()
    path = tmp_path / "truncated.gguf"
    path.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(ValueError, match=r"truncated\.gguf"):
        build_transformer_model(checkpoint_path=path)


def test_foreign_file_is_an_error_naming_the_file(tmp_path):
    path = tmp_path / "model.gguf"
    path.write_bytes(b"PK\x03\x04" + bytes(200))
    with pytest.raises(ValueError, match=r"model\.gguf is not a readable GGUF"):
        build_transformer_model(checkpoint_path=path)


def test_unsupported_architecture_is_refused_by_name(llama_state, tmp_path):
    path = write_gguf(tmp_path / "falcon.gguf", "falcon", CONFIG, llama_state)
    with pytest.raises(ValueError, match=r"falcon.gguf: GGUF architecture 'falcon' is not supported"):
        build_transformer_model(checkpoint_path=path)


def test_missing_tensor_is_named(llama_state, tmp_path):
    path = write_gguf(tmp_path / "partial.gguf", "llama", CONFIG, llama_state, skip=("blk.1.ffn_up.weight",))
    with pytest.raises(CheckpointMismatchError, match=r"model\.layers\.1\.mlp\.up_proj\.weight") as error:
        build_transformer_model(checkpoint_path=path)
    assert "partial.gguf" in str(error.value)
