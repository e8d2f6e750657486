"""bert4keras behaviours of the WordPiece Tokenizer that Hugging Face has no counterpart for:
decode spacing, rematch offsets, pre_tokenize, token_translate, vocab I/O and bad input."""

import re

import numpy as np
import pytest

from b4k3_tokenize import Tokenizer, load_vocab, save_vocab


@pytest.fixture(scope="module")
def tokenizer(minilm_vocab):
    return Tokenizer(str(minilm_vocab), do_lower_case=True)


def test_decode_spacing_rules(tokenizer):
    token_ids, _ = tokenizer.encode("hello worlds, playing中国. a")
    assert tokenizer.decode(token_ids) == "hello worlds, playing中国. a"
    assert tokenizer.decode(tokenizer.encode("it ' s 3. 14 ( ok )")[0]) == "it's 3.14(ok)"


def test_decode_accepts_numpy_ids(tokenizer):
    token_ids, _ = tokenizer.encode("hello world")
    assert tokenizer.decode(np.array(token_ids)) == tokenizer.decode(token_ids) == "hello world"
    assert tokenizer.decode([np.int64(i) for i in token_ids]) == "hello world"


def test_rematch_maps_tokens_to_original_characters(tokenizer):
    text = "Héllo Worlds, 中国"
    expected = [[], [0, 1, 2, 3, 4], [6, 7, 8, 9, 10, 11], [12], [14], [15], []]
    assert tokenizer.rematch(text, tokenizer.tokenize(text)) == expected


def test_rematch_keeps_indices_of_characters_that_lowercase_to_two(tokenizer):
    text = "İstanbul ok"  # "İ".lower() is two characters
    mapping = tokenizer.rematch(text, tokenizer.tokenize(text))
    assert mapping[1][0] == 0
    assert mapping[-2] == [9, 10]


def test_pre_tokenize_keeps_vocab_words_whole(tokenizer):
    segmenter = Tokenizer(tokenizer._token_dict, do_lower_case=True, pre_tokenize=lambda text: text.split("|"))
    assert segmenter.tokenize("hello|unaffable") == ["[CLS]", "hello", "una", "##ffa", "##ble", "[SEP]"]


def test_token_translate_applies_and_decode_still_reads(minilm_vocab):
    translating = Tokenizer(str(minilm_vocab), do_lower_case=True, token_translate={"hello": "hi"})
    assert translating.tokenize("hello world") == ["[CLS]", "hi", "world", "[SEP]"]


def test_token_lists_are_encoded_without_being_altered(tokenizer):
    first, second = tokenizer.tokenize("one two three four five"), tokenizer.tokenize("six seven")
    first_copy = list(first)
    token_ids, segment_ids = tokenizer.encode(first, second, maxlen=7)
    assert tokenizer.ids_to_tokens(token_ids) == ["[CLS]", "one", "two", "[SEP]", "six", "seven", "[SEP]"]
    assert segment_ids == [0, 0, 0, 0, 1, 1, 1]
    assert first == first_copy


def test_vocab_round_trip_and_simplified(tmp_path, minilm_vocab):
    token_dict = load_vocab(minilm_vocab)
    assert len(token_dict) == 30522
    assert token_dict["[CLS]"] == 101
    save_vocab(tmp_path / "vocab.txt", token_dict)
    assert load_vocab(tmp_path / "vocab.txt") == token_dict

    simplified, keep_tokens = load_vocab(minilm_vocab, simplified=True, startswith=["[PAD]", "[UNK]", "[CLS]"])
    assert list(simplified)[:3] == ["[PAD]", "[UNK]", "[CLS]"]
    assert keep_tokens[:3] == [0, 100, 101]
    assert "##，" not in simplified
    assert "'s" not in simplified
    assert "中" in simplified
    assert all(token_dict[token] == keep_tokens[new_id] for token, new_id in simplified.items())
    assert len(simplified) == len(keep_tokens) < len(token_dict)


def test_missing_vocab_file_names_the_path(tmp_path):
    missing = tmp_path / "nowhere" / "vocab.txt"
    with pytest.raises(FileNotFoundError, match="nowhere"):
        Tokenizer(str(missing))


@pytest.mark.parametrize(
    ("kwargs", "missing"),
    [
        ({"token_dict": {"[UNK]": 0, "a": 1}}, "start token '[CLS]'"),
        ({"token_dict": {"[UNK]": 0, "a": 1}, "token_start": None}, "end token '[SEP]'"),
        ({"token_dict": {"a": 0}, "token_start": None, "token_end": None}, "unk token '[UNK]'"),
        ({"token_dict": {"[UNK]": 0, "[CLS]": 1}, "token_end": "</s>"}, "end token '</s>'"),
    ],
)
def test_vocab_without_a_configured_token_is_refused(kwargs, missing):
    with pytest.raises(ValueError, match=re.escape(missing)):
        Tokenizer(**kwargs)


def test_vocab_without_start_and_end_works_when_they_are_off():
    tokenizer = Tokenizer({"[UNK]": 0, "a": 1}, token_start=None, token_end=None)
    assert tokenizer.encode("a b") == ([1, 0], [0, 0])


@pytest.mark.parametrize("text", [None, 42, b"bytes", ["not", 3]])
def test_non_string_text_is_a_type_error(tokenizer, text):
    with pytest.raises(TypeError):
        tokenizer.tokenize(text)
    with pytest.raises(TypeError):
        tokenizer.encode("fine", text) if text is not None else tokenizer.encode(text)
