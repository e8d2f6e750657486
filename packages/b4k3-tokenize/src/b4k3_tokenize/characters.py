"""Character classes and text normalization of BERT's basic tokenizer.

The classes are those of bert4keras, with two corrections that make b4k3 agree with Hugging Face's
BERT tokenizer (and with what the characters mean): line and paragraph separators (Zl, Zp) are
whitespace, and private-use characters (Co) are dropped like other invisible format and control
characters. Lower-casing is per character, as in Hugging Face: a word-final capital sigma becomes
`σ`, not `ς`.

Per-character Python loops are slow, so each class is also compiled into one regular expression
over code-point ranges, built once from `unicodedata` the first time it is needed.
"""

import functools
import re
import sys
import unicodedata

CJK_RANGES = (
    (0x4E00, 0x9FFF),
    (0x3400, 0x4DBF),
    (0x20000, 0x2A6DF),
    (0x2A700, 0x2B73F),
    (0x2B740, 0x2B81F),
    (0x2B820, 0x2CEAF),
    (0xF900, 0xFAFF),
    (0x2F800, 0x2FA1F),
)

# Full-width and CJK punctuation after which `decode` writes no space (bert4keras' list).
CJK_PUNCTUATION = (
    "\uff02\uff03\uff04\uff05\uff06\uff07\uff08\uff09\uff0a\uff0b\uff0c\uff0d\uff0f\uff1a\uff1b"
    "\uff1c\uff1d\uff1e\uff20\uff3b\uff3c\uff3d\uff3e\uff3f\uff40\uff5b\uff5c\uff5d\uff5e\uff5f"
    "\uff60\uff62\uff63\uff64\u3000\u3001\u3003\u3008\u3009\u300a\u300b\u300c\u300d\u300e\u300f"
    "\u3010\u3011\u3014\u3015\u3016\u3017\u3018\u3019\u301a\u301b\u301c\u301d\u301e\u301f\u3030"
    "\u303e\u303f\u2013\u2014\u2018\u2019\u201b\u201c\u201d\u201e\u201f\u2026\u2027\ufe4f\ufe51"
    "\ufe54\u00b7\uff01\uff1f\uff61\u3002"
)

_DROPPED_CATEGORIES = {"Cc", "Cf", "Co", "Cs"}
_KEPT_CONTROLS = {"\t", "\n", "\r"}


def is_space(ch):
    """Whitespace: space, tab, newline, carriage return and the Z* separators."""
    return ch in " \t\n\r" or unicodedata.category(ch) in ("Zs", "Zl", "Zp")


def is_punctuation(ch):
    """ASCII symbols and punctuation (`$`, `+`, `^`, ... count too), or any Unicode P* character."""
    code = ord(ch)
    ascii_punctuation = 33 <= code <= 47 or 58 <= code <= 64 or 91 <= code <= 96 or 123 <= code <= 126
    return ascii_punctuation or unicodedata.category(ch).startswith("P")


def is_cjk_character(ch):
    """A CJK unified or compatibility ideograph: BERT treats each as a word of its own."""
    code = ord(ch)
    return any(low <= code <= high for low, high in CJK_RANGES)


def is_control(ch):
    """An invisible character the tokenizer drops: controls other than tab/newline/CR, format and
    private-use characters, surrogates, NUL and the replacement character U+FFFD."""
    return _is_dropped(ch, unicodedata.category(ch))


def _is_dropped(ch, category):
    return ch not in _KEPT_CONTROLS and (category in _DROPPED_CATEGORIES or ch == "\ufffd")


def stem(token):
    """A WordPiece token without its continuation prefix: `##ing` -> `ing`."""
    return token[2:] if token[:2] == "##" else token


def _character_class(codes):
    """A regex character class matching the given code points, written as ranges."""
    ranges = []
    for code in sorted(set(codes)):
        if ranges and ranges[-1][1] == code - 1:
            ranges[-1][1] = code
        else:
            ranges.append([code, code])
    return "[" + "".join(re.escape(chr(low)) + "-" + re.escape(chr(high)) for low, high in ranges) + "]"


@functools.cache
def _patterns():
    """The character classes as compiled regexes, from one scan of the Unicode categories."""
    categories = [unicodedata.category(chr(code)) for code in range(sys.maxunicode + 1)]
    ascii_punctuation = [code for code in range(128) if is_punctuation(chr(code))]
    cjk = [code for low, high in CJK_RANGES for code in range(low, high + 1)]
    return {
        "dropped": re.compile(
            _character_class(code for code, category in enumerate(categories) if _is_dropped(chr(code), category))
        ),
        "split_off": re.compile(
            _character_class(
                [code for code, category in enumerate(categories) if category[0] == "P"] + ascii_punctuation + cjk
            )
        ),
        "combining_mark": re.compile(
            _character_class(code for code, category in enumerate(categories) if category == "Mn")
        ),
    }


def lowercase_and_normalize(text):
    """Lower-cases per character, decomposes (NFD) and strips combining marks: accents go."""
    if text.isascii():
        return text.lower()
    # str.lower turns a word-final Σ into ς; per character (as Hugging Face does) it stays σ.
    text = "".join(map(str.lower, text)) if "Σ" in text else text.lower()
    return _patterns()["combining_mark"].sub("", unicodedata.normalize("NFD", text))


def split_words(text):
    """Drops invisible characters, then splits on whitespace, with each punctuation mark and CJK
    character a word of its own."""
    patterns = _patterns()
    text = patterns["dropped"].sub("", text)
    return patterns["split_off"].sub(r" \g<0> ", text).split()


def normalize_with_offsets(text, do_lower_case):
    """The text as the tokenizer sees it before splitting, and for each of its characters the index
    of the original character it came from (one character may normalize to several or to none)."""
    normalized, offsets = [], []
    for index, ch in enumerate(text):
        if do_lower_case:
            ch = lowercase_and_normalize(ch)
        ch = _patterns()["dropped"].sub("", ch)
        normalized.append(ch)
        offsets.extend([index] * len(ch))
    return "".join(normalized), offsets
