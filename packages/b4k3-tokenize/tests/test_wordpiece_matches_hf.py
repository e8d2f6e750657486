"""Token ids identical to Hugging Face's BertTokenizer (transformers), on the real uncased MiniLM
vocab and on a cased vocab with CJK characters. Reference: transformers.BertTokenizer; tolerance:
exact equality of ids."""

import pytest
import transformers

from b4k3_tokenize import Tokenizer

VOCABS = [("minilm_vocab", True), ("minilm_vocab", False), ("cased_cjk_vocab", False), ("cased_cjk_vocab", True)]


@pytest.fixture(params=VOCABS, ids=lambda vocab: f"{vocab[0]}-{'uncased' if vocab[1] else 'cased'}")
def tokenizers(request):
    vocab_fixture, do_lower_case = request.param
    vocab = request.getfixturevalue(vocab_fixture)
    ours = Tokenizer(str(vocab), do_lower_case=do_lower_case)
    reference = transformers.BertTokenizer(str(vocab), do_lower_case=do_lower_case)
    return ours, reference


def test_single_texts_match_hf(tokenizers, corpus):
    ours, reference = tokenizers
    for text in corpus:
        # HF limits words to 100 characters, bert4keras to 200: tested apart below.
        if any(len(word) > 100 for word in text.split()):
            continue
        assert ours.encode(text)[0] == reference(text)["input_ids"], text


@pytest.mark.parametrize("maxlen", [4, 9, 16, 33])
def test_single_text_truncation_matches_hf(tokenizers, corpus, maxlen):
    ours, reference = tokenizers
    for text in corpus[:12]:
        expected = reference(text, truncation=True, max_length=maxlen)["input_ids"]
        assert ours.encode(text, maxlen=maxlen)[0] == expected, text
        assert ours.tokens_to_ids(ours.tokenize(text, maxlen=maxlen)) == expected, text


def test_pairs_with_truncation_match_hf_when_lengths_differ(tokenizers, corpus):
    ours, reference = tokenizers
    pairs = [(corpus[i], corpus[j]) for i in range(12) for j in range(12) if i != j]
    compared = 0
    for first, second in pairs:
        n_first, n_second = len(ours.tokenize(first)) - 2, len(ours.tokenize(second)) - 2
        for maxlen in (8, 13, 24, 64):
            # Both rules trim the longer text; they differ only on the order of trimming when the
            # two reach equal length (see the tie test), so compare pairs that stay unequal.
            if min(n_first, n_second) + 1 > (maxlen - 3) / 2 and n_first + n_second + 3 > maxlen:
                continue
            expected = reference(first, second, truncation="longest_first", max_length=maxlen)
            token_ids, segment_ids = ours.encode(first, second, maxlen=maxlen)
            assert token_ids == expected["input_ids"], (first, second, maxlen)
            assert segment_ids == expected["token_type_ids"], (first, second, maxlen)
            compared += 1
    assert compared > 100


def test_pair_truncation_tie_drops_from_the_first_text_as_bert4keras_does(minilm_vocab):
    """bert4keras' rule, kept on purpose: on a tie the first text loses a token (HF: the second)."""
    tokenizer = Tokenizer(str(minilm_vocab), do_lower_case=True)
    token_ids, segment_ids = tokenizer.encode("hello world playing", "play 中国 hello", maxlen=8)
    assert tokenizer.ids_to_tokens(token_ids) == ["[CLS]", "hello", "world", "[SEP]", "play", "中", "国", "[SEP]"]
    assert segment_ids == [0, 0, 0, 0, 1, 1, 1, 1]


def test_word_maxlen_is_bert4keras_not_hf(minilm_vocab):
    """bert4keras splits words up to `word_maxlen` (200) characters; HF sends words over 100 to
    [UNK]. Longer than `word_maxlen`, the whole word is one [UNK]."""
    tokenizer = Tokenizer(str(minilm_vocab), do_lower_case=True)
    reference = transformers.BertTokenizer(str(minilm_vocab), do_lower_case=True)
    word = "unbelievably" * 12  # 144 characters
    assert reference.tokenize(word) == ["[UNK]"]
    pieces = tokenizer.tokenize(word)[1:-1]
    assert len(pieces) > 12
    assert "".join(piece.removeprefix("##") for piece in pieces) == word
    long_word = "unbelievably" * 17  # 204 characters
    assert tokenizer.encode(long_word)[0] == [101, tokenizer._token_unk_id, 102]
    hf_like = Tokenizer(str(minilm_vocab), do_lower_case=True, word_maxlen=100)
    assert hf_like.encode(word)[0] == reference(word)["input_ids"]


def test_special_tokens_in_the_text_are_split_as_bert4keras_does(minilm_vocab):
    """HF keeps "[SEP]" typed in the text as the special token; bert4keras tokenizes it as text."""
    tokenizer = Tokenizer(str(minilm_vocab), do_lower_case=True)
    assert tokenizer.tokenize("a [SEP] b") == ["[CLS]", "a", "[", "sep", "]", "b", "[SEP]"]
