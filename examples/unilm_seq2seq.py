"""Seq2seq generation with a BERT built as UniLM (`application='unilm'`), the way bert4keras users
generate titles and paraphrases: the source is segment 0 and attends to itself both ways, the
generated target is segment 1 and sees the source and itself causally, with a KV cache.

No pretrained UniLM checkpoint can be had offline, so by default the BERT here has random
weights (seeded) over a character vocabulary: it shows the calls, not a useful model, and its
"titles" are noise. With a real bert4keras UniLM checkpoint (e.g. a title-generation fine-tune of
a Chinese BERT or RoFormer), give its files:

    python examples/unilm_seq2seq.py
    python examples/unilm_seq2seq.py --config bert_config.json --checkpoint bert_model.ckpt --vocab vocab.txt \\
        --model roformer "text to summarise"

Runs on the Keras backend that KERAS_BACKEND names.
"""

import argparse

import keras
import numpy as np

from b4k3_generate import build_cache_model, generate
from b4k3_models import build_transformer_model
from b4k3_tokenize import Tokenizer

SOURCES = ["the cat sat on the mat", "rates rose again"]
CHARACTERS = "abcdefghijklmnopqrstuvwxyz"
MAX_NEW_TOKENS = 8
SEED = 7


def character_vocabulary():
    """BERT's special tokens and one token per letter (spaces split words, as BERT's tokenizer does)."""
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", *CHARACTERS]
    return {token: index for index, token in enumerate(tokens)}


def random_unilm(vocab_size, seed=SEED):
    """A small BERT with seeded random weights, built as UniLM with a logits MLM head."""
    keras.utils.set_random_seed(seed)
    return build_transformer_model(
        vocab_size=vocab_size,
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=128,
        hidden_act="gelu",
        max_position=64,
        application="unilm",
        with_mlm="linear",
        return_keras_model=False,
    )


def encode_sources(tokenizer, sources):
    """`[CLS] source [SEP]` token ids of each source (its characters, without spaces)."""
    return [tokenizer.encode(" ".join(source.replace(" ", "")))[0] for source in sources]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sources", nargs="*", default=SOURCES)
    parser.add_argument("--config", help="the checkpoint's bert_config.json (default: a random BERT)")
    parser.add_argument("--checkpoint", help="a Google TF checkpoint prefix or a Hugging Face directory")
    parser.add_argument("--vocab", help="the checkpoint's vocab.txt")
    parser.add_argument("--model", default="bert", help="the family: bert, roformer, roformer_v2")
    parser.add_argument("--max-new-tokens", type=int, default=MAX_NEW_TOKENS)
    arguments = parser.parse_args()

    print(f"Keras backend: {keras.backend.backend()}")
    if arguments.checkpoint:
        tokenizer = Tokenizer(arguments.vocab, do_lower_case=True)
        transformer = build_transformer_model(
            arguments.config,
            arguments.checkpoint,
            model=arguments.model,
            application="unilm",
            with_mlm="linear",
            return_keras_model=False,
        )
        sources = [tokenizer.encode(source)[0] for source in arguments.sources]
    else:
        print("Random weights (no pretrained UniLM checkpoint given): the generated text is noise.")
        vocabulary = character_vocabulary()
        tokenizer = Tokenizer(vocabulary)
        transformer = random_unilm(len(vocabulary))
        sources = encode_sources(tokenizer, arguments.sources)
    end_token = tokenizer.token_to_id("[SEP]")

    # The friendly call: ragged sources in, each row's new tokens out (up to its [SEP]).
    targets = generate(transformer, sources, arguments.max_new_tokens, end_token=end_token)

    # bert4keras3's call: sources right-padded with 0, segment ids 1 after each source.
    width = max(map(len, sources))
    max_length = width + arguments.max_new_tokens
    tokens = np.zeros((len(sources), width), dtype="int32")
    segments = np.ones_like(tokens)
    for row, source in enumerate(sources):
        tokens[row, : len(source)], segments[row, : len(source)] = source, 0
    generator = build_cache_model(transformer, [max_length, max_length], end_token=end_token)
    filled = generator.predict([tokens, segments])

    for row, (text, source, target) in enumerate(zip(arguments.sources, sources, targets, strict=True)):
        same = filled[row, len(source) : len(source) + len(target)].tolist() == target
        print(f"source: {text}")
        print(f"target ids: {target}  (build_cache_model agrees: {same})")
        print(f"target: {tokenizer.decode(target)}")


if __name__ == "__main__":
    main()
