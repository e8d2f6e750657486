"""Su Jianlin's multi-label categorical cross-entropy, dense and sparse
(https://kexue.fm/archives/7359, soft labels: https://kexue.fm/archives/9064).

For logits s and targets t: `log(1 + sum((1 - t) e^s)) + log(1 + sum(t e^-s))`. Logits must be
unbounded (no sigmoid or softmax); at prediction time, the classes with s > 0 are the answer.
"""

from keras import ops

from b4k3_ops.numerics import as_tensor, infinity


def multilabel_categorical_crossentropy(y_true, y_pred):
    """`y_true` and `y_pred` of the same shape; `y_true` in [0, 1] (the probability that a class is
    a target). Logits masked to '-inf' (e.g. by `sequence_masking`) count in neither sum."""
    y_pred = as_tensor(y_pred)
    y_true = ops.cast(y_true, y_pred.dtype)
    big = infinity(y_pred.dtype)
    kept = y_pred > -big / 10
    y_neg = ops.where(kept, y_pred, -big) + ops.log(1 - y_true)
    y_pos = ops.where(kept, -y_pred, -big) + ops.log(y_true)
    zeros = ops.zeros_like(y_pred[..., :1])
    neg_loss = ops.logsumexp(ops.concatenate([y_neg, zeros], axis=-1), axis=-1)
    pos_loss = ops.logsumexp(ops.concatenate([y_pos, zeros], axis=-1), axis=-1)
    return neg_loss + pos_loss


def sparse_multilabel_categorical_crossentropy(y_true, y_pred, mask_zero=False):
    """`y_true` holds the indices of the target classes, `(..., num_positive)`; `y_pred` the logits,
    `(..., num_classes)`. With `mask_zero`, index 0 pads `y_true` (class 0 is never a target)."""
    y_pred = as_tensor(y_pred)
    y_true = ops.cast(y_true, "int32")
    big = infinity(y_pred.dtype)
    zeros = ops.zeros_like(y_pred[..., :1])
    y_pred = ops.concatenate([y_pred, zeros], axis=-1)
    if mask_zero:
        y_pred = ops.concatenate([zeros + big, y_pred[..., 1:]], axis=-1)
    y_pos_2 = ops.take_along_axis(y_pred, y_true, axis=-1)
    y_pos_1 = ops.concatenate([y_pos_2, zeros], axis=-1)
    if mask_zero:
        y_pred = ops.concatenate([zeros - big, y_pred[..., 1:]], axis=-1)
        y_pos_2 = ops.take_along_axis(y_pred, y_true, axis=-1)
    pos_loss = ops.logsumexp(-y_pos_1, axis=-1)
    all_loss = ops.logsumexp(y_pred, axis=-1)
    aux_loss = ops.logsumexp(y_pos_2, axis=-1) - all_loss
    aux_loss = ops.clip(1 - ops.exp(aux_loss), 1e-7, 1)
    return pos_loss + all_loss + ops.log(aux_loss)
