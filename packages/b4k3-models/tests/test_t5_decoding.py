"""T5's decoding protocol: the cache built from the encoder's tokens gives the full pass's logits,
prefilled then token by token (one index for the batch or one per row), with padded encoder rows;
the cross-attention keys and values are computed once, in `build_cache`, never at a step; the
cache grows its self-attention part only; bert4keras3's cross-attention relative bias decodes too.
Reference: the same b4k3 model's full pass (itself matched against Hugging Face in
test_t5_matches_hf.py), within 1e-5 relative / 1e-4 absolute."""

import keras
import numpy as np
import pytest
from family_checks import assert_matches, decode_in_steps, predict
from t5_checks import decoder_batch, encoder_batch, t5_saver

from b4k3_models import build_transformer_model
from b4k3_models.t5 import CROSS_ATTENTION
from b4k3_models.transformer import block_layer_name


@pytest.fixture(scope="module")
def save(tmp_path_factory):
    return t5_saver(tmp_path_factory)


def load(save, name):
    directory, _ = save(name)
    return build_transformer_model(checkpoint_path=directory, return_keras_model=False, with_lm="linear")


@pytest.fixture(scope="module")
def t5(save):
    return load(save, "mt5")


def per_row(position):
    return np.full(len(encoder_batch()[0]), position, dtype="int32")


@pytest.mark.parametrize("as_index", [np.int32, per_row], ids=["one index", "index per row"])
@pytest.mark.parametrize("name", ["mt5", "umt5"])
def test_cached_decoder_equals_the_full_pass(save, name, as_index):
    t5 = load(save, name)
    encoder_ids, _ = encoder_batch()
    decoder_ids = decoder_batch()
    expected = predict(t5.model, [encoder_ids, decoder_ids])
    cache = t5.build_cache(len(encoder_ids), decoder_ids.shape[1] + 3, encoder_ids)
    assert_matches(decode_in_steps(t5.call_with_cache, cache, decoder_ids, 2, as_index), expected)


def test_cross_attention_keys_and_values_are_computed_once(t5, monkeypatch):
    """Counts the calls of every cross-attention's key and value projections: one each when the
    cache is built, none at the steps."""
    calls = []
    for index in range(t5.decoder_transformer.num_hidden_layers):
        layer = t5.layers[f"Decoder-{block_layer_name(index, CROSS_ATTENTION)}"]
        for dense in (layer.k_dense, layer.v_dense):
            monkeypatch.setattr(dense, "call", lambda x, call=dense.call: calls.append(1) or call(x))
    encoder_ids, _ = encoder_batch()
    decoder_ids = decoder_batch()
    cache = t5.build_cache(len(encoder_ids), decoder_ids.shape[1], encoder_ids)
    assert len(calls) == 2 * t5.decoder_transformer.num_hidden_layers
    decode_in_steps(t5.call_with_cache, cache, decoder_ids, 1)
    assert len(calls) == 2 * t5.decoder_transformer.num_hidden_layers


def test_the_cache_holds_the_context_once_and_grows_its_self_attention(t5):
    encoder_ids, _ = encoder_batch()
    cache = t5.build_cache(len(encoder_ids), 4, encoder_ids)
    grown = t5.resize_cache(cache, 9)
    for (self_kv, cross_kv, _), (grown_self, grown_cross, grown_mask) in zip(cache, grown, strict=True):
        assert tuple(self_kv.shape) == (3, 2, 4, 4, 8)
        assert tuple(grown_self.shape) == (3, 2, 9, 4, 8)
        assert tuple(grown_cross.shape) == tuple(cross_kv.shape) == (3, 2, encoder_ids.shape[1], 4, 8)
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(grown_mask), encoder_ids != 0)


def test_cross_position_bias_decodes_like_its_full_pass():
    """bert4keras3's default `cross_position_bias=True` (a relative bias in cross-attention too)."""
    t5 = build_transformer_model(
        model="t5.1.1",
        vocab_size=64,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=40,
        with_lm="linear",
        return_keras_model=False,
    )
    assert t5.decoder_transformer.cross_position_bias
    rng = np.random.default_rng(0)  # weights as large as the parity tests', so the biases count
    for variable in t5.model.weights:
        variable.assign(rng.normal(0, 0.2, variable.shape) + (len(variable.shape) == 1))
    encoder_ids, _ = encoder_batch()
    decoder_ids = decoder_batch()
    expected = predict(t5.model, [encoder_ids, decoder_ids])
    cache = t5.build_cache(len(encoder_ids), decoder_ids.shape[1], encoder_ids)
    assert_matches(decode_in_steps(t5.call_with_cache, cache, decoder_ids, 2), expected)
