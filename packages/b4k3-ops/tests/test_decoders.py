"""ViterbiDecoder and AutoRegressiveDecoder (beam search, random sampling, `wraps`) against NumPy
references of bert4keras3's semantics: brute force over every label path, and a plain beam
search over a fixed Markov chain standing in for the user's model."""

import itertools

import keras
import numpy as np
import pytest

from b4k3_ops.snippets import AutoRegressiveDecoder, ViterbiDecoder, softmax, to_array

RNG = np.random.default_rng(0)


def test_to_array_and_softmax():
    one = to_array([1, 2])
    assert isinstance(one, np.ndarray)
    first, second = to_array([[1]], [2.0])
    assert first.shape == (1, 1)
    assert second.dtype == np.float64
    x = RNG.normal(size=(3, 4)) * 50
    expected = np.exp(x - x.max(-1, keepdims=True))
    np.testing.assert_allclose(softmax(x), expected / expected.sum(-1, keepdims=True))
    np.testing.assert_allclose(softmax(x, axis=0).sum(0), 1.0)


@pytest.mark.parametrize(("starts", "ends"), [(None, None), ([0, 2], [1, 3]), ([3], None)])
def test_viterbi_path_is_the_best_of_all_paths(starts, ends):
    trans = RNG.normal(size=(4, 4))
    nodes = RNG.normal(size=(5, 4))
    original = nodes.copy()
    path = ViterbiDecoder(trans, starts, ends).decode(nodes)

    def score(labels):
        return nodes[np.arange(5), labels].sum() + sum(trans[a, b] for a, b in itertools.pairwise(labels))

    allowed = [
        labels
        for labels in itertools.product(range(4), repeat=5)
        if (starts is None or labels[0] in starts) and (ends is None or labels[-1] in ends)
    ]
    best = max(allowed, key=score)
    np.testing.assert_array_equal(path, best)
    np.testing.assert_array_equal(nodes, original)  # the caller's scores are left alone


VOCAB, END = 6, 5
# A first-order Markov chain: the next token's log-probabilities depend on the last token (and on
# the input, a per-example bias), standing in for the model a user's `predict` would call.
LOG_TRANSITIONS = np.log(softmax(RNG.normal(size=(VOCAB, VOCAB)) * 2))


class MarkovDecoder(AutoRegressiveDecoder):
    calls = 0

    @AutoRegressiveDecoder.wraps(default_rtype="logits")
    def predict(self, inputs, output_ids, states):
        (bias,) = inputs
        MarkovDecoder.calls += 1
        return LOG_TRANSITIONS[output_ids[:, -1]] + bias


def reference_beam_search(bias, start, topk, maxlen):
    """bert4keras3's beam search written plainly: keep the topk best (score, ids) prefixes; return
    the best once it ends with END; finished non-best prefixes leave the beam."""
    beam = [(0.0, [start])]
    for _ in range(maxlen):
        candidates = [
            (score + np.log(softmax(LOG_TRANSITIONS[ids[-1]] + bias)[token] + 1e-12), [*ids, token])
            for score, ids in beam
            for token in range(VOCAB)
        ]
        candidates.sort(key=lambda pair: -pair[0])
        beam = candidates[:topk]
        if beam[0][1][-1] == END:
            return beam[0][1][1:]
        beam = [pair for pair in beam if pair[1][-1] != END]
    return beam[0][1][1:]


@pytest.mark.parametrize("topk", [1, 2, 3])
def test_beam_search_matches_a_plain_beam_search(topk):
    bias = RNG.normal(size=VOCAB)
    decoder = MarkovDecoder(start_id=0, end_id=END, maxlen=8)
    ids = decoder.beam_search([bias], topk=topk)
    expected = reference_beam_search(bias, 0, topk, 8)
    np.testing.assert_array_equal(ids[1:], expected)
    assert ids[0] == 0


def test_beam_search_with_topk_one_is_greedy():
    decoder = MarkovDecoder(start_id=None, end_id=END, maxlen=6)

    class Greedy(MarkovDecoder):
        @AutoRegressiveDecoder.wraps(default_rtype="logits")
        def predict(self, inputs, output_ids, states):
            previous = output_ids[:, -1] if output_ids.shape[1] else np.zeros(len(output_ids), dtype=int)
            return LOG_TRANSITIONS[previous] + inputs[0]

    bias = RNG.normal(size=VOCAB)
    greedy, token = [], 0
    for _ in range(6):
        token = int(np.argmax(LOG_TRANSITIONS[token] + bias))
        greedy.append(token)
        if token == END:
            break
    np.testing.assert_array_equal(Greedy(None, END, 6).beam_search([bias], topk=1), greedy)
    assert decoder.first_output_ids.shape == (1, 0)


def test_wraps_applies_the_temperature_and_the_requested_rtype():
    logits = RNG.normal(size=(2, VOCAB))

    class Logits(AutoRegressiveDecoder):
        @AutoRegressiveDecoder.wraps(default_rtype="logits")
        def predict(self, inputs, output_ids, states):
            return logits

    class Probas(AutoRegressiveDecoder):
        @AutoRegressiveDecoder.wraps(default_rtype="probas", use_states=True)
        def predict(self, inputs, output_ids, states):
            return softmax(logits), "state"

    probas, states = Logits(0, 1, 3).predict([], None, None, temperature=0.5, rtype="probas")
    np.testing.assert_allclose(probas, softmax(logits / 0.5))
    assert states is None
    log_probas, states = Probas(0, 1, 3).predict([], None, None, temperature=2.0, rtype="logits")
    tempered = softmax(logits) ** 0.5
    np.testing.assert_allclose(log_probas, np.log(tempered / tempered.sum(-1, keepdims=True) + 1e-12))
    assert states == "state"


def test_random_sample_draws_from_the_filtered_distribution():
    np.random.seed(0)
    bias = RNG.normal(size=VOCAB)
    probas = softmax(LOG_TRANSITIONS[0] + bias)
    one_step = MarkovDecoder(start_id=0, end_id=END, maxlen=1)
    samples = np.array([ids[1] for ids in one_step.random_sample([bias], n=4000)])
    frequencies = np.bincount(samples, minlength=VOCAB) / len(samples)
    np.testing.assert_allclose(frequencies, probas, atol=0.03)

    top2 = set(np.argsort(probas)[-2:])
    assert {ids[1] for ids in one_step.random_sample([bias], n=200, topk=2)} == top2
    order = np.argsort(probas)[::-1]
    nucleus = order[: np.searchsorted(np.cumsum(probas[order]), 0.6) + 1]
    assert {ids[1] for ids in one_step.random_sample([bias], n=400, topp=0.6)} == set(nucleus)


def test_random_sample_returns_n_outputs_finished_first():
    np.random.seed(1)
    decoder = MarkovDecoder(start_id=0, end_id=END, maxlen=5)
    outputs = decoder.random_sample([np.zeros(VOCAB)], n=20, topk=3)
    assert len(outputs) == 20
    finished = [ids[-1] == END for ids in outputs]
    assert finished == sorted(finished, reverse=True)
    assert all(len(ids) <= 6 and ids[0] == 0 for ids in outputs)
    assert all(END not in ids[:-1] for ids in outputs)


def test_predict_must_be_written():
    with pytest.raises(NotImplementedError, match="Subclass AutoRegressiveDecoder"):
        AutoRegressiveDecoder(0, 1, 3).beam_search([np.zeros(2)], topk=1)


def test_last_token_model_outputs_the_last_position():
    inputs = keras.Input((None,), dtype="int32")
    outputs = keras.layers.Embedding(10, 4)(inputs)
    model = keras.Model(inputs, outputs)
    decoder = AutoRegressiveDecoder(0, 1, 3)
    last = decoder.last_token(model)
    assert decoder.last_token(model) is last
    tokens = np.array([[1, 2, 3], [4, 5, 6]])
    np.testing.assert_allclose(last.predict(tokens, verbose=0), model.predict(tokens, verbose=0)[:, -1])
