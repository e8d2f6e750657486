"""Configs and checkpoints the decoder-only families cannot honour are refused with errors that
name what is wrong: head counts that do not divide, a checkpoint whose projections do not fit
the heads, two spellings of one setting that disagree, Hugging Face features b4k3 does not
implement (yarn or dynamic rope scaling, Qwen2's sliding window, Gemma2 layer patterns other than
sliding on the even layers), checkpoints in TF names, an untied
output matrix a tied model would drop, and UniLM on a decoder. Either spelling of a setting
(bert4keras3's or the plain one) is accepted and overrides the config and the family's default;
`application='lm'` on a decoder, already causal, changes nothing.

Reference for the tied model: the Hugging Face model that saved it, within 1e-5 / 1e-4."""

import json

import numpy as np
import pytest
from family_checks import TINY_LLAMA, TINY_MODELS, assert_matches, hf_logits, predict, ragged_batch
from safetensors.numpy import load_file

from b4k3_models import CheckpointMismatchError, Gemma, Llama, build_transformer_model

# A Llama's sizes as b4k3 arguments, for models built without a config.
SIZES = {"vocab_size": 64, "hidden_size": 32, "num_hidden_layers": 1, "intermediate_size": 40}


@pytest.fixture
def llama_gqa(saved):
    """A Llama with 4 query heads and 2 key/value heads, untied: (directory, Hugging Face model)."""
    return saved("llama_gqa")


@pytest.fixture
def llama_tied(saved):
    return saved("llama_tied")


def hf_config(name, **changes):
    """The Hugging Face config dict of the tiny family `name`, with `changes`."""
    _, config_class, config = TINY_MODELS[name]
    return {**config_class(**config).to_dict(), **changes}


def write_config(directory, config):
    path = directory / "config.json"
    path.write_text(json.dumps(config))
    return path


def test_query_heads_not_a_multiple_of_key_value_heads_name_the_keys(tmp_path):
    config = hf_config("llama_gqa", hidden_size=48, head_dim=8, num_attention_heads=6, num_key_value_heads=4)
    with pytest.raises(ValueError, match=r"num_attention_heads = 6.*num_key_value_heads = 4") as error:
        build_transformer_model(config_path=write_config(tmp_path, config), with_lm="linear")
    assert "multiple" in str(error.value)

    with pytest.raises(ValueError, match="num_key_value_heads"):
        Llama(**SIZES, num_query_heads=6, num_key_value_heads=4)


def test_checkpoint_with_other_key_value_heads_names_the_keys_and_shapes(llama_gqa):
    directory, _ = llama_gqa
    with pytest.raises(CheckpointMismatchError) as error:
        build_transformer_model(checkpoint_path=directory, with_lm="linear", num_attention_heads=4)
    message = str(error.value)
    for projection in ("k_proj", "v_proj"):
        assert f"model.layers.0.self_attn.{projection}.weight (16, 32)" in message
    assert "(32, 32)" in message  # the model's key kernel with 4 key/value heads
    assert "q_proj" not in message
    assert len(error.value.mismatched) == 2 * TINY_LLAMA["num_hidden_layers"]


@pytest.mark.parametrize(
    ("arguments", "named"),
    [
        ({"num_attention_heads": 2, "num_key_value_heads": 4}, r"num_attention_heads=2.*num_key_value_heads=4"),
        ({"num_attention_heads": 2, "query_head": 4, "num_query_heads": 8}, r"query_head=4.*num_query_heads=8"),
        (
            {"num_attention_heads": 2, "share_emebding": True, "share_embedding": False},
            r"share_emebding=True.*share_embedding=False",
        ),
    ],
)
def test_two_spellings_that_disagree_are_refused_naming_both(arguments, named):
    with pytest.raises(ValueError, match=named):
        Llama(**SIZES, **arguments)


def test_conflicting_head_spellings_are_refused_through_build_transformer_model(llama_gqa):
    directory, _ = llama_gqa
    with pytest.raises(ValueError, match=r"num_attention_heads=2.*num_key_value_heads=4"):
        build_transformer_model(checkpoint_path=directory, num_attention_heads=2, num_key_value_heads=4)


@pytest.mark.parametrize("spelling", ["share_emebding", "share_embedding"])
def test_either_spelling_ties_the_output_to_the_embeddings(llama_tied, spelling):
    directory, reference = llama_tied
    ids, mask = ragged_batch(TINY_LLAMA["vocab_size"])
    transformer = build_transformer_model(
        checkpoint_path=directory, with_lm="linear", return_keras_model=False, **{spelling: True}
    )
    assert transformer.share_embedding
    assert transformer.share_emebding
    assert "Decoder-Output-LM" not in transformer.layers
    assert_matches(predict(transformer.model, ids), hf_logits(reference, ids, mask), mask)

    untied = Llama(**SIZES, num_attention_heads=2, **{spelling: False})
    assert not untied.share_embedding
    assert not untied.share_emebding


@pytest.mark.parametrize("spelling", ["share_emebding", "share_embedding"])
@pytest.mark.parametrize(("family", "tied"), [(Llama, True), (Gemma, False)])
def test_either_spelling_overrides_the_family_default(family, tied, spelling):
    """Llama is untied and Gemma tied by default; either spelling turns that around."""
    transformer = family(**SIZES, num_attention_heads=2, **{spelling: tied})
    assert transformer.share_embedding is tied


@pytest.mark.parametrize(
    ("spelling", "value"),
    [
        ("share_embedding", True),
        ("share_emebding", True),
        ("num_key_value_heads", 4),
        ("num_attention_heads", 4),
        ("num_query_heads", 8),
        ("query_head", 8),
    ],
)
def test_either_spelling_overrides_the_hf_config(llama_gqa, spelling, value):
    """The config of `llama_gqa` is untied with 2 key/value heads and 4 query heads; a keyword
    argument in either spelling wins over it, as every other keyword does."""
    directory, _ = llama_gqa
    transformer = build_transformer_model(
        config_path=directory / "config.json", with_lm="linear", return_keras_model=False, **{spelling: value}
    )
    read_back = {
        "share_embedding": transformer.share_embedding,
        "share_emebding": transformer.share_embedding,
        "num_key_value_heads": transformer.num_attention_heads,
        "num_attention_heads": transformer.num_attention_heads,
        "num_query_heads": transformer.query_head,
        "query_head": transformer.query_head,
    }
    assert read_back[spelling] == value


@pytest.mark.parametrize(
    ("rope_key", "rope", "named"),
    [
        ("rope_parameters", {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 8}, "yarn"),
        ("rope_parameters", {"rope_type": "longrope", "factor": 4.0}, "longrope"),
        ("rope_scaling", {"type": "dynamic", "factor": 2.0}, "dynamic"),  # the older key and spelling
    ],
)
def test_unsupported_rope_scaling_is_refused_naming_it(tmp_path, rope_key, rope, named):
    config = hf_config("llama_gqa")
    config.pop("rope_parameters")
    config.update({rope_key: {**rope, "rope_theta": 10_000.0}})
    with pytest.raises(ValueError, match=named):
        build_transformer_model(config_path=write_config(tmp_path, config), with_lm="linear")


def test_qwen2_sliding_window_is_refused(tmp_path):
    config = hf_config("qwen2", use_sliding_window=True, sliding_window=4, max_window_layers=1)
    with pytest.raises(ValueError, match="use_sliding_window=True"):
        build_transformer_model(config_path=write_config(tmp_path, config), with_lm="linear")


def test_gemma2_sliding_on_odd_layers_is_refused(tmp_path):
    config = hf_config("gemma2", layer_types=["full_attention", "sliding_attention"])
    with pytest.raises(ValueError, match="layer_types"):
        build_transformer_model(config_path=write_config(tmp_path, config), with_lm="linear")


def test_llama_checkpoint_as_a_dict_is_refused(llama_gqa):
    directory, _ = llama_gqa
    arrays = load_file(str(directory / "model.safetensors"))
    with pytest.raises(ValueError, match=r"Hugging Face directories.*<dict>"):
        build_transformer_model(config_path=directory / "config.json", checkpoint_path=arrays, with_lm="linear")


def test_llama_tf_checkpoint_is_refused(llama_gqa, tmp_path):
    import tensorflow as tf  # in every test environment: b4k3-models' [tf-checkpoint] extra

    directory, _ = llama_gqa
    arrays = load_file(str(directory / "model.safetensors"))
    names = sorted(arrays)
    prefix = str(tmp_path / "model.ckpt")
    tf.raw_ops.SaveV2(
        prefix=prefix,
        tensor_names=[name.replace(".", "/") for name in names],
        shape_and_slices=[""] * len(names),
        tensors=[tf.constant(np.asarray(arrays[name])) for name in names],
    )
    with pytest.raises(ValueError, match=r"Hugging Face directories.*model\.ckpt"):
        build_transformer_model(config_path=directory / "config.json", checkpoint_path=prefix, with_lm="linear")


def test_tying_an_untied_checkpoint_does_not_drop_its_output_matrix_silently(llama_gqa):
    """The untied checkpoint's `lm_head.weight` is not a copy of the embeddings: a model told to
    tie them cannot place it, and says so instead of loading without it."""
    directory, _ = llama_gqa
    with pytest.raises(CheckpointMismatchError, match=r"lm_head\.weight"):
        build_transformer_model(checkpoint_path=directory, with_lm="linear", share_emebding=True)


def test_lm_application_on_a_decoder_is_the_decoder_itself(llama_gqa):
    """The decoders are causal already: `application='lm'` changes nothing (rather than failing
    to merge the causal mask into a class that has it)."""
    directory, _ = llama_gqa
    ids, _ = ragged_batch(TINY_LLAMA["vocab_size"])
    expected = predict(build_transformer_model(checkpoint_path=directory, with_lm="linear"), ids)
    model = build_transformer_model(checkpoint_path=directory, with_lm="linear", application="lm")
    np.testing.assert_array_equal(predict(model, ids), expected)


def test_unilm_application_on_a_decoder_is_refused_naming_it(llama_gqa):
    directory, _ = llama_gqa
    with pytest.raises(ValueError, match=r"application=.unilm. needs an encoder with segment ids.*not Llama"):
        build_transformer_model(checkpoint_path=directory, with_lm="linear", application="unilm")
