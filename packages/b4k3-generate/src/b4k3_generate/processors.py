"""Logits processors: repetition penalty, temperature and banned tokens on `(batch, vocab)` logits.

Every processor is a pure function of tensors with static shapes, written with keras.ops only, so the
same code runs eagerly and inside `jax.jit`, `tf.function` or a `keras.ops.while_loop` body. The
settings (penalty, temperature, ...) are Python values: they are checked when called and choose the
computation in Python, never by branching on a tensor.

`process_logits` applies them in Hugging Face's order: repetition penalty on the raw logits, then
temperature, then the banned tokens.
"""

import math
import numbers

import numpy as np

from b4k3_ops import ops
from b4k3_ops.numerics import as_tensor, infinity


def _is_int(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_real(value):
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_processing(*, penalty=1.0, temperature=1.0, penalty_window=None, max_penalty_range=None, mask_output=None):
    """Raise ValueError, naming the offending value, if a logits-processing setting is invalid.

    Args:
        penalty: repetition penalty, a number > 0 (1.0 disables it).
        temperature: a number > 0 (1.0 leaves the logits unchanged).
        penalty_window: None, or a positive int: only the current window of that many positions and
            the previous one count for the penalty.
        max_penalty_range: None, or `[lo, hi]` ints with `0 <= lo < hi`: tokens seen fewer than `lo`
            times are not penalised, the others `min(count, hi)` times.
        mask_output: None, or a list of token ids (ints >= 0) that must never be generated.
    """
    if not _is_real(penalty) or not math.isfinite(penalty) or penalty <= 0:
        raise ValueError(f"`penalty` must be a finite number > 0 (1.0 disables it); received penalty={penalty!r}.")
    if not _is_real(temperature) or not math.isfinite(temperature) or temperature <= 0:
        raise ValueError(
            f"`temperature` must be a finite number > 0; received temperature={temperature!r}. "
            "For deterministic decoding use search_mode='greedy' instead of temperature 0."
        )
    if penalty_window is not None and (not _is_int(penalty_window) or penalty_window <= 0):
        raise ValueError(f"`penalty_window` must be None or an int > 0; received penalty_window={penalty_window!r}.")
    if max_penalty_range is not None and not (
        isinstance(max_penalty_range, (list, tuple))
        and len(max_penalty_range) == 2
        and all(_is_int(bound) for bound in max_penalty_range)
        and 0 <= max_penalty_range[0] < max_penalty_range[1]
    ):
        raise ValueError(
            "`max_penalty_range` must be None or [lo, hi], two ints with 0 <= lo < hi; "
            f"received max_penalty_range={max_penalty_range!r}."
        )
    if mask_output is not None and not (
        isinstance(mask_output, (list, tuple, np.ndarray)) and all(_is_int(i) and i >= 0 for i in mask_output)
    ):
        raise ValueError(
            f"`mask_output` must be None or a list of token ids >= 0; received mask_output={mask_output!r}."
        )


def repetition_penalty(
    logits, context_ids, context_mask, penalty, *, positions=None, penalty_window=None, max_penalty_range=None
):
    """Penalise the logits of the tokens already in the context (CTRL's rule, as Hugging Face applies it).

    A present token's logit becomes `logit / factor` if it is positive and `logit * factor` otherwise,
    once per distinct token (repeats do not compound), with `factor = penalty`. This is Hugging Face's
    `RepetitionPenaltyLogitsProcessor`. Only positions where `context_mask` is True count: padding and
    positions not written yet never do (bert4keras3 counted them, so token 0 was always penalised).

    bert4keras3's two variants, usable together:
    - `max_penalty_range=[lo, hi]`: with `n` the number of times a token occurs, tokens with `n < lo`
      are left alone and the others get `factor = penalty ** min(n, hi)`.
    - `penalty_window=w`: only the current window of `w` positions and the previous one count, i.e.
      context index `j` with `(pos // w - 1) * w <= j < pos`, where `pos = positions[b]` is the index
      in `context_ids` of the token being generated.

    Args:
        logits: `(batch, vocab)` float logits.
        context_ids: `(batch, length)` int token ids, prompt and generated, indexed by position.
        context_mask: `(batch, length)` bool, True where the position holds a real token. Ids outside
            `[0, vocab)` never count either.
        penalty: a Python number > 0; 1.0 returns `logits` unchanged.
        positions: `(batch,)` int, the position being generated in each row; needed with `penalty_window`.
        penalty_window: None or a positive int.
        max_penalty_range: None or `[lo, hi]` ints, `0 <= lo < hi`.

    Returns:
        The penalised logits, same shape and dtype.

    Example:
        >>> logits = np.array([[2.0, -2.0, 1.0]], "float32")
        >>> repetition_penalty(logits, np.array([[0, 1, 1]]), np.array([[True, True, True]]), 2.0)
        >>> # [[1.0, -4.0, 1.0]]: tokens 0 and 1 are present, token 1 twice but penalised once
    """
    check_processing(penalty=penalty, penalty_window=penalty_window, max_penalty_range=max_penalty_range)
    if penalty == 1:
        return logits
    if penalty_window is not None and positions is None:
        raise ValueError(f"penalty_window={penalty_window} needs `positions`, the (batch,) positions being generated.")
    logits = as_tensor(logits)
    vocab = logits.shape[-1]
    context_ids = ops.cast(context_ids, "int32")
    in_vocab = ops.logical_and(context_ids >= 0, context_ids < vocab)
    counted = ops.logical_and(ops.cast(context_mask, "bool"), in_vocab)
    if penalty_window is not None:
        # The window after the current one starts past `pos`, so `j < pos` is the upper bound.
        index = ops.arange(context_ids.shape[1], dtype="int32")[None, :]
        pos = ops.cast(positions, "int32")[:, None]
        in_window = ops.logical_and(index >= (ops.floor_divide(pos, penalty_window) - 1) * penalty_window, index < pos)
        counted = ops.logical_and(counted, in_window)

    # Occurrences per (row, token), summed into one flat segment per pair; uncounted positions add 0.
    batch = ops.shape(context_ids)[0]
    rows = ops.arange(batch, dtype="int32")[:, None]
    segments = ops.reshape(rows * vocab + ops.where(counted, context_ids, 0), (-1,))
    weights = ops.reshape(ops.cast(counted, "float32"), (-1,))
    counts = ops.reshape(ops.segment_sum(weights, segments, num_segments=batch * vocab), (batch, vocab))

    if max_penalty_range is None:
        times = ops.cast(counts > 0, "float32")
    else:
        lo, hi = max_penalty_range
        times = ops.where(counts >= lo, ops.minimum(counts, float(hi)), 0.0)
    factor = ops.cast(ops.power(float(penalty), times), logits.dtype)
    return ops.where(ops.less(logits, 0), ops.multiply(logits, factor), ops.divide(logits, factor))


def temperature(logits, temperature):
    """`logits / temperature` (Hugging Face's `TemperatureLogitsWarper`); 1.0 returns `logits` unchanged.

    Args:
        logits: `(batch, vocab)` float logits.
        temperature: a Python number > 0. Below 1 sharpens the distribution, above 1 flattens it.
    """
    check_processing(temperature=temperature)
    if temperature == 1:
        return logits
    logits = as_tensor(logits)
    return ops.divide(logits, ops.cast(temperature, logits.dtype))


def mask_output(logits, banned_ids):
    """Give the `banned_ids` tokens a logit of `-infinity(dtype)` (-1e12) so they are never generated.

    The value is finite, as in b4k3's attention masks: the samplers' filters use the same value, softmax
    gives such tokens probability 0, and argmax never picks them while any other token is allowed.

    Args:
        logits: `(batch, vocab)` float logits.
        banned_ids: None or a list of token ids in `[0, vocab)`; None or `[]` returns `logits` unchanged.
    """
    check_processing(mask_output=banned_ids)
    if banned_ids is None or len(banned_ids) == 0:
        return logits
    logits = as_tensor(logits)
    vocab = logits.shape[-1]
    outside = [i for i in banned_ids if i >= vocab]
    if outside:
        raise ValueError(f"mask_output ids {outside} are outside the vocabulary of {vocab} tokens.")
    if len(set(banned_ids)) == vocab:
        raise ValueError(f"mask_output bans all {vocab} tokens: nothing could be generated.")
    ids = ops.convert_to_tensor([[int(i)] for i in banned_ids], "int32")
    banned = ops.scatter(ids, ops.ones((len(banned_ids),), "int32"), (vocab,)) > 0
    return ops.where(banned[None], ops.cast(-infinity(logits.dtype), logits.dtype), logits)


# process_logits' arguments shadow these two functions.
_temperature = temperature
_mask_output = mask_output


def process_logits(
    logits,
    context_ids,
    context_mask,
    *,
    penalty=1.0,
    temperature=1.0,
    mask_output=None,
    positions=None,
    penalty_window=None,
    max_penalty_range=None,
):
    """Repetition penalty, then temperature, then banned tokens (Hugging Face's order), in float32.

    Args:
        logits: `(batch, vocab)` float logits of any float dtype; the result is float32.
        context_ids, context_mask, positions, penalty_window, max_penalty_range: as in `repetition_penalty`.
        penalty: repetition penalty, 1.0 to disable.
        temperature: softmax temperature, 1.0 to disable.
        mask_output: None or a list of banned token ids.

    Returns:
        `(batch, vocab)` float32 logits, ready for `samplers.next_token`.
    """
    check_processing(
        penalty=penalty,
        temperature=temperature,
        penalty_window=penalty_window,
        max_penalty_range=max_penalty_range,
        mask_output=mask_output,
    )
    logits = ops.cast(logits, "float32")
    logits = repetition_penalty(
        logits,
        context_ids,
        context_mask,
        penalty,
        positions=positions,
        penalty_window=penalty_window,
        max_penalty_range=max_penalty_range,
    )
    logits = _temperature(logits, temperature)
    return _mask_output(logits, mask_output)
