"""How byte-level BPE tokenizers cut text into words before merging: regex splits, then every
word's UTF-8 bytes spelled in GPT-2's byte alphabet (256 printable characters, one per byte).

The split patterns are those of Hugging Face `tokenizers` and llama.cpp; they need the `regex`
package for the Unicode classes (`\\p{L}`, `\\p{N}`) that Python's `re` lacks.
"""

import functools
import unicodedata

# GPT-2's split (Hugging Face's `ByteLevel(use_regex=True)`), also SmolLM's and StarCoder's.
GPT2_SPLIT = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"
LLAMA3_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
QWEN2_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
# Hugging Face's `Digits` pre-tokenizer: every numeric character alone, or runs of them.
DIGITS = {True: r"\p{N}", False: r"\p{N}+"}

# llama.cpp's `tokenizer.ggml.pre` names -> the splits applied in order (from llama.cpp's vocabulary
# code and the `tokenizer.json` of the models they stand for).
GGUF_PRE_SPLITS = {
    "gpt-2": (GPT2_SPLIT,),
    "smollm": (DIGITS[True], GPT2_SPLIT),
    "starcoder": (DIGITS[True], GPT2_SPLIT),
    "refact": (DIGITS[True], GPT2_SPLIT),
    "codeshell": (DIGITS[True], GPT2_SPLIT),
    "llama3": (LLAMA3_SPLIT,),
    "llama-v3": (LLAMA3_SPLIT,),
    "llama-bpe": (LLAMA3_SPLIT,),
    "smaug-bpe": (LLAMA3_SPLIT,),
    "qwen2": (QWEN2_SPLIT,),
    "deepseek-r1-qwen": (QWEN2_SPLIT,),
}

NORMALIZATION_FORMS = ("NFC", "NFD", "NFKC", "NFKD")


def import_regex():
    try:
        import regex
    except ImportError:
        raise ImportError(
            "Byte-level BPE needs the regex package: pip install regex (the [bpe] extra of b4k3-tokenize)"
        ) from None
    return regex


@functools.cache
def byte_alphabet():
    """GPT-2's `bytes_to_unicode`: each byte's printable character (printable ASCII and Latin-1
    keep their own; the rest, spaces and controls among them, get characters from U+0100 on)."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    characters = {}
    extra = 0
    for byte in range(256):
        if byte in printable:
            characters[byte] = chr(byte)
        else:
            characters[byte] = chr(256 + extra)
            extra += 1
    return characters


@functools.cache
def byte_of_character():
    return {character: byte for byte, character in byte_alphabet().items()}


def to_byte_level(text):
    """`text`'s UTF-8 bytes spelled in the byte alphabet."""
    alphabet = byte_alphabet()
    return "".join(alphabet[byte] for byte in text.encode("utf-8"))


def from_byte_level(tokens):
    """The bytes of `tokens` (strings): a token spelled in the byte alphabet gives its bytes, any
    other (an added token such as '<|im_end|>' written plainly) its own UTF-8, as Hugging Face's
    `ByteLevel` decoder does."""
    table = byte_of_character()
    data = bytearray()
    for token in tokens:
        if all(character in table for character in token):
            data.extend(table[character] for character in token)
        else:
            data.extend(token.encode("utf-8"))
    return bytes(data)


class PreTokenizer:
    """Normalization (a Unicode form, or none), isolating regex splits applied in order, and the
    byte-level spelling of the resulting words.

    Args:
        splits: regex patterns; each cuts every piece into its matches and the text between them.
        add_prefix_space: put a space before text that does not start with one (GPT-2's option).
        normalization: 'NFC', 'NFD', 'NFKC', 'NFKD' or None.
    """

    def __init__(self, splits, add_prefix_space=False, normalization=None):
        if normalization not in (None, *NORMALIZATION_FORMS):
            raise ValueError(f"normalization must be one of {NORMALIZATION_FORMS} or None, got {normalization!r}")
        regex = import_regex()
        self.splits = tuple(splits)
        self._patterns = [regex.compile(split) for split in self.splits]
        self.add_prefix_space = add_prefix_space
        self.normalization = normalization

    def words(self, text):
        """The byte-level words of `text` (a stretch without added tokens)."""
        if self.normalization is not None:
            text = unicodedata.normalize(self.normalization, text)
        if self.add_prefix_space and text and not text.startswith(" "):
            text = " " + text
        pieces = [text] if text else []
        for pattern in self._patterns:
            pieces = [part for piece in pieces for part in _isolate(pattern, piece)]
        return [to_byte_level(piece) for piece in pieces]

    def __repr__(self):
        return f"PreTokenizer({self.splits!r}, add_prefix_space={self.add_prefix_space}, {self.normalization!r})"


def _isolate(pattern, text):
    """`text` cut into the matches of `pattern` and the (non-empty) stretches between them."""
    position = 0
    for match in pattern.finditer(text):
        if match.start() > position:
            yield text[position : match.start()]
        if match.end() > match.start():
            yield match.group()
        position = match.end()
    if position < len(text):
        yield text[position:]
