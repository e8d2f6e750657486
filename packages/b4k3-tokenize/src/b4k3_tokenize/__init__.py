"""bert4keras-compatible tokenizers (WordPiece, SentencePiece, byte-level BPE and RWKV's "world"
tokenizer) with no Keras dependency."""

from b4k3_tokenize.base import TokenizerBase, truncate_sequences
from b4k3_tokenize.bpe import AddedToken, BPETokenizer
from b4k3_tokenize.characters import lowercase_and_normalize
from b4k3_tokenize.chat_template import render_chat_template
from b4k3_tokenize.rwkv_world import RWKVWorldTokenizer
from b4k3_tokenize.sp_tokenizer import SpTokenizer
from b4k3_tokenize.text_helpers import (
    convert_to_str,
    convert_to_unicode,
    is_string,
    longest_common_subsequence,
    longest_common_substring,
    string_matching,
    strQ2B,
    text_segmentate,
)
from b4k3_tokenize.vocab import load_vocab, save_vocab
from b4k3_tokenize.wordpiece import Tokenizer

__version__ = "0.2.0"

__all__ = [
    "AddedToken",
    "BPETokenizer",
    "RWKVWorldTokenizer",
    "SpTokenizer",
    "Tokenizer",
    "TokenizerBase",
    "convert_to_str",
    "convert_to_unicode",
    "is_string",
    "load_vocab",
    "longest_common_subsequence",
    "longest_common_substring",
    "lowercase_and_normalize",
    "render_chat_template",
    "save_vocab",
    "strQ2B",
    "string_matching",
    "text_segmentate",
    "truncate_sequences",
]
