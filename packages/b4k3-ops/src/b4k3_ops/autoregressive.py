"""bert4keras3's model-agnostic autoregressive decoder: beam search and random sampling in NumPy
over a `predict` the user writes (no KV cache: `predict` sees the whole prefix every step).
For cached generation with b4k3's models, use b4k3-generate."""

import functools

import keras
import numpy as np

from b4k3_ops.arrays import softmax


class AutoRegressiveDecoder:
    """Base class of seq2seq / language-model decoders written the bert4keras way.

    Subclass it, write `predict(self, inputs, output_ids, states)` returning the next token's
    scores `(batch, vocab)` for the prefixes `output_ids`, decorate it with
    `@AutoRegressiveDecoder.wraps(default_rtype='probas' or 'logits', use_states=False)`, and
    call `beam_search(inputs, topk)` or `random_sample(inputs, n, topk, topp)`.

    Args:
        start_id: the id every output starts with (None: outputs start empty).
        end_id: the id that ends an output.
        maxlen: the most tokens generated.
        minlen: outputs are not considered finished before this length.
    """

    def __init__(self, start_id, end_id, maxlen, minlen=1):
        self.start_id = start_id
        self.end_id = end_id
        self.maxlen = maxlen
        self.minlen = minlen
        self.models = {}
        self.first_output_ids = np.empty((1, 0), dtype=int) if start_id is None else np.array([[start_id]])

    @staticmethod
    def wraps(default_rtype="probas", use_states=False):
        """Decorates the user's `predict` so that it returns `(scores, states)` of the requested
        `rtype`: 'probas' (normalised probabilities) or 'logits' (log-probabilities), with the
        `temperature` applied. `default_rtype` says what the user's `predict` returns ('logits':
        unnormalised logits, 'probas': probabilities); `use_states` that it returns
        `(scores, states)` rather than the scores alone."""
        if default_rtype not in ("probas", "logits"):
            raise ValueError(f"wraps: default_rtype must be 'probas' or 'logits', got {default_rtype!r}")

        def decorator(predict):
            @functools.wraps(predict)
            def new_predict(self, inputs, output_ids, states, temperature=1, rtype=default_rtype):
                if rtype not in ("probas", "logits"):
                    raise ValueError(f"predict: rtype must be 'probas' or 'logits', got {rtype!r}")
                prediction = predict(self, inputs, output_ids, states)
                scores, states = prediction if use_states else (prediction, None)
                if default_rtype == "logits":
                    probas = softmax(np.asarray(scores) / temperature)
                elif temperature != 1:
                    probas = np.power(scores, 1.0 / temperature)
                    probas = probas / probas.sum(axis=-1, keepdims=True)
                else:
                    probas = scores
                if rtype == "probas":
                    return probas, states
                return np.log(probas + 1e-12), states

            return new_predict

        return decorator

    def last_token(self, model):
        """A Keras model with `model`'s inputs whose outputs are `model`'s at the last position
        (built once per model)."""
        if model not in self.models:
            outputs = [keras.layers.Lambda(lambda x: x[:, -1])(output) for output in model.outputs]
            self.models[model] = keras.Model(model.inputs, outputs)
        return self.models[model]

    def predict(self, inputs, output_ids, states=None, temperature=1, rtype="probas"):
        """The user's step function (see the class docstring)."""
        raise NotImplementedError(
            "Subclass AutoRegressiveDecoder and write predict(self, inputs, output_ids, states), decorated with "
            "@AutoRegressiveDecoder.wraps(default_rtype=...)"
        )

    def _is_finished(self, output_ids, min_ends):
        """Per row: ends with `end_id` having produced it at least `min_ends` times."""
        ends = (output_ids == self.end_id).sum(axis=1)
        return (output_ids[:, -1] == self.end_id) & (ends >= min_ends)

    def beam_search(self, inputs, topk, states=None, temperature=1, min_ends=1):
        """The highest-scoring output (sum of log-probabilities) found keeping the `topk` best
        prefixes each step; `inputs` are one example's inputs (no batch axis). Returns the ids."""
        inputs = [np.array([x]) for x in inputs]
        output_ids, output_scores = self.first_output_ids, np.zeros(1)
        for step in range(self.maxlen):
            scores, states = self.predict(inputs, output_ids, states, temperature, "logits")
            if step == 0:
                inputs = [np.repeat(x, topk, axis=0) for x in inputs]
            scores = output_scores[:, None] + scores
            best = scores.argpartition(-topk, axis=None)[-topk:]
            rows, tokens = np.unravel_index(best, scores.shape)
            output_ids = np.concatenate([output_ids[rows], tokens[:, None]], axis=1)
            output_scores = scores[rows, tokens]
            if output_ids.shape[1] < self.minlen:
                continue
            finished = self._is_finished(output_ids, min_ends)
            leader = output_scores.argmax()
            if finished[leader]:
                return output_ids[leader]
            if finished.any():  # finished outputs that are not the best drop out of the beam
                keep = ~finished
                inputs = [x[keep] for x in inputs]
                output_ids, output_scores = output_ids[keep], output_scores[keep]
                topk = int(keep.sum())
        return output_ids[output_scores.argmax()]

    def random_sample(self, inputs, n, topk=None, topp=None, states=None, temperature=1, min_ends=1):
        """`n` outputs sampled token by token (from the `topk` most likely tokens, and/or the
        smallest set of most likely tokens whose probability reaches `topp`). Returns a list of
        `n` id arrays: finished ones first, in the order they finished."""
        inputs = [np.array([x]) for x in inputs]
        output_ids = self.first_output_ids
        results = []
        for step in range(self.maxlen):
            probas, states = self.predict(inputs, output_ids, states, temperature, "probas")
            probas = probas / probas.sum(axis=1, keepdims=True)
            if step == 0:
                probas = np.repeat(probas, n, axis=0)
                inputs = [np.repeat(x, n, axis=0) for x in inputs]
                output_ids = np.repeat(output_ids, n, axis=0)
            candidates = np.broadcast_to(np.arange(probas.shape[1]), probas.shape)
            if topk is not None:
                candidates = probas.argpartition(-topk, axis=1)[:, -topk:]
                probas = np.take_along_axis(probas, candidates, axis=1)
                probas = probas / probas.sum(axis=1, keepdims=True)
            if topp is not None:
                order = probas.argsort(axis=1)[:, ::-1]
                candidates = np.take_along_axis(candidates, order, axis=1)
                probas = np.take_along_axis(probas, order, axis=1)
                # Keep each token while the more likely ones have not reached topp (the first always).
                before = np.cumsum(probas, axis=1)[:, :-1]
                probas[:, 1:] = np.where(before >= topp, 0.0, probas[:, 1:])
                probas = probas / probas.sum(axis=1, keepdims=True)
            picks = np.array([np.random.choice(len(p), p=p) for p in probas])
            sampled = np.take_along_axis(candidates, picks[:, None], axis=1)
            output_ids = np.concatenate([output_ids, sampled], axis=1)
            if output_ids.shape[1] < self.minlen:
                continue
            finished = self._is_finished(output_ids, min_ends)
            if finished.any():
                results.extend(output_ids[finished])
                keep = ~finished
                inputs = [x[keep] for x in inputs]
                output_ids = output_ids[keep]
                if not len(output_ids):
                    break
        results.extend(output_ids)
        return results
