"""Misuses of the tokenizers named in the error: a list of texts given to encode, a maxlen too
small for the special tokens, an id outside the vocabulary given to decode; and the one warning
for an uncased vocab used without do_lower_case."""

import warnings

import pytest

from b4k3_tokenize import Tokenizer

VOCAB = {token: index for index, token in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "hello", "world", "##s"])}


@pytest.fixture(scope="module")
def tokenizer(minilm_vocab):
    return Tokenizer(str(minilm_vocab), do_lower_case=True)


def test_a_list_of_texts_is_a_type_error_saying_what_to_pass(tokenizer):
    with pytest.raises(TypeError, match=r"'hello world' is not a token: pass one text .*per call"):
        tokenizer.encode(["hello world", "how are you"])
    with pytest.raises(TypeError, match=r"second_text is a list.*'big world' is not a token"):
        tokenizer.encode("hello", ["big world"])


def test_token_lists_still_encode(tokenizer):
    tokens = tokenizer.tokenize("Hello worlds, supercalifragilisticexpialidocious!")
    assert tokenizer.encode(tokens) == tokenizer.encode("Hello worlds, supercalifragilisticexpialidocious!")


@pytest.mark.parametrize("maxlen", [0, 1, 2, -3, 2.5, True])
def test_maxlen_without_room_for_a_token_is_refused_naming_it(tokenizer, maxlen):
    with pytest.raises(ValueError, match=rf"maxlen must be an int greater than 2 .*got {maxlen!r}"):
        tokenizer.encode("hello world", maxlen=maxlen)
    with pytest.raises(ValueError, match=rf"maxlen must be an int greater than 2 .*got {maxlen!r}"):
        tokenizer.tokenize("hello world", maxlen=maxlen)


def test_maxlen_of_a_pair_counts_its_three_special_tokens(tokenizer):
    with pytest.raises(ValueError, match=r"greater than 3 .*got 3"):
        tokenizer.encode("hello", "world", maxlen=3)
    token_ids, segment_ids = tokenizer.encode("hello there", "big world", maxlen=5)
    assert tokenizer.decode(token_ids) == "hello big"
    assert segment_ids == [0, 0, 0, 1, 1]
    assert len(tokenizer.encode("hello world", maxlen=3)[0]) == 3


@pytest.mark.parametrize("bad_id", [30_522, 10**9, -1])
def test_decode_of_an_id_outside_the_vocabulary_names_it(tokenizer, bad_id):
    with pytest.raises(ValueError, match=rf"id {bad_id} is outside the vocabulary \(ids 0\.\.30521\)"):
        tokenizer.decode([101, bad_id, 102])


def test_uncased_vocab_without_do_lower_case_warns_once():
    tokenizer = Tokenizer(VOCAB)
    with pytest.warns(UserWarning, match="do_lower_case=True"):
        assert tokenizer.encode("Hello world")[0] == [2, 1, 5, 3]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tokenizer.encode("Hello again")
        Tokenizer(VOCAB, do_lower_case=True).encode("Hello world")
        Tokenizer({**VOCAB, "Hello": 7}).encode("Hello world")  # a cased vocab
