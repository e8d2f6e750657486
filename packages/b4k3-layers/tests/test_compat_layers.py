"""bert4keras3's small layers: mask-aware global pooling, Concatenate1D, BatchSplit / BatchConcat
and the Loss layer, each against a NumPy reference of bert4keras3's semantics."""

import keras
import numpy as np
import pytest
from layer_checks import assert_close, run_layer_test, to_numpy

from b4k3_layers import BatchConcat, BatchSplit, Concatenate1D, GlobalAveragePooling1D, GlobalMaxPooling1D, Loss
from b4k3_ops import ops

RNG = np.random.default_rng(0)
X = RNG.normal(size=(3, 5, 4)).astype("float32")
TOKENS = np.array([[3, 4, 5, 0, 0], [6, 7, 8, 9, 1], [2, 0, 0, 0, 0]])
MASK = TOKENS > 0


def masked_features():
    """A functional model whose Embedding(mask_zero) gives the features X a padding mask."""
    tokens = keras.Input((5,), dtype="int32")
    embedded = keras.layers.Embedding(10, 4, mask_zero=True)(tokens)
    return tokens, embedded


def with_mask(layer):
    tokens, embedded = masked_features()
    model = keras.Model(tokens, layer(embedded))
    weights = model.layers[1].get_weights()[0]
    return to_numpy(model(TOKENS)), weights[TOKENS]


def test_global_average_pooling_averages_the_real_steps():
    pooled, features = with_mask(GlobalAveragePooling1D())
    assert_close(pooled, (features * MASK[..., None]).sum(1) / MASK.sum(1, keepdims=True))


def test_global_max_pooling_ignores_the_padding(tmp_path):
    pooled, features = with_mask(GlobalMaxPooling1D())
    assert_close(pooled, np.where(MASK[..., None], features, -np.inf).max(1))
    assert_close(run_layer_test(GlobalMaxPooling1D, X, tmp_path), X.max(1))
    first_channels = GlobalMaxPooling1D(data_format="channels_first", keepdims=True)
    assert_close(first_channels(X, mask=MASK[:, :4]), np.where(MASK[:, None, :4], X, -np.inf).max(2, keepdims=True))


def test_concatenate1d_joins_a_masked_and_an_unmasked_sequence(tmp_path):
    prefix = RNG.normal(size=(3, 2, 4)).astype("float32")
    assert_close(run_layer_test(Concatenate1D, [prefix, X], tmp_path), np.concatenate([prefix, X], 1))
    tokens, embedded = masked_features()
    unmasked = keras.Input((2, 4))
    joined = Concatenate1D()([unmasked, embedded])
    model = keras.Model([unmasked, tokens], GlobalAveragePooling1D()(joined))
    features = next(layer for layer in model.layers if isinstance(layer, keras.layers.Embedding)).get_weights()[0][
        TOKENS
    ]
    full_mask = np.concatenate([np.ones((3, 2), bool), MASK], 1)
    full = np.concatenate([prefix, features], 1)
    assert_close(model([prefix, TOKENS]), (full * full_mask[..., None]).sum(1) / full_mask.sum(1, keepdims=True))
    assert Concatenate1D().compute_mask([prefix, X], [None, None]) is None


@pytest.mark.parametrize(("parts", "sizes"), [(2, [4, 3]), (3, [3, 3, 1]), ([1, 2, 4], [1, 2, 4]), ([1, 1], [3, 4])])
def test_batch_split_cuts_the_batch_as_bert4keras3(parts, sizes, tmp_path):
    batch = RNG.normal(size=(7, 3)).astype("float32")
    pieces = run_layer_test(lambda: BatchSplit(parts), batch, tmp_path)
    assert [len(piece) for piece in pieces] == sizes
    assert_close(np.concatenate(pieces), batch)
    assert_close(BatchConcat()(pieces), batch)


def test_batch_split_of_several_tensors_and_masks():
    a, b = RNG.normal(size=(4, 2)), RNG.normal(size=(4, 3))
    pieces = BatchSplit(2)([a, b])
    assert [tuple(piece.shape) for piece in pieces] == [(2, 2), (2, 2), (2, 3), (2, 3)]
    masks = BatchSplit(2).compute_mask([a, b], [np.array([1, 0, 1, 1], bool), None])
    np.testing.assert_array_equal(to_numpy(masks[0]), [True, False])
    assert masks[2] is None
    assert masks[3] is None
    np.testing.assert_array_equal(
        to_numpy(BatchConcat().compute_mask(None, [np.array([True]), np.array([False])])), [True, False]
    )
    assert BatchConcat().compute_mask(None, [np.array([True]), None]) is None


class SegmentCrossEntropy(Loss):
    """bert4keras' UniLM loss: cross-entropy of each next token, where the segment is 1."""

    def compute_loss(self, inputs, mask=None):
        token_ids, segment_ids, probas = inputs
        y_true = token_ids[:, 1:]
        y_mask = ops.cast(segment_ids[:, 1:], probas.dtype)
        loss = keras.losses.sparse_categorical_crossentropy(y_true, probas[:, :-1])
        return ops.sum(loss * y_mask) / ops.sum(y_mask)


def test_loss_layer_adds_its_loss_and_passes_the_selected_input_through(tmp_path):
    token_ids, segment_ids = keras.Input((5,), dtype="int32"), keras.Input((5,), dtype="int32")
    probas = keras.layers.Dense(10, activation="softmax")(keras.layers.Embedding(10, 8)(token_ids))
    output = SegmentCrossEntropy(output_axis=2)([token_ids, segment_ids, probas])
    model = keras.Model([token_ids, segment_ids], output)
    model.compile(optimizer="adam")
    tokens = np.array([[2, 5, 6, 7, 3], [2, 8, 9, 3, 0]])
    segments = np.array([[0, 0, 1, 1, 1], [0, 1, 1, 1, 0]])
    predicted = to_numpy(model([tokens, segments]))
    picked = np.take_along_axis(predicted[:, :-1], tokens[:, 1:, None], -1)[..., 0]
    expected = (-np.log(picked) * segments[:, 1:]).sum() / segments[:, 1:].sum()
    np.testing.assert_allclose(model.evaluate([tokens, segments], verbose=0), expected, rtol=1e-5)
    before = model.evaluate([tokens, segments], verbose=0)
    model.fit([tokens, segments], epochs=5, verbose=0)
    assert model.evaluate([tokens, segments], verbose=0) < before

    model.save(tmp_path / "loss.keras")
    reloaded = keras.saving.load_model(
        tmp_path / "loss.keras", custom_objects={"SegmentCrossEntropy": SegmentCrossEntropy}
    )
    assert_close(reloaded([tokens, segments]), to_numpy(model([tokens, segments])))


def test_loss_output_axis_forms_and_the_unwritten_loss():
    class Zero(Loss):
        def compute_loss(self, inputs, mask=None):
            return 0.0

    a, b = np.ones((2, 3), "float32"), np.zeros((2, 3), "float32")
    assert_close(Zero()([a, b]), [a, b])
    assert_close(Zero(output_axis=[1, 0])([a, b]), [b, a])
    assert Zero(output_axis=0).compute_output_shape([(2, 3), (2, 4)]) == (2, 3)
    with pytest.raises(NotImplementedError, match="compute_loss"):
        Loss()(a)
