"""Multi-label cross-entropies against NumPy references of the formulas
log(1 + sum((1 - t) e^s)) + log(1 + sum(t e^-s)) (dense) and its sparse form."""

import numpy as np
import pytest
from keras import ops

from b4k3_ops.backend import (
    infinity,
    multilabel_categorical_crossentropy,
    sparse_multilabel_categorical_crossentropy,
)

RNG = np.random.default_rng(0)
LOGITS = RNG.normal(scale=3, size=(4, 7)).astype("float32")


def dense_reference(y_true, y_pred):
    kept = y_pred > -infinity() / 10
    neg = np.log1p(np.sum(np.where(kept, (1 - y_true) * np.exp(y_pred), 0), axis=-1))
    pos = np.log1p(np.sum(np.where(kept, y_true * np.exp(-y_pred), 0), axis=-1))
    return neg + pos


def test_dense_hard_labels():
    y_true = (RNG.random((4, 7)) < 0.3).astype("float32")
    out = ops.convert_to_numpy(multilabel_categorical_crossentropy(y_true, LOGITS))
    np.testing.assert_allclose(out, dense_reference(y_true, LOGITS), rtol=1e-5)


def test_dense_soft_labels():
    y_true = RNG.random((4, 7)).astype("float32")
    out = ops.convert_to_numpy(multilabel_categorical_crossentropy(y_true, LOGITS))
    np.testing.assert_allclose(out, dense_reference(y_true, LOGITS), rtol=1e-5)


def test_dense_ignores_logits_masked_to_minus_infinity():
    y_true = (RNG.random((4, 7)) < 0.3).astype("float32")
    masked = LOGITS.copy()
    masked[:, -2:] = -infinity()
    out = ops.convert_to_numpy(multilabel_categorical_crossentropy(y_true, masked))
    np.testing.assert_allclose(out, dense_reference(y_true[:, :-2], LOGITS[:, :-2]), rtol=1e-5)


def sparse_reference(labels, y_pred, mask_zero):
    losses = []
    for row_labels, row in zip(labels, y_pred, strict=True):
        positive = [i for i in row_labels if not (mask_zero and i == 0)]
        negative = [j for j in range(len(row)) if j not in positive and not (mask_zero and j == 0)]
        losses.append(np.log1p(np.exp(-row[positive]).sum()) + np.log1p(np.exp(row[negative]).sum()))
    return np.array(losses)


@pytest.mark.parametrize("mask_zero", [False, True])
def test_sparse_matches_the_formula(mask_zero):
    labels = np.array([[1, 3, 4], [2, 0, 0], [6, 5, 0], [0, 0, 0]] if mask_zero else [[1, 3], [2, 0], [6, 5], [4, 1]])
    out = ops.convert_to_numpy(sparse_multilabel_categorical_crossentropy(labels, LOGITS, mask_zero=mask_zero))
    np.testing.assert_allclose(out, sparse_reference(labels, LOGITS, mask_zero), rtol=1e-4)


def test_sparse_equals_dense_on_the_same_targets():
    labels = np.array([[1, 3], [2, 0], [6, 5], [4, 1]])
    dense = np.zeros((4, 7), "float32")
    np.put_along_axis(dense, labels, 1.0, axis=-1)
    sparse = ops.convert_to_numpy(sparse_multilabel_categorical_crossentropy(labels, LOGITS))
    dense_loss = ops.convert_to_numpy(multilabel_categorical_crossentropy(dense, LOGITS))
    np.testing.assert_allclose(sparse, dense_loss, rtol=1e-4)
