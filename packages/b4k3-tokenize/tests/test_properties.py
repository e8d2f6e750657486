"""Properties that hold for any Unicode text, checked with hypothesis."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from b4k3_tokenize import Tokenizer, lowercase_and_normalize
from b4k3_tokenize.characters import is_control

# Any code point, surrogates included; weighted towards the characters tokenizers get wrong.
TRICKY = "İΣσςßﬁǅ\u0300\u200b\u2028\u3000\x00\x85\ufffd\ue000中文한😀👍🏽.,!?'\"()[]##"
TEXTS = st.text(st.characters(codec=None) | st.sampled_from(TRICKY), max_size=60)


@pytest.fixture(scope="module", params=[True, False], ids=["uncased", "cased"])
def tokenizer(request, minilm_vocab):
    return Tokenizer(str(minilm_vocab), do_lower_case=request.param)


def normalize(text, do_lower_case):
    """The text as the tokenizer compares it with its tokens."""
    if do_lower_case:
        text = lowercase_and_normalize(text)
    return "".join(ch for ch in text if not is_control(ch))


@settings(max_examples=300, deadline=None)
@given(text=TEXTS)
def test_any_text_encodes_and_rematches(tokenizer, text):
    tokens = tokenizer.tokenize(text)
    token_ids, segment_ids = tokenizer.encode(text)
    assert len(token_ids) == len(segment_ids) == len(tokens)

    mapping = tokenizer.rematch(text, tokens)
    assert len(mapping) == len(tokens)
    for i, (token, offsets) in enumerate(zip(tokens, mapping, strict=True)):
        assert all(0 <= offset < len(text) for offset in offsets)
        if token in ("[CLS]", "[SEP]", "[UNK]"):
            continue
        normalized = normalize("".join(text[offset] for offset in dict.fromkeys(offsets)), tokenizer._do_lower_case)
        # A character may normalize into pieces of two tokens (a Hangul syllable decomposes into
        # jamo): then the token is part of what its characters normalize to, otherwise all of it.
        neighbours = {offset for other in mapping[i - 1 : i] + mapping[i + 1 : i + 2] for offset in other}
        if neighbours & set(offsets):
            assert tokenizer.stem(token) in normalized
        else:
            assert normalized == tokenizer.stem(token)


@settings(max_examples=300, deadline=None)
@given(text=TEXTS)
def test_decode_of_encode_is_stable(tokenizer, text):
    once = tokenizer.decode(tokenizer.encode(text)[0])
    twice = tokenizer.decode(tokenizer.encode(once)[0])
    assert tokenizer.decode(tokenizer.encode(twice)[0]) == twice
