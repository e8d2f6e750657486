"""The block protocol of the `Transformer` base: options a family does not implement are refused
by name, the decoding mixin serves an encoder built as a language model (BERT with
`application='lm'`), not only the decoders, and the named weight transforms do what they say.

Reference for decoding: the same model's full pass on whole sequences (`run_decoding_protocol_test`,
within 1e-5 / 1e-4), for BERT's learned absolute positions taken from the cache index."""

import keras
import numpy as np
import pytest
from family_checks import (
    TINY_BERT,
    TINY_BERT_ARGUMENTS,
    TINY_GEMMA2,
    assert_matches,
    decode_in_steps,
    predict,
    run_decoding_protocol_test,
)

from b4k3_models import BERT, Gemma, Gemma2, Llama, build_transformer_model, open_checkpoint
from b4k3_models.checkpoint_names import HF_CONV1D_NAMES, HF_NAMES
from b4k3_models.transformer import ATTENTION, FEED_FORWARD, block_layer_name
from b4k3_models.weight_maps import fused_part, per_head_bias, per_head_kernel, per_head_output, rows_from

LLAMA_SIZES = {
    "vocab_size": 64,
    "hidden_size": 32,
    "num_hidden_layers": 1,
    "num_attention_heads": 2,
    "query_head": 4,
    "intermediate_size": 40,
}


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("embedding_size", 8),
        ("attention_key_size", 4),
        ("residual_attention_scores", True),
        ("segment_attention", True),
        ("pad_token_id", 0),
    ],
)
def test_a_decoder_refuses_the_encoder_options_it_would_ignore(option, value):
    with pytest.raises(TypeError, match=rf"Llama does not implement \['{option}'\]"):
        Llama(**LLAMA_SIZES, **{option: value})
    with pytest.raises(TypeError, match=rf"Gemma2 does not implement \['{option}'\]"):
        build_transformer_model(model="gemma2", **LLAMA_SIZES, **{option: value})


def test_values_that_change_nothing_are_accepted():
    """The head size as `attention_key_size` or the hidden size as `embedding_size` is the model's own."""
    transformer = Llama(**LLAMA_SIZES, attention_key_size=8, embedding_size=32, residual_attention_scores=False)
    assert (transformer.attention_key_size, transformer.embedding_size) == (8, 32)


def test_a_conditional_layer_norm_is_refused_where_the_norms_cannot_take_one():
    condition = keras.Input(shape=(4,))
    with pytest.raises(TypeError, match=r"Llama does not implement \['additional_input_layers', 'layer_norm_cond'\]"):
        build_transformer_model(
            model="llama", **LLAMA_SIZES, layer_norm_cond=condition, additional_input_layers=condition
        )


def test_condition_settings_without_a_condition_are_refused():
    with pytest.raises(
        ValueError, match="layer_norm_cond_hidden_size and layer_norm_cond_hidden_act need layer_norm_cond"
    ):
        build_transformer_model(**TINY_BERT_ARGUMENTS, layer_norm_cond_hidden_size=8)


def test_every_family_keeps_bert4keras_layer_names():
    bert = build_transformer_model(**TINY_BERT_ARGUMENTS, return_keras_model=False)
    llama = build_transformer_model(model="llama", **LLAMA_SIZES, return_keras_model=False)
    for transformer in (bert, llama):
        for sublayer in (ATTENTION, FEED_FORWARD):
            name = block_layer_name(0, sublayer)
            assert transformer.model.get_layer(name) is transformer.layers[name]
            assert transformer.model.get_layer(f"{name}-Norm") is not None
    assert block_layer_name(3, ATTENTION) == "Transformer-3-MultiHeadSelfAttention"


def test_config_translation_extends_the_parent_family():
    """Gemma2's translation is Gemma's plus its own settings."""
    hf_config = {**TINY_GEMMA2, "model_type": "gemma2"}
    config = Gemma2.from_hf_config(hf_config)
    gemma = Gemma.from_hf_config(hf_config)
    assert {name: config[name] for name in gemma} == gemma
    assert (config["logit_soft_cap"], config["sliding_window_size"], config["share_emebding"]) == (2.0, 4, True)


# The decoding mixin on an encoder


@pytest.fixture(scope="module")
def bert_lm(bert_pretraining):
    directory, _ = bert_pretraining
    return build_transformer_model(
        checkpoint_path=directory, application="lm", with_mlm="linear", return_keras_model=False
    )


def test_bert_language_model_decodes_with_learned_positions_from_the_cache_index(bert_lm):
    tokens = np.random.default_rng(0).integers(1, TINY_BERT["vocab_size"], size=(2, 10)).astype("int32")

    def full_pass(sequences):
        return predict(bert_lm.model, [sequences, np.zeros_like(sequences)])

    run_decoding_protocol_test(bert_lm, tokens, full_pass, lowest_token=1)


def test_unilm_bert_decodes_from_each_rows_source_length(bert_pretraining):
    """UniLM's cache keeps each row's source length: prefilled past it (row 1's forced target
    tokens), then token by token, the outputs are the full pass's with segment ids 1 from the
    source's end (the target seeing the source and itself causally)."""
    directory, _ = bert_pretraining
    unilm = build_transformer_model(
        checkpoint_path=directory, application="unilm", with_mlm="linear", return_keras_model=False
    )
    tokens = np.random.default_rng(0).integers(1, TINY_BERT["vocab_size"], size=(2, 10)).astype("int32")
    sources = np.array([6, 3], dtype="int32")
    segments = (np.arange(10)[None] >= sources[:, None]).astype("int32")
    cache = unilm.build_cache(2, 12, source_lengths=sources)  # unused positions stay masked
    assert_matches(decode_in_steps(unilm.call_with_cache, cache, tokens, 6), predict(unilm.model, [tokens, segments]))
    with pytest.raises(TypeError, match="source_lengths"):
        unilm.build_cache(2, 12)


def test_bert_without_a_causal_mask_refuses_to_decode(bert_pretraining):
    directory, _ = bert_pretraining
    transformer = build_transformer_model(checkpoint_path=directory, return_keras_model=False)
    with pytest.raises(TypeError, match="application='lm'"):
        transformer.build_cache(1, 8)


def test_decoding_refuses_what_it_cannot_do(bert_pretraining):
    directory, _ = bert_pretraining
    realformer = build_transformer_model(
        checkpoint_path=directory, application="lm", residual_attention_scores=True, return_keras_model=False
    )
    with pytest.raises(TypeError, match="residual_attention_scores"):
        realformer.build_cache(1, 8)
    unbuilt = BERT(**TINY_BERT_ARGUMENTS)
    with pytest.raises(TypeError, match="not built"):
        unbuilt.check_can_decode()


# Named weight transforms


def test_per_head_transforms_lay_out_each_head_as_the_checkpoint_rows():
    heads, head_size, hidden = 3, 2, 5
    weight = np.arange(heads * head_size * hidden, dtype="float32").reshape(heads * head_size, hidden)
    kernel = per_head_kernel(heads, head_size)(weight)
    assert kernel.shape == (heads, hidden, head_size)
    for head in range(heads):
        np.testing.assert_array_equal(kernel[head], weight[head * head_size : (head + 1) * head_size].T)
    output = np.arange(hidden * heads * head_size, dtype="float32").reshape(hidden, heads * head_size)
    per_head = per_head_output(heads, head_size)(output)
    for head in range(heads):
        np.testing.assert_array_equal(per_head[head], output[:, head * head_size : (head + 1) * head_size].T)
    np.testing.assert_array_equal(per_head_bias(heads, head_size)(np.arange(6)), [[0, 1], [2, 3], [4, 5]])


def test_row_offset_and_fused_parts():
    table = np.arange(12).reshape(6, 2)
    np.testing.assert_array_equal(rows_from(2)(table), table[2:])
    fused = np.arange(24).reshape(2, 12)  # q | k | v along the columns
    for index in range(3):
        np.testing.assert_array_equal(fused_part(index, 3)(fused), fused[:, index * 4 : (index + 1) * 4])


def test_conv1d_naming_reads_kernels_as_stored_and_linear_naming_transposes():
    """GPT-2's `Conv1D` stores `(in, out)`, PyTorch's `Linear` `(out, in)`."""
    checkpoint = {"h.0.mlp.c_fc.weight": np.arange(6.0).reshape(2, 3), "h.0.mlp.c_fc.bias": np.zeros(3)}
    reader = open_checkpoint(checkpoint)
    conv1d = HF_CONV1D_NAMES.dense("h.0.mlp.c_fc")
    linear = HF_NAMES.dense("h.0.mlp.c_fc")
    np.testing.assert_array_equal(conv1d["kernel"].value(reader), checkpoint["h.0.mlp.c_fc.weight"])
    np.testing.assert_array_equal(linear["kernel"].value(reader), checkpoint["h.0.mlp.c_fc.weight"].T)
    assert conv1d["bias"].key_list == ("h.0.mlp.c_fc.bias",)
