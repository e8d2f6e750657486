"""Out-of-range token, segment and position ids, and sequences longer than a learned position
table, are refused before Keras runs the model, with a ValueError naming the input, the id and
the valid range; the model still works afterwards (on JAX a failed call used to break every
later one). A reloaded `.keras` model checks the same."""

import json

import keras
import numpy as np
import pytest
from family_checks import TINY_BERT, TINY_LLAMA

from b4k3_models import build_transformer_model

TOKENS = np.array([[2, 5, 7, 9], [3, 4, 0, 0]])


@pytest.fixture(scope="module")
def bert(tmp_path_factory):
    config_path = tmp_path_factory.mktemp("bert") / "config.json"
    config_path.write_text(json.dumps(TINY_BERT))
    return build_transformer_model(config_path=config_path)


def with_token(token_ids, value):
    token_ids = token_ids.copy()
    token_ids[1, 1] = value
    return token_ids


@pytest.mark.parametrize("bad_id", [TINY_BERT["vocab_size"], 10_000, -1])
@pytest.mark.parametrize("call", ["predict", "__call__", "predict_on_batch"])
def test_a_token_id_outside_the_vocabulary_is_refused_naming_it(bert, bad_id, call):
    inputs = [with_token(TOKENS, bad_id), np.zeros_like(TOKENS)]
    with pytest.raises(ValueError, match=rf"Input-Token: id {bad_id} is outside 0\.\.98 .*Embedding-Token"):
        getattr(bert, call)(inputs)


def test_a_segment_id_outside_the_segment_vocabulary_is_refused_naming_it(bert):
    with pytest.raises(ValueError, match=r"Input-Segment: id 2 is outside 0\.\.1 .*Embedding-Segment"):
        bert.predict([TOKENS, with_token(np.zeros_like(TOKENS), 2)], verbose=0)
    with pytest.raises(ValueError, match=r"Input-Segment: id -3 is outside 0\.\.1"):
        bert({"Input-Token": TOKENS, "Input-Segment": with_token(np.zeros_like(TOKENS), -3)})


def test_fit_and_evaluate_refuse_bad_ids_too(bert):
    inputs = [with_token(TOKENS, 500), np.zeros_like(TOKENS)]
    targets = np.zeros((2, 4, TINY_BERT["hidden_size"]))
    bert.compile(loss="mse")
    for method in ("fit", "evaluate", "train_on_batch", "test_on_batch"):
        with pytest.raises(ValueError, match="Input-Token: id 500"):
            getattr(bert, method)(inputs, targets, **({"verbose": 0} if method in ("fit", "evaluate") else {}))


def test_a_sequence_longer_than_the_positions_is_refused_and_the_model_still_works(bert):
    too_long = np.ones((1, TINY_BERT["max_position_embeddings"] + 1), dtype="int32")
    with pytest.raises(ValueError, match=r"Input-Token: sequences of 65 tokens are longer than the model's 64 "):
        bert.predict([too_long, np.zeros_like(too_long)], verbose=0)
    expected = keras.ops.convert_to_numpy(bert([TOKENS, np.zeros_like(TOKENS)]))
    np.testing.assert_allclose(bert.predict([TOKENS, np.zeros_like(TOKENS)], verbose=0), expected, atol=1e-5)


def test_good_ids_and_backend_tensors_pass(bert):
    tokens = np.array([[0, TINY_BERT["vocab_size"] - 1]])
    assert bert.predict([tokens, np.ones_like(tokens)], verbose=0).shape == (1, 2, TINY_BERT["hidden_size"])
    tensor = keras.ops.convert_to_tensor(tokens)
    assert tuple(bert([tensor, keras.ops.zeros_like(tensor)]).shape) == (1, 2, TINY_BERT["hidden_size"])


def test_a_reloaded_model_checks_its_inputs(bert, tmp_path):
    bert.save(tmp_path / "bert.keras")
    reloaded = keras.saving.load_model(tmp_path / "bert.keras", compile=False)  # other tests compiled it
    with pytest.raises(ValueError, match=r"Input-Token: id 99 is outside 0\.\.98"):
        reloaded.predict([with_token(TOKENS, 99), np.zeros_like(TOKENS)], verbose=0)


def test_a_decoder_refuses_token_ids_outside_its_vocabulary(tmp_path):
    config_path = tmp_path / "config.json"
    config_path.write_text(json.dumps({**TINY_LLAMA, "model_type": "llama"}))
    llama = build_transformer_model(config_path=config_path)
    with pytest.raises(ValueError, match=r"Input-Token: id 64 is outside 0\.\.63"):
        llama.predict(with_token(TOKENS, 64), verbose=0)
    with pytest.raises(ValueError, match=r"Input-Token: id -2 is outside 0\.\.63"):
        llama(with_token(TOKENS, -2).tolist())
    assert llama.predict(np.ones((1, 200), "int32"), verbose=0).shape == (1, 200, 64)  # rotary: any length


def test_after_a_failure_inside_predict_or_fit_the_model_still_works(bert):
    """A too-long backend tensor passes the NumPy checks and fails inside Keras' predict or fit; on
    JAX the variables used to stay taken out of the model and every later call failed, on
    TensorFlow the next fit."""
    too_long = keras.ops.ones((1, TINY_BERT["max_position_embeddings"] + 16), dtype="int32")
    with pytest.raises(ValueError, match=r"longer than the (model.s )?64 positions"):
        bert.predict([too_long, keras.ops.zeros_like(too_long)], verbose=0)
    inputs = [TOKENS, np.zeros_like(TOKENS)]
    expected = keras.ops.convert_to_numpy(bert(inputs))
    np.testing.assert_allclose(bert.predict(inputs, verbose=0), expected, atol=1e-5)
    bert.compile(loss="mse")
    targets = np.zeros((2, 4, TINY_BERT["hidden_size"]))
    with pytest.raises(ValueError, match=r"longer than the (model.s )?64 positions"):
        bert.fit([too_long, keras.ops.zeros_like(too_long)], np.zeros((1, 80, 32)), verbose=0)
    bert.fit(inputs, targets, verbose=0)
    assert np.isfinite(bert.predict(inputs, verbose=0)).all()
