"""A UniLM seq2seq recipe of bert4keras, ported from bert4keras3 by changing its imports only.

The recipe (bert4keras' task_seq2seq_autotitle, as bert4keras3 users write it on Keras 3): one
transformer reads `[CLS] source [SEP] target [SEP]`, segment 0 then 1, under the UniLM mask (the
source sees itself, each target token sees the source and the target before it); a `Loss`
layer trains the next-token cross-entropy on the target only; an `AutoRegressiveDecoder`
generates with `beam_search` and `random_sample`. Here the transformer is a tiny one built from
the layers and the task is synthetic (write the source digits backwards), so it runs anywhere in
seconds. The imports were:

    from bert4keras3.backend import keras, K, ops
    from bert4keras3.layers import Loss, Embedding, MultiHeadAttention, FeedForward, LayerNormalization
    from bert4keras3.layers import SinusoidalPositionEmbedding
    from bert4keras3.snippets import sequence_padding, DataGenerator, AutoRegressiveDecoder
"""

import numpy as np

from b4k3_layers import (
    Embedding,
    FeedForward,
    LayerNormalization,
    Loss,
    MultiHeadAttention,
    SinusoidalPositionEmbedding,
)
from b4k3_ops.backend import K, keras, ops
from b4k3_ops.snippets import AutoRegressiveDecoder, DataGenerator, sequence_padding

# Basic parameters
maxlen = 5  # source digits
batch_size = 32
steps_per_epoch = 40
epochs = 6
hidden_size = 64
vocab_size = 13  # 0 [PAD], 1 [CLS], 2 [SEP], 3..12 the digits 0..9
cls_id, sep_id = 1, 2

np.random.seed(42)
keras.utils.set_random_seed(42)


def encode(source, target=()):
    token_ids = [cls_id, *source, sep_id]
    segment_ids = [0] * len(token_ids)
    if len(target):
        token_ids += [*target, sep_id]
        segment_ids += [1] * (len(target) + 1)
    return token_ids, segment_ids


def random_example():
    source = np.random.randint(3, vocab_size, size=np.random.randint(2, maxlen + 1))
    return source, source[::-1]


class data_generator(DataGenerator):
    """Batches of `[token_ids, segment_ids]`, no labels (the Loss layer reads the inputs)."""

    def __iter__(self, random=False):
        batch_token_ids, batch_segment_ids = [], []
        for is_end, (source, target) in self.sample(random):
            token_ids, segment_ids = encode(source, target)
            batch_token_ids.append(token_ids)
            batch_segment_ids.append(segment_ids)
            if len(batch_token_ids) == self.batch_size or is_end:
                length = 2 * maxlen + 3
                batch_token_ids = sequence_padding(batch_token_ids, length)
                batch_segment_ids = sequence_padding(batch_segment_ids, length)
                # A tuple of inputs: Keras 3's TensorFlow backend takes no list from a generator.
                yield (batch_token_ids, batch_segment_ids), None
                batch_token_ids, batch_segment_ids = [], []


class CrossEntropy(Loss):
    """Cross-entropy of each next token, on the target segment only."""

    def compute_loss(self, inputs, mask=None):
        y_true, y_mask, y_pred = inputs
        y_true = y_true[:, 1:]  # the target tokens
        y_mask = ops.cast(y_mask[:, 1:], K.floatx())  # the target segment
        y_pred = y_pred[:, :-1]  # predictions, one position behind
        loss = keras.losses.sparse_categorical_crossentropy(y_true, y_pred)
        return ops.sum(loss * y_mask) / ops.sum(y_mask)


def unilm_mask(segment_ids):
    """Position j is visible from i when its segment count does not exceed i's."""
    idxs = ops.cumsum(segment_ids, axis=1)
    return idxs[:, None, :] <= idxs[:, :, None]


# The model: embeddings, two post-norm transformer blocks under the UniLM mask, a softmax head.
token_in = keras.Input((None,), dtype="int32", name="Input-Token")
segment_in = keras.Input((None,), dtype="int32", name="Input-Segment")
x = Embedding(vocab_size, hidden_size, mask_zero=True, name="Embedding-Token")(token_in)
s = keras.layers.Embedding(2, hidden_size, name="Embedding-Segment")(segment_in)
x = keras.layers.Add(name="Embedding-Token-Segment")([x, s])
x = SinusoidalPositionEmbedding(hidden_size, merge_mode="add", name="Embedding-Position")(x)
attention_mask = keras.layers.Lambda(unilm_mask, name="Attention-UniLM-Mask")(segment_in)
for i in range(2):
    name = f"Transformer-{i}-MultiHeadSelfAttention"
    y = MultiHeadAttention(4, hidden_size // 4, out_dim=hidden_size, name=name)([x, x, x, attention_mask], a_bias=True)
    x = LayerNormalization(name=f"{name}-Norm")(keras.layers.Add()([x, y]))
    name = f"Transformer-{i}-FeedForward"
    y = FeedForward(2 * hidden_size, activation="gelu", name=name)(x)
    x = LayerNormalization(name=f"{name}-Norm")(keras.layers.Add()([x, y]))
probas = keras.layers.Dense(vocab_size, activation="softmax", name="MLM-Activation")(x)
probas = CrossEntropy(2)([token_in, segment_in, probas])

model = keras.Model([token_in, segment_in], probas)
model.compile(optimizer=keras.optimizers.Adam(3e-3))


class Reverser(AutoRegressiveDecoder):
    """Generates the target from the source, recomputing the whole prefix each step."""

    @AutoRegressiveDecoder.wraps(default_rtype="probas")
    def predict(self, inputs, output_ids, states):
        token_ids, segment_ids = inputs
        token_ids = np.concatenate([token_ids, output_ids], 1)
        segment_ids = np.concatenate([segment_ids, np.ones_like(output_ids)], 1)
        return self.last_token(model).predict([token_ids, segment_ids], verbose=0)

    def generate(self, source, topk=2):
        token_ids, segment_ids = encode(source)
        output_ids = self.beam_search([token_ids, segment_ids], topk=topk)
        return output_ids[:-1] if len(output_ids) and output_ids[-1] == sep_id else output_ids


reverser = Reverser(start_id=None, end_id=sep_id, maxlen=maxlen + 1)


if __name__ == "__main__":
    print(f"Keras backend: {keras.backend.backend()}")
    train_generator = data_generator([random_example() for _ in range(batch_size * steps_per_epoch)], batch_size)
    history = model.fit(train_generator.forfit(), steps_per_epoch=steps_per_epoch, epochs=epochs, verbose=0)
    losses = history.history["loss"]
    print(f"loss: first epoch {losses[0]:.4f}, last epoch {losses[-1]:.4f}")

    def digits(ids):
        return [int(i) - 3 for i in ids if i != sep_id]

    tests = [random_example()[0] for _ in range(8)]
    correct = 0
    for source in tests:
        generated = reverser.generate(source, topk=2)
        correct += digits(generated) == digits(source[::-1])
        print(f"source {digits(source)} -> beam search {digits(generated)}")
    print(f"beam search reversed {correct} of {len(tests)}")

    # With topk=1 the beam search is greedy: the argmax of the model's next-token probabilities.
    token_ids, segment_ids = encode(tests[0])
    greedy = []
    while len(greedy) < reverser.maxlen and (not greedy or greedy[-1] != sep_id):
        step = model.predict([np.array([token_ids + greedy]), np.array([segment_ids + [1] * len(greedy)])], verbose=0)
        greedy.append(int(step[0, -1].argmax()))
    same = list(reverser.beam_search([token_ids, segment_ids], topk=1)) == greedy
    print(f"beam search with topk=1 equals the argmax loop: {same}")
    samples = reverser.random_sample([token_ids, segment_ids], n=3, topk=3)
    print(f"random_sample (n=3, topk=3) of {digits(tests[0])}: {[digits(ids) for ids in samples]}")
