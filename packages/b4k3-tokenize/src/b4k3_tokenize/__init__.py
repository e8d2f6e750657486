"""bert4keras-compatible tokenizers (WordPiece, SentencePiece and byte-level BPE) with no Keras dependency."""

from b4k3_tokenize.base import TokenizerBase, truncate_sequences
from b4k3_tokenize.bpe import AddedToken, BPETokenizer
from b4k3_tokenize.characters import lowercase_and_normalize
from b4k3_tokenize.chat_template import render_chat_template
from b4k3_tokenize.sp_tokenizer import SpTokenizer
from b4k3_tokenize.vocab import load_vocab, save_vocab
from b4k3_tokenize.wordpiece import Tokenizer

__version__ = "0.2.0"

__all__ = [
    "AddedToken",
    "BPETokenizer",
    "SpTokenizer",
    "Tokenizer",
    "TokenizerBase",
    "load_vocab",
    "lowercase_and_normalize",
    "render_chat_template",
    "save_vocab",
    "truncate_sequences",
]
