"""bert4keras3's plain-text helpers (its `snippets` module), with no Keras: string checks,
full-width to half-width conversion, splitting long texts, and longest common substrings and
subsequences (for aligning a generated text with its source)."""

import re


def is_string(s):
    """True for a `str`."""
    return isinstance(s, str)


def strQ2B(ustring):
    """Full-width characters (U+FF01..U+FF5E, the ideographic space) to their half-width forms."""
    characters = []
    for character in ustring:
        code = ord(character)
        if code == 0x3000:
            code = 0x20
        elif 0xFF01 <= code <= 0xFF5E:
            code -= 0xFEE0
        characters.append(chr(code))
    return "".join(characters)


def string_matching(s, keywords):
    """True when at least one of the regular expressions `keywords` is found in `s`."""
    return any(re.search(keyword, s) for keyword in keywords)


def convert_to_unicode(text, encoding="utf-8", errors="ignore"):
    """`text` as a `str`: bytes are decoded, anything else is returned as it is."""
    return text.decode(encoding, errors=errors) if isinstance(text, bytes) else text


convert_to_str = convert_to_unicode  # the same on Python 3, as in bert4keras3


def text_segmentate(text, maxlen, seps="\n", strips=None):
    """Splits `text` into pieces of at most `maxlen` characters where it can.

    The text is cut at `seps[0]` (kept at the end of each piece) and neighbouring pieces are
    joined while they fit; a piece still too long is split again at `seps[1]`, and so on. A piece
    with no separator left stays whole, even if longer than `maxlen`. `strips` are the characters
    stripped from both ends of every piece (besides whitespace).
    """
    text = text.strip().strip(strips)
    if not seps or len(text) <= maxlen:
        return [text]
    pieces = text.split(seps[0])
    texts, current = [], ""
    for index, piece in enumerate(pieces):
        if current and piece and len(current) + len(piece) > maxlen - 1:
            texts.extend(text_segmentate(current, maxlen, seps[1:], strips))
            current = ""
        current += piece if index + 1 == len(pieces) else piece + seps[0]
    if current:
        texts.extend(text_segmentate(current, maxlen, seps[1:], strips))
    return texts


def longest_common_substring(source, target):
    """The longest common contiguous run of two sequences.

    Returns `(length, (source_start, source_end, target_start, target_end))`; of several runs
    of that length, the one ending first in `source` (then in `target`).
    """
    best, span = 0, (0, 0, 0, 0)
    previous = [0] * (len(target) + 1)
    for i, s in enumerate(source, 1):
        current = [0] * (len(target) + 1)
        for j, t in enumerate(target, 1):
            if s == t:
                current[j] = previous[j - 1] + 1
                if current[j] > best:
                    best = current[j]
                    span = (i - best, i, j - best, j)
        previous = current
    return best, span


def longest_common_subsequence(source, target):
    """The longest common (not necessarily contiguous) subsequence of two sequences.

    Returns `(length, mapping)`, `mapping` the `(source_index, target_index)` pairs of one such
    subsequence, in order.
    """
    rows, columns = len(source), len(target)
    lengths = [[0] * (columns + 1) for _ in range(rows + 1)]
    for i in range(1, rows + 1):
        for j in range(1, columns + 1):
            if source[i - 1] == target[j - 1]:
                lengths[i][j] = lengths[i - 1][j - 1] + 1
            else:
                lengths[i][j] = max(lengths[i][j - 1], lengths[i - 1][j])
    mapping, i, j = [], rows, columns
    while i and j:
        if source[i - 1] == target[j - 1]:
            mapping.append((i - 1, j - 1))
            i, j = i - 1, j - 1
        elif lengths[i][j - 1] > lengths[i - 1][j]:
            j -= 1
        else:
            i -= 1
    return lengths[rows][columns], mapping[::-1]
