"""The compiled character classes agree with their one-character definitions everywhere."""

import sys

from b4k3_tokenize import characters


def test_python_whitespace_is_exactly_the_tokenizer_whitespace_once_controls_are_dropped():
    """split_words relies on str.split(): every character it splits on must be one the tokenizer
    calls space or drops, and every tokenizer space must be one str.split() splits on."""
    for code in range(sys.maxunicode + 1):
        ch = chr(code)
        if characters.is_space(ch):
            assert ch.isspace(), hex(code)
        elif ch.isspace():
            assert characters.is_control(ch), hex(code)


def test_split_words_matches_the_character_by_character_rules():
    text = "a,b 中文\u200bc\x00d\u2028e\ue000f\u3000g$h"
    words, current = [], ""
    for ch in text:
        if characters.is_punctuation(ch) or characters.is_cjk_character(ch):
            words += [current, ch] if current else [ch]
            current = ""
        elif characters.is_space(ch):
            words += [current] if current else []
            current = ""
        elif not characters.is_control(ch):
            current += ch
    words += [current] if current else []
    assert characters.split_words(text) == words == ["a", ",", "b", "中", "文", "cd", "ef", "g", "$", "h"]
