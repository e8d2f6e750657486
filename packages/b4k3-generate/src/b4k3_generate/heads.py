"""What a decoder's LM head outputs, turned back into logits for the processors and samplers.

`build_transformer_model` builds decoders with a softmax head by default (`with_lm=True`, a
BERT language model's `with_mlm=True`, GPT's `final_activation='softmax'`, as bert4keras3): its
outputs are probabilities. Sampling them as if they were logits draws almost
uniformly, so the loop samples from their logarithm instead, which is the same distribution
(softmax(log p) = p) and keeps temperature exact (log p / T is the logits / T up to a constant).
"""

import keras

from b4k3_ops import ops

# The smallest positive normal float32: a probability that underflowed to 0 becomes log(1e-38),
# far below every real token's log-probability but finite, as the samplers' filters expect.
SMALLEST_PROBABILITY = 1e-38


def head_activation(transformer):
    """The activation of the decoder's LM head: 'softmax', 'linear', another activation (its
    name or function), or None when it has none (`with_lm=False`: it outputs hidden states), from
    the model's `lm_head_activation` (logits when it has none)."""
    with_lm = getattr(transformer, "lm_head_activation", "linear")
    if with_lm is False:
        return None
    if with_lm is True:
        return "softmax"
    function = keras.activations.get(with_lm)
    for name in ("softmax", "linear"):
        if function is keras.activations.get(name):
            return name
    return with_lm


def head_to_logits(transformer, search_mode):
    """A function of the head's `(batch, vocab)` float32 output returning logits to sample from.

    Raises a ValueError naming `with_lm` for a decoder without an LM head, and for a head whose
    activation is neither softmax nor linear when sampling (greedy needs only the ranking, which
    every activation b4k3 offers keeps)."""
    activation = head_activation(transformer)
    owner = type(transformer).__name__
    if activation is None:
        raise ValueError(
            f"{owner} was built with with_lm=False: it outputs hidden states, not token scores; "
            "build it with with_lm='linear' (logits) to generate"
        )
    if activation == "linear":
        return lambda logits: logits
    if activation == "softmax":
        return lambda probabilities: ops.log(ops.maximum(probabilities, SMALLEST_PROBABILITY))
    if search_mode != "greedy":
        raise ValueError(
            f"{owner}'s LM head has activation {activation!r}: its outputs are neither logits nor "
            f"probabilities, so search_mode={search_mode!r} cannot sample from them; build it with a linear "
            "head (with_lm='linear'; GPT's final_activation='linear') or a softmax one"
        )
    return lambda scores: scores
