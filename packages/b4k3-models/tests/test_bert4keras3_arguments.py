"""Arguments bert4keras3 accepted keep their meaning: `initial` (nothing left to do: the layers are
built with the model), `flatten_o_dense` (two ways to merge heads, one result), a decoder's
`rope_mode='su'` (interleaved rotary pairs), `build(attention_caches=...)` (keys and values led by
given sequences). An argument no b4k3 model takes is left out with a warning naming it; one that
another family takes stays an error. bert4keras3's activation names ('gelu_tanh', 'gelu_erf') work
in a config without registering them with Keras.

References: a Hugging Face Llama (rope_mode), the same BERT run on the whole sequence
(attention_caches), the layer with the other setting (flatten_o_dense); float32, within 1e-5."""

import json

import keras
import numpy as np
import pytest
from family_checks import TINY_BERT_ARGUMENTS, assert_matches, hf_logits, predict, ragged_batch

from b4k3_layers import FeedForward, MultiHeadAttention
from b4k3_models import build_transformer_model
from b4k3_ops.activations import gelu_erf, gelu_tanh

ATTENTION_0 = "Transformer-0-MultiHeadSelfAttention"
GEMMA_SIZES = {"vocab_size": 64, "hidden_size": 32, "num_hidden_layers": 1, "intermediate_size": 40}


def tiny_bert(**options):
    return build_transformer_model(model="bert", **{**TINY_BERT_ARGUMENTS, **options}, return_keras_model=False)


def test_initial_is_accepted_with_either_value_and_must_be_a_bool():
    for initial in (True, False):
        transformer = build_transformer_model(
            model="gemma", **GEMMA_SIZES, num_attention_heads=2, initial=initial, return_keras_model=False
        )
        assert transformer.build_cache_model([8], end_token=1, initial=initial) is not None
    with pytest.raises(TypeError, match=r"`initial` must be True or False, got 'yes'"):
        tiny_bert(initial="yes")
    with pytest.raises(TypeError, match=r"build_cache_model: `initial` must be True or False, got 1"):
        transformer.build_cache_model([8], end_token=1, initial=1)


def test_an_argument_no_model_takes_is_left_out_with_a_warning_naming_it():
    with pytest.warns(UserWarning, match=r"ignores keras_weights='w\.weights\.h5'.*did you mean 'keras_weights_path'"):
        model = build_transformer_model(model="bert", **TINY_BERT_ARGUMENTS, keras_weights="w.weights.h5")
    assert model.get_layer(ATTENTION_0) is not None


def test_an_argument_another_family_takes_is_still_an_error():
    with pytest.raises(TypeError, match=r"\['max_relative_position'\] that Gemma does not take"):
        build_transformer_model(model="gemma", **GEMMA_SIZES, num_attention_heads=2, max_relative_position=64)


# BERT's arguments as bert4keras3's configs and code give them to its Gemma (inherited through RoFormer).
BERT_OPTIONS_ASKING_NOTHING = {
    "max_position": 8192,
    "segment_vocab_size": 0,
    "with_pool": False,
    "with_nsp": False,
    "with_mlm": False,
    "hierarchical_position": None,
    "custom_position_ids": False,
    "shared_segment_embeddings": False,
}


@pytest.mark.parametrize("model", ["gemma", "llama", "gemma2"])
def test_bert_options_that_ask_for_nothing_are_accepted_by_the_decoders(model):
    plain = build_transformer_model(model=model, **GEMMA_SIZES, num_attention_heads=2)
    ported = build_transformer_model(model=model, **GEMMA_SIZES, num_attention_heads=2, **BERT_OPTIONS_ASKING_NOTHING)
    assert [w.shape for w in ported.weights] == [w.shape for w in plain.weights]
    assert len(ported.inputs) == len(plain.inputs) == 1


@pytest.mark.parametrize(
    "option",
    [{"segment_vocab_size": 2}, {"with_pool": True}, {"with_mlm": "linear"}, {"custom_position_ids": True}],
)
def test_bert_options_a_decoder_cannot_honour_are_refused_by_name(option):
    (name,) = option
    with pytest.raises(TypeError, match=rf"Gemma is a decoder .* cannot honour \{{'{name}'"):
        build_transformer_model(model="gemma", **GEMMA_SIZES, num_attention_heads=2, **option)


def test_flatten_o_dense_is_kept_in_the_config_and_changes_nothing():
    x = np.random.default_rng(0).normal(size=(2, 5, 16)).astype("float32")
    flat = MultiHeadAttention(4, 4, flatten_o_dense=True)
    reshaped = MultiHeadAttention.from_config(MultiHeadAttention(4, 4, flatten_o_dense=False).get_config())
    assert reshaped.get_config()["flatten_o_dense"] is False
    expected = keras.ops.convert_to_numpy(flat(x))
    reshaped(x)
    reshaped.set_weights(flat.get_weights())
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(reshaped(x)), expected)

    gemma = build_transformer_model(model="gemma", **GEMMA_SIZES, num_attention_heads=2, flatten_o_dense=True)
    assert gemma.get_layer(ATTENTION_0).get_config()["flatten_o_dense"] is True


def interleaved_heads(kernel, head_size):
    """A q/k kernel `(hidden, heads * head_size)` with each head's columns reordered from the
    half-split rotary layout (pair i = columns i, i + head_size/2) to the interleaved one (2i, 2i+1)."""
    hidden = kernel.shape[0]
    heads = kernel.reshape(hidden, -1, 2, head_size // 2)
    return np.swapaxes(heads, 2, 3).reshape(hidden, -1)


def test_a_decoder_with_rope_mode_su_rotates_interleaved_pairs(saved):
    """A Llama built with rope_mode='su' from the Hugging Face weights with each head's q/k columns
    interleaved gives Hugging Face's logits: the rotation pairs columns (2i, 2i+1) at the
    frequencies 'keras' gives pairs (i, i + d/2)."""
    directory, reference = saved("llama_tied")
    keras_rope = build_transformer_model(checkpoint_path=directory, with_lm="linear", return_keras_model=False)
    su_rope = build_transformer_model(
        config_path=directory / "config.json", with_lm="linear", rope_mode="su", return_keras_model=False
    )
    su_rope.model.set_weights(keras_rope.model.get_weights())
    ids, mask = ragged_batch(64)
    expected = hf_logits(reference, ids, mask)
    assert not np.allclose(predict(su_rope.model, ids)[mask], expected[mask], atol=1e-3)  # other pairs
    for index in range(keras_rope.num_hidden_layers):
        layer = su_rope.model.get_layer(f"Transformer-{index}-MultiHeadSelfAttention")
        for dense in (layer.q_dense, layer.k_dense):
            kernel = keras.ops.convert_to_numpy(dense.kernel)
            dense.kernel.assign(interleaved_heads(kernel, keras_rope.attention_key_size))
    assert_matches(predict(su_rope.model, ids), expected, mask, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match=r"rope_mode must be one of \('su', 'keras'\), got 'yarn'"):
        build_transformer_model(model="llama", **GEMMA_SIZES, num_attention_heads=2, rope_mode="yarn")


def test_attention_caches_lead_the_keys_and_values_with_the_given_sequences():
    """A BERT whose first attention's keys and values start with the embeddings of a prefix gives,
    at the other tokens, what the whole sequence gives there (positions given as custom ids, the
    last token of one row padding)."""
    rng = np.random.default_rng(0)
    prefix_length, length = 3, 4
    tokens = rng.integers(1, 99, size=(2, prefix_length + length)).astype("int32")
    tokens[1, -1] = 0
    segments = np.zeros_like(tokens)
    positions = np.tile(np.arange(prefix_length + length, dtype="int32"), (2, 1))
    whole = tiny_bert(custom_position_ids=True, num_hidden_layers=1)
    whole_inputs = [tokens, segments, positions]
    embeddings = keras.Model(whole.model.inputs, whole.model.get_layer("Embedding-Norm").output)
    prefix = predict(embeddings, whole_inputs)[:, :prefix_length]

    cached = keras.Input((None, TINY_BERT_ARGUMENTS["hidden_size"]), name="Input-Cache")
    with_cache = tiny_bert(
        custom_position_ids=True,
        num_hidden_layers=1,
        attention_caches={ATTENTION_0: [cached, cached]},
        additional_input_layers=cached,
    )
    with_cache.model.set_weights(whole.model.get_weights())
    rest = [array[:, prefix_length:] for array in whole_inputs]
    actual = predict(with_cache.model, [*rest, prefix])
    assert_matches(actual, predict(whole.model, whole_inputs)[:, prefix_length:], rtol=1e-5, atol=1e-5)
    assert with_cache.model.get_layer(f"{ATTENTION_0}-Cached-Key") is not None


def test_attention_caches_are_refused_where_they_cannot_apply():
    cached = keras.Input((None, TINY_BERT_ARGUMENTS["hidden_size"]), name="Input-Cache")
    caches = {"Transformer-0-MultiHeadSelfAttention": [cached, cached]}
    with pytest.raises(ValueError, match=r"attention_caches names \['Transformer-9-Attention'\]"):
        tiny_bert(attention_caches={"Transformer-9-Attention": [cached, cached]}, additional_input_layers=cached)
    with pytest.raises(ValueError, match=r"takes its own \['attention_bias'\]"):
        tiny_bert(application="lm", attention_caches=caches, additional_input_layers=cached)
    with pytest.raises(TypeError, match=r"RoFormer does not implement \['attention_caches'\]"):
        build_transformer_model(model="roformer", **TINY_BERT_ARGUMENTS, attention_caches=caches)


@pytest.mark.parametrize(("name", "function"), [("gelu_tanh", gelu_tanh), ("gelu_erf", gelu_erf)])
def test_bert4keras3_activation_names_work_in_a_config_without_registering(tmp_path, name, function):
    config = {**TINY_BERT_ARGUMENTS, "hidden_act": name, "type_vocab_size": 2}
    (tmp_path / "config.json").write_text(json.dumps(config), encoding="utf-8")
    with pytest.raises(ValueError, match=name):
        keras.activations.get(name)  # Keras itself does not know the name
    model = build_transformer_model(config_path=tmp_path / "config.json")
    feed_forward = model.get_layer("Transformer-0-FeedForward")
    assert feed_forward.activation == [function]
    assert FeedForward.from_config(feed_forward.get_config()).activation == [function]
