"""RWKVWorldTokenizer against BlinkDL's `rwkv` package (`rwkv.rwkv_tokenizer.TRIE_TOKENIZER`, 0.8.32)
over the vocabulary that package ships. Tolerance: exact equality of ids and of decoded text; the
one intended difference is decoding bytes that are not UTF-8 (U+FFFD per bad sequence here, one
U+FFFD for the whole text there)."""

import functools
import importlib.util
import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rwkv.rwkv_tokenizer import TRIE_TOKENIZER

from b4k3_tokenize import RWKVWorldTokenizer

CODE = 'def f(x):\n    """Square."""\n    return x ** 2  # 2x\n\n\n\tif a != b:  pass\r\n'
EXTRA_TEXTS = [
    CODE,
    'fn main() { println!("{}", vec![1, 2, 3].iter().sum::<i32>()); }',
    "a  b   c    d\t\t\n\n  \n",
    " " * 300,
    "\n" * 70 + "\t" * 40 + "\r\n" * 20,
    "-" * 200 + "=" * 81,
    "User: hi\n\nAssistant: hello<|endoftext|>",
    "\\n \\x00 \\u2028 '\"' b'bytes' \"\"\" ''' \\\\",
    "numbers 3.14159, 2026-12-05, 1,000,000 and ½ ² ① ٣",
    "我" * 50 + "。" * 10 + "你好" * 40,
    "emoji 🧑🏽‍💻🏳️‍🌈 👩‍❤️‍💋‍👨 " * 5,
]


@functools.cache
def tokenizers():
    """(ours, the reference), both over the vocabulary of the installed `rwkv` package."""
    ours = RWKVWorldTokenizer.from_rwkv_package()
    return ours, TRIE_TOKENIZER(ours.vocab_path)


@pytest.fixture(scope="module")
def ours():
    return tokenizers()[0]


@pytest.fixture(scope="module")
def reference():
    return tokenizers()[1]


def test_ids_and_text_equal_the_rwkv_package(ours, reference, corpus):
    for text in [*corpus, *EXTRA_TEXTS, "\n".join(corpus)]:
        ids = ours.encode(text)
        assert ids == reference.encode(text), text
        assert ours.decode(ids) == reference.decode(ids) == text


def test_the_empty_text_has_no_ids(ours):
    assert ours.encode("") == []
    assert ours.decode([]) == ""


def test_any_bytes_encode_as_the_rwkv_package_does(ours, reference):
    generator = random.Random(19)
    for _ in range(200):
        data = bytes(generator.choices(range(256), k=generator.randrange(1, 200)))
        ids = ours.encode_bytes(data)
        assert ids == reference.encodeBytes(data)
        assert ours.decode_bytes(ids) == data


def test_bytes_that_are_not_utf8_decode_to_replacement_characters(ours):
    ids = ours.encode_bytes(b"ok \xff\xfe then \xe4\xb8")
    assert ours.decode(ids) == "ok \ufffd\ufffd then \ufffd"


def test_ids_come_back_from_numpy(ours):
    ids = ours.encode("Hello world")
    assert ours.decode(np.array(ids, dtype=np.int32)) == "Hello world"


# Any code point but surrogates (UTF-8 cannot hold them), mixed with pieces RWKV's vocab merges.
PIECES = [" ", "    ", "\n\n", "\t", " the", "ing", "中文", "😀", "é", "\r\n"]
TEXTS = st.lists(st.characters(codec="utf-8") | st.sampled_from(PIECES), max_size=60).map("".join)


@settings(max_examples=300, deadline=None)
@given(text=TEXTS)
def test_any_text_round_trips_with_the_rwkv_package_ids(text):
    ours, reference = tokenizers()
    ids = ours.encode(text)
    assert ids == reference.encode(text)
    assert ours.decode(ids) == text


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("3 'ab' 3", r"the token b'ab' is 2 bytes long, the line says 3"),
        ("3 'é' 1", r"the token b'\\xc3\\xa9' is 2 bytes long, the line says 1"),
        ("3 __import__('os').system('touch pwned') 1", r"expected '<id> <str or bytes literal> <length in bytes>'"),
        ("3 'ab", r"expected '<id> <str or bytes literal> <length in bytes>'"),
        ("x 'ab' 2", r"expected '<id> <str or bytes literal> <length in bytes>'"),
        ("3 12 2", r"must be a non-empty str or bytes literal, got '12'"),
        ("3 '' 0", r"must be a non-empty str or bytes literal"),
        ("3 '\\ud800' 3", r"is not valid Unicode \(a lone surrogate\)"),
        ("1 'b' 1", r"id 1 is given a second time"),
        ("3 b'a' 1", r"token b'a' already has id 1"),
    ],
)
def test_a_malformed_vocab_line_is_a_value_error_naming_file_and_line(tmp_path, line, message):
    path = tmp_path / "vocab.txt"
    path.write_text(f"1 'a' 1\n2 'b' 1\n{line}\n", encoding="utf-8")
    with pytest.raises(ValueError, match=rf"vocab\.txt:3: .*{message}"):
        RWKVWorldTokenizer(path)
    assert not (tmp_path / "pwned").exists()


def test_a_small_vocab_lacking_a_byte_names_it_on_encode(tmp_path):
    path = tmp_path / "vocab.txt"
    path.write_text("1 'a' 1\n2 'ab' 2\n3 b'\\xff' 1\n\n", encoding="utf-8")
    tokenizer = RWKVWorldTokenizer(path)
    assert tokenizer.encode_bytes(b"aab\xffa") == [1, 2, 3, 1]
    with pytest.raises(ValueError, match=r"has no token for byte 0x63 \(at byte 1 of the text\)"):
        tokenizer.encode("ac")


@pytest.mark.parametrize("token_id", [65530, 70_000, -1, 0])
def test_an_id_outside_the_vocab_is_a_value_error_naming_it(ours, token_id):
    with pytest.raises(ValueError, match=rf"id {token_id} is not in the RWKV world vocabulary \(ids 1 to 65529\)"):
        ours.decode([33155, token_id])


def test_the_end_of_text_id_says_to_drop_it(ours):
    with pytest.raises(ValueError, match=r"end-of-text token, which has no text; drop it"):
        ours.decode([0])


def test_a_list_of_texts_is_a_type_error(ours):
    with pytest.raises(TypeError, match=r"text must be a str, got list"):
        ours.encode(["Hello", "world"])


def test_from_rwkv_package_without_the_package_says_to_install_it(monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ImportError, match=r"pip install rwkv, or pass the path of rwkv_vocab_v20230424\.txt"):
        RWKVWorldTokenizer.from_rwkv_package()
