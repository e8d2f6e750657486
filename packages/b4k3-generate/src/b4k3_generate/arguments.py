"""Checks of what `generate`, `stream` and `build_cache_model` are given, each raising an error
that says what to pass: the b4k3 transformer (not its Keras model), a family that decodes,
prompts as lists of token ids, ids inside the vocabulary, and lengths the positions allow."""

import numbers

import keras
import numpy as np


def check_transformer(transformer):
    """The model must implement the decoding protocol: b4k3's transformer object of a family that
    can decode, or any object (a Keras model included) with `build_cache` and `call_with_cache`."""
    decodes = hasattr(transformer, "build_cache") and hasattr(transformer, "call_with_cache")
    if isinstance(transformer, keras.Model) and not decodes:
        raise TypeError(
            f"got the Keras model {transformer.name!r}; generation needs the b4k3 transformer object: "
            "build_transformer_model(..., return_keras_model=False)"
        )
    if not decodes:
        raise TypeError(f"{type(transformer).__name__} cannot decode: it has no build_cache / call_with_cache")
    check_can_decode = getattr(transformer, "check_can_decode", None)  # optional in the protocol
    if check_can_decode is not None:
        check_can_decode()


def check_prompts(prompts):
    """`prompts` as a list of lists of Python ints; a flat list of ids, text, or anything else
    is a TypeError saying what to pass, an empty prompt a ValueError."""
    if isinstance(prompts, (str, bytes)) or (
        isinstance(prompts, (list, tuple)) and prompts and isinstance(prompts[0], (str, bytes))
    ):
        raise TypeError(
            f"prompts are token ids, not text ({prompts!r:.60}): encode them with the tokenizer first, "
            "e.g. [tokenizer.encode(text)[0] for text in texts]"
        )
    if isinstance(prompts, np.ndarray) and prompts.ndim == 2:
        prompts = prompts.tolist()
    if not isinstance(prompts, (list, tuple)):
        raise TypeError(f"prompts must be a list of token-id lists, got {type(prompts).__name__}: {prompts!r:.60}")
    if not prompts:
        raise ValueError("prompts is empty: pass at least one prompt (a list of token ids)")
    if all(_is_id(token) for token in prompts):
        raise TypeError(f"prompts is a flat list of ids ({list(prompts)!r:.60}); pass a list of prompts: [ids] for one")
    checked = []
    for row, prompt in enumerate(prompts):
        if isinstance(prompt, np.ndarray):
            prompt = prompt.tolist()
        if isinstance(prompt, (str, bytes)):
            raise TypeError(f"prompts[{row}] is text ({prompt!r:.40}): encode it with the tokenizer first")
        if not isinstance(prompt, (list, tuple)) or not all(_is_id(token) for token in prompt):
            raise TypeError(f"prompts[{row}] must be a list of int token ids, got {prompt!r:.60}")
        if not prompt:
            raise ValueError(f"prompts[{row}] is empty: every prompt needs at least one token")
        checked.append([int(token) for token in prompt])
    return checked


def _is_id(value):
    return isinstance(value, (numbers.Integral, np.integer)) and not isinstance(value, bool)


def check_token_ids(transformer, tokens, what="token ids"):
    """Every id of `tokens` must index the vocabulary: out of range, backends clamp, wrap or fail
    obscurely."""
    tokens = np.asarray(tokens)
    vocab_size = transformer.vocab_size
    if tokens.size and (tokens.min() < 0 or tokens.max() >= vocab_size):
        bad = sorted({int(token) for token in tokens.ravel() if not 0 <= token < vocab_size})
        raise ValueError(f"{what} must be in 0..{vocab_size - 1} (the vocabulary), got {bad[:10]}")


def check_length(transformer, total_length):
    """A learned position table (the model's `max_positions`) limits the positions a generation
    may reach."""
    limit = getattr(transformer, "max_positions", None)  # optional in the protocol
    if limit is not None and total_length > limit:
        raise ValueError(
            f"the prompt and the new tokens need {total_length} positions; {type(transformer).__name__} has "
            f"{limit} (learned positions): shorten the prompt or max_new_tokens"
        )
