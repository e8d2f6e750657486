"""`application='lm'` (causal) and `'unilm'` (UniLM's seq2seq mask) on BERT, and the
`extend_with_*` functions behind them.

Which position sees which is checked by behaviour: change one token and see which outputs move
(more than 1e-5) and which do not (less than 1e-6); and against the mask itself, the output of
the `Attention-Mask` layer. Weights: the `bert_pretraining` checkpoint."""

import keras
import numpy as np
import pytest
from family_checks import TINY_BERT, TINY_BERT_ARGUMENTS, predict

from b4k3_models import (
    BERT,
    LM_Mask,
    UniLM_Mask,
    build_transformer_model,
    extend_with_language_model,
    extend_with_unified_language_model,
)

TINY = TINY_BERT_ARGUMENTS
TOKENS = np.array([[11, 12, 13, 14, 15, 16]], "int32")
SEQ2SEQ_SEGMENTS = np.array([[0, 0, 0, 1, 1, 1]], "int32")
CAUSAL = np.tril(np.ones((6, 6), bool))
# Who sees whom with SEQ2SEQ_SEGMENTS: the source (0-2) itself both ways, the target (3-5) the
# source and itself causally.
SEQ2SEQ_VISIBLE = np.array(
    [
        [1, 1, 1, 0, 0, 0],
        [1, 1, 1, 0, 0, 0],
        [1, 1, 1, 0, 0, 0],
        [1, 1, 1, 1, 0, 0],
        [1, 1, 1, 1, 1, 0],
        [1, 1, 1, 1, 1, 1],
    ],
    bool,
)


def softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def variants(tokens):
    """`tokens` (one row of length L), then L copies each with one token changed: (L + 1, L)."""
    length = tokens.shape[1]
    rows = np.repeat(tokens, length + 1, axis=0)
    for j in range(length):
        rows[j + 1, j] = 3 + (tokens[0, j] + 7) % (TINY_BERT["vocab_size"] - 3)
    return rows


def sees(model, tokens, segments):
    """`seen[i, j]`: whether the output at position i changes when token j changes (one row)."""
    rows = variants(tokens)
    outputs = predict(model, [rows, np.repeat(segments, len(rows), axis=0)])
    change = np.abs(outputs[1:] - outputs[:1]).max(axis=-1)  # change[j, i]
    assert ((change < 1e-6) | (change > 1e-5)).all(), "an output moved by a hair: masking leaks"
    return (change > 1e-5).T


def mask_of(model, tokens, segments):
    mask_model = keras.Model(model.inputs, model.get_layer("Attention-Mask").output)
    return predict(mask_model, [tokens, segments]).astype(bool)


@pytest.fixture(scope="module")
def directory(bert_pretraining):
    return bert_pretraining[0]


@pytest.fixture(scope="module")
def unilm(directory):
    return build_transformer_model(checkpoint_path=directory, application="unilm", with_mlm="linear")


def test_lm_outputs_never_see_later_tokens(directory):
    model = build_transformer_model(checkpoint_path=directory, application="lm", with_mlm="linear")
    np.testing.assert_array_equal(sees(model, TOKENS, np.zeros_like(TOKENS)), CAUSAL)
    np.testing.assert_array_equal(mask_of(model, TOKENS, np.zeros_like(TOKENS)), CAUSAL)


def test_encoder_outputs_see_every_token(directory):
    model = build_transformer_model(checkpoint_path=directory, with_mlm="linear")
    assert sees(model, TOKENS, np.zeros_like(TOKENS)).all()


def test_unilm_source_sees_the_source_and_target_sees_source_and_earlier_target(unilm):
    np.testing.assert_array_equal(sees(unilm, TOKENS, SEQ2SEQ_SEGMENTS), SEQ2SEQ_VISIBLE)


def test_unilm_attention_mask_compares_running_segment_counts(unilm):
    segments = np.array([[0, 0, 0, 1, 1, 1], [0, 0, 1, 1, 0, 1]], "int32")
    counts = np.cumsum(segments, axis=1)
    expected = counts[:, None, :] <= counts[:, :, None]
    np.testing.assert_array_equal(mask_of(unilm, np.repeat(TOKENS, 2, axis=0), segments), expected)
    assert expected[0, 3, :4].all()
    assert not expected[0, 3, 4:].any()


def test_unilm_with_segment_attention_compares_segment_ids(directory):
    model = build_transformer_model(
        checkpoint_path=directory, application="unilm", segment_attention=True, with_mlm="linear"
    )
    segments = np.array([[0, 0, 0, 1, 1, 1], [0, 0, 1, 1, 0, 1]], "int32")
    expected = segments[:, None, :] <= segments[:, :, None]
    np.testing.assert_array_equal(mask_of(model, np.repeat(TOKENS, 2, axis=0), segments), expected)
    # Every target token sees the whole target; the source still does not see it.
    np.testing.assert_array_equal(sees(model, TOKENS, SEQ2SEQ_SEGMENTS), expected[0])


def test_lm_head_gives_vocabulary_probabilities_by_default(directory):
    inputs = [variants(TOKENS), np.zeros((7, 6), "int32")]
    probabilities = predict(build_transformer_model(checkpoint_path=directory, application="lm"), inputs)
    logits = predict(build_transformer_model(checkpoint_path=directory, application="lm", with_mlm="linear"), inputs)
    assert probabilities.shape == (7, 6, TINY_BERT["vocab_size"])
    np.testing.assert_allclose(probabilities.sum(axis=-1), 1, rtol=0, atol=1e-6)
    np.testing.assert_allclose(probabilities, softmax(logits), rtol=0, atol=1e-6)


@pytest.mark.parametrize(
    ("extend", "mask", "name"),
    [
        (extend_with_language_model, LM_Mask, "LanguageModelBERT"),
        (extend_with_unified_language_model, UniLM_Mask, "UnifiedLanguageModelBERT"),
    ],
    ids=["lm", "unilm"],
)
def test_extended_classes_turn_the_mlm_head_on_unless_given(extend, mask, name):
    model_class = extend(BERT)
    assert model_class.__name__ == name
    assert issubclass(model_class, BERT)
    assert issubclass(model_class, mask)
    assert model_class(**TINY).with_mlm is True
    assert model_class(**TINY, with_mlm="linear").with_mlm == "linear"
    assert BERT(**TINY).with_mlm is False


def test_extended_class_built_by_hand_equals_the_lm_application(directory):
    transformer = extend_with_language_model(BERT)(**TINY, with_mlm="linear")
    transformer.build()
    transformer.load_weights_from_checkpoint(directory)
    model = build_transformer_model(checkpoint_path=directory, application="lm", with_mlm="linear")
    inputs = [variants(TOKENS), np.zeros((7, 6), "int32")]
    np.testing.assert_allclose(predict(transformer.model, inputs), predict(model, inputs), rtol=0, atol=1e-6)


@pytest.mark.parametrize("application", ["lm", "unilm"])
def test_pad_tokens_stay_masked(directory, application):
    """A pad inside the sequence (position 2) is hidden from every real token: moving its position
    id changes no real token's output, while moving a real token's changes those that see it."""
    model = build_transformer_model(
        checkpoint_path=directory, application=application, custom_position_ids=True, with_mlm="linear"
    )
    tokens = np.array([[11, 12, 0, 14, 15, 16]], "int32")
    positions = np.repeat(np.arange(6, dtype="int32")[None], 7, axis=0)
    for j in range(6):
        positions[j + 1, j] = 40
    outputs = predict(model, [np.repeat(tokens, 7, axis=0), np.repeat(SEQ2SEQ_SEGMENTS, 7, axis=0), positions])
    change = np.abs(outputs[1:] - outputs[:1]).max(axis=-1).T  # change[i, j]: at i when j moves
    real = tokens[0] != 0
    visible = CAUSAL if application == "lm" else SEQ2SEQ_VISIBLE
    np.testing.assert_array_equal((change > 1e-5)[real], (visible & real[None, :])[real])
    assert (change[real][:, ~real] < 1e-6).all()


def test_unilm_needs_segment_ids():
    with pytest.raises(ValueError, match="segment"):
        build_transformer_model(**TINY, application="unilm", segment_vocab_size=0)


def test_unilm_never_takes_position_ids_for_segment_ids():
    """Without a segment input, the second input is the position ids: not a UniLM mask source."""
    with pytest.raises(ValueError, match="segment"):
        build_transformer_model(**TINY, application="unilm", segment_vocab_size=0, custom_position_ids=True)
