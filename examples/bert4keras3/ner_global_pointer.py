"""GlobalPointer named-entity recognition, bert4keras' recipe, ported from bert4keras3 by
changing its imports only.

The recipe (bert4keras' task_sequence_labeling_ner_global_pointer, as bert4keras3 users write it
on Keras 3): an encoder gives token vectors, `GlobalPointer` scores every span (start, end) per
entity type, the loss is the multi-label cross-entropy over all spans, and the spans scoring
above 0 are the entities. Here the encoder is a tiny transformer block built from the layers
and the data is synthetic (type 0: each maximal run of the tokens 15..19; type 1: the token 3),
so it runs anywhere in seconds. The imports were:

    from bert4keras3.backend import keras, K, ops, multilabel_categorical_crossentropy
    from bert4keras3.layers import GlobalPointer, Embedding, MultiHeadAttention, LayerNormalization, PositionEmbedding
    from bert4keras3.snippets import sequence_padding, DataGenerator, to_array
"""

import numpy as np

from b4k3_layers import Embedding, GlobalPointer, LayerNormalization, MultiHeadAttention, PositionEmbedding
from b4k3_ops.backend import K, keras, multilabel_categorical_crossentropy, ops
from b4k3_ops.snippets import DataGenerator, sequence_padding, to_array

maxlen = 12
batch_size = 32
epochs = 6
steps_per_epoch = 20
hidden_size = 32
vocab_size = 20
categories = ["RUN", "THREE"]

np.random.seed(0)
keras.utils.set_random_seed(0)


def entities_of(token_ids):
    """The synthetic labels: `(start, end, type)` spans, ends inclusive."""
    spans, start = [], None
    for i, token in enumerate([*token_ids, 0]):
        if 15 <= token <= 19 and start is None:
            start = i
        elif not 15 <= token <= 19 and start is not None:
            spans.append((start, i - 1, 0))
            start = None
        if token == 3:
            spans.append((i, i, 1))
    return spans


def load_data(n):
    data = []
    for _ in range(n):
        token_ids = [int(t) for t in np.random.randint(3, vocab_size, size=np.random.randint(4, maxlen + 1))]
        data.append((token_ids, entities_of(token_ids)))
    return data


class data_generator(DataGenerator):
    def __iter__(self, random=False):
        batch_token_ids, batch_labels = [], []
        for is_end, (token_ids, entities) in self.sample(random):
            labels = np.zeros((len(categories), maxlen, maxlen))
            for start, end, label in entities:
                labels[label, start, end] = 1
            batch_token_ids.append(token_ids)
            batch_labels.append(labels)
            if len(batch_token_ids) == self.batch_size or is_end:
                batch_token_ids = sequence_padding(batch_token_ids, maxlen)
                batch_labels = sequence_padding(batch_labels, seq_dims=3)
                yield batch_token_ids, batch_labels
                batch_token_ids, batch_labels = [], []


def global_pointer_crossentropy(y_true, y_pred):
    """The multi-label cross-entropy over every (type, start, end) of each example."""
    bh = ops.shape(y_pred)[0] * ops.shape(y_pred)[1]
    y_true = ops.reshape(ops.cast(y_true, K.floatx()), (bh, -1))
    y_pred = ops.reshape(y_pred, (bh, -1))
    return ops.mean(multilabel_categorical_crossentropy(y_true, y_pred))


def global_pointer_f1_score(y_true, y_pred):
    y_true = ops.cast(y_true, K.floatx())
    y_pred = ops.cast(ops.greater(y_pred, 0), K.floatx())
    return 2 * ops.sum(y_true * y_pred) / ops.sum(y_true + y_pred)


token_in = keras.Input((maxlen,), dtype="int32")
x = Embedding(vocab_size, hidden_size, mask_zero=True)(token_in)
x = PositionEmbedding(maxlen, hidden_size, embeddings_initializer="glorot_uniform")(x)
y = MultiHeadAttention(4, hidden_size // 4, out_dim=hidden_size)([x, x, x])
x = LayerNormalization()(keras.layers.Add()([x, y]))
output = GlobalPointer(len(categories), 16)(x)

model = keras.Model(token_in, output)
model.compile(
    loss=global_pointer_crossentropy,
    optimizer=keras.optimizers.Adam(1e-2),
    metrics=[global_pointer_f1_score],
)


class NamedEntityRecognizer:
    def recognize(self, token_ids, threshold=0):
        token_ids = to_array([token_ids + [0] * (maxlen - len(token_ids))])
        scores = model.predict(token_ids, verbose=0)[0]
        return sorted(
            (int(start), int(end), int(label)) for label, start, end in zip(*np.where(scores > threshold), strict=True)
        )


NER = NamedEntityRecognizer()


def evaluate(data):
    """Entity-level F1, precision and recall."""
    X, Y, Z = 1e-10, 1e-10, 1e-10
    for token_ids, entities in data:
        R = set(NER.recognize(token_ids))
        T = set(entities)
        X += len(R & T)
        Y += len(R)
        Z += len(T)
    return 2 * X / (Y + Z), X / Y, X / Z


if __name__ == "__main__":
    print(f"Keras backend: {keras.backend.backend()}")
    train_generator = data_generator(load_data(batch_size * steps_per_epoch), batch_size)
    history = model.fit(train_generator.forfit(), steps_per_epoch=len(train_generator), epochs=epochs, verbose=0)
    losses = history.history["loss"]
    print(f"loss: first epoch {losses[0]:.4f}, last epoch {losses[-1]:.4f}")
    valid_data = load_data(50)
    f1, precision, recall = evaluate(valid_data)
    print(f"valid: f1 {f1:.4f}, precision {precision:.4f}, recall {recall:.4f}")
    token_ids, entities = valid_data[0]
    print(f"tokens {token_ids}: entities {entities}, recognized {NER.recognize(token_ids)}")
