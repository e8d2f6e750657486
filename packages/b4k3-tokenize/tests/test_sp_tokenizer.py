"""SpTokenizer against sentencepiece itself, on unigram and BPE models trained here on generated
text. Reference: sentencepiece.SentencePieceProcessor; tolerance: exact equality of pieces and ids."""

import random
import sys

import numpy as np
import pytest
import sentencepiece

from b4k3_tokenize import SpTokenizer

SYLLABLES = ["ka", "to", "ri", "mu", "sen", "pa", "lo", "qu", "ex", "zh", "ing", "tion", "al"]
HANZI = "我们在北京大学学习自然语言处理你好世界中文"


def generated_lines(count, seed=0):
    """Pseudo-text: words of random syllables, some Chinese, some punctuation and digits."""
    rng = random.Random(seed)
    lines = []
    for _ in range(count):
        words = []
        for _ in range(rng.randint(3, 12)):
            kind = rng.random()
            if kind < 0.7:
                words.append("".join(rng.choice(SYLLABLES) for _ in range(rng.randint(1, 4))))
            elif kind < 0.85:
                words.append("".join(rng.choice(HANZI) for _ in range(rng.randint(1, 5))))
            else:
                words.append(rng.choice([",", ".", "!", "?", str(rng.randint(0, 999)), "Ça", "naïve"]))
        lines.append(" ".join(words))
    return lines


@pytest.fixture(scope="module", params=["unigram", "bpe"])
def sp_model(request, tmp_path_factory):
    folder = tmp_path_factory.mktemp(f"sp_{request.param}")
    corpus = folder / "corpus.txt"
    corpus.write_text("\n".join(generated_lines(3000)), encoding="utf-8")
    prefix = folder / "model"
    sentencepiece.SentencePieceTrainer.train(
        input=str(corpus),
        model_prefix=str(prefix),
        model_type=request.param,
        vocab_size=300,
        character_coverage=1.0,
        pad_id=0,
        unk_id=1,
        bos_id=2,
        eos_id=3,
        bos_piece="<bos>",
        eos_piece="<eos>",
        user_defined_symbols=["</s>"],
        minloglevel=2,
    )
    path = f"{prefix}.model"
    return path, sentencepiece.SentencePieceProcessor(model_file=path)


TEXTS = [*generated_lines(40, seed=1), "", " ", "unseen 😀 symbols ∑ and Ωmega", "  spaced   out  "]


def test_pieces_and_ids_match_sentencepiece(sp_model):
    path, reference = sp_model
    tokenizer = SpTokenizer(path, token_start=None, token_end=None)
    for text in TEXTS:
        assert tokenizer.tokenize(text) == reference.encode(text, out_type=str), text
        assert tokenizer.encode(text)[0] == reference.encode(text), text


def test_t5_style_appends_the_end_token(sp_model):
    path, reference = sp_model
    tokenizer = SpTokenizer(path, token_start=None, token_end="</s>")
    end_id = reference.piece_to_id("</s>")
    for text in TEXTS:
        assert tokenizer.encode(text)[0] == [*reference.encode(text), end_id], text


def test_spiece_model_with_t5s_layout_round_trips_with_t5s_settings(tmp_path):
    """A model laid out as T5's spiece.model (pad 0, `</s>` 1, unk 2, no bos): T5's settings end every
    text with id 1 and nothing else, and decoding gives sentencepiece's text back; bert4keras3's
    defaults are refused, naming the settings to pass."""
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(generated_lines(2000)), encoding="utf-8")
    sentencepiece.SentencePieceTrainer.train(
        input=str(corpus),
        model_prefix=str(tmp_path / "spiece"),
        vocab_size=200,
        character_coverage=1.0,
        pad_id=0,
        eos_id=1,
        unk_id=2,
        bos_id=-1,
        minloglevel=2,
    )
    reference = sentencepiece.SentencePieceProcessor(model_file=str(tmp_path / "spiece.model"))
    with pytest.raises(ValueError, match=r"no start piece '\[CLS\]'.*token_start=None, token_end='</s>'"):
        SpTokenizer(str(tmp_path / "spiece.model"))
    tokenizer = SpTokenizer(str(tmp_path / "spiece.model"), token_start=None, token_end="</s>")
    assert (tokenizer._token_pad_id, tokenizer._token_end_id) == (0, 1)
    for text in TEXTS:
        token_ids, _ = tokenizer.encode(text)
        assert token_ids == [*reference.encode(text), 1], text
        assert tokenizer.decode(token_ids[:-1]) == reference.decode(reference.encode(text)), text


def test_defaults_are_bert4keras3s_cls_and_sep(tmp_path):
    """A DeBERTa-v3-like model, with `[CLS]` / `[SEP]` among its pieces: `SpTokenizer(path)` wraps every
    text in their sentencepiece ids, as bert4keras3's did."""
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(generated_lines(2000)), encoding="utf-8")
    sentencepiece.SentencePieceTrainer.train(
        input=str(corpus),
        model_prefix=str(tmp_path / "spm"),
        vocab_size=200,
        character_coverage=1.0,
        pad_id=0,
        unk_id=3,
        bos_id=-1,
        eos_id=-1,
        control_symbols=["[CLS]", "[SEP]", "[MASK]"],
        minloglevel=2,
    )
    reference = sentencepiece.SentencePieceProcessor(model_file=str(tmp_path / "spm.model"))
    cls_id, sep_id = reference.piece_to_id("[CLS]"), reference.piece_to_id("[SEP]")
    assert reference.unk_id() not in (cls_id, sep_id)
    tokenizer = SpTokenizer(str(tmp_path / "spm.model"))
    assert (tokenizer._token_start_id, tokenizer._token_end_id) == (cls_id, sep_id)
    for text in TEXTS:
        assert tokenizer.encode(text)[0] == [cls_id, *reference.encode(text), sep_id], text
    token_ids, segment_ids = tokenizer.encode(TEXTS[0], TEXTS[1])
    first, second = reference.encode(TEXTS[0]), reference.encode(TEXTS[1])
    assert token_ids == [cls_id, *first, sep_id, *second, sep_id]
    assert segment_ids == [0] * (len(first) + 2) + [1] * (len(second) + 1)


def test_deberta_v3_layout_gives_hugging_faces_deberta_v2_tokenizer_ids(tmp_path):
    """A model laid out as DeBERTa-v3's `spm.model` ([PAD], [CLS], [SEP], [UNK] as ids 0-3):
    `SpTokenizer(path)` gives the ids and segment ids of transformers' `DebertaV2Tokenizer` loaded
    from the same file, for single texts and pairs."""
    import transformers

    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(generated_lines(2000)), encoding="utf-8")
    sentencepiece.SentencePieceTrainer.train(
        input=str(corpus),
        model_prefix=str(tmp_path / "spm"),
        vocab_size=200,
        character_coverage=1.0,
        pad_id=0,
        pad_piece="[PAD]",
        bos_id=1,
        bos_piece="[CLS]",
        eos_id=2,
        eos_piece="[SEP]",
        unk_id=3,
        unk_piece="[UNK]",
        minloglevel=2,
    )
    reference = transformers.DebertaV2Tokenizer.from_pretrained(str(tmp_path))
    tokenizer = SpTokenizer(str(tmp_path / "spm.model"))
    for text in TEXTS:
        assert tokenizer.encode(text)[0] == reference(text)["input_ids"], text
    token_ids, segment_ids = tokenizer.encode(TEXTS[0], TEXTS[1])
    expected = reference(TEXTS[0], TEXTS[1])
    assert (token_ids, segment_ids) == (expected["input_ids"], expected["token_type_ids"])


def test_gemma_style_wraps_in_bos_and_eos(sp_model):
    path, reference = sp_model
    tokenizer = SpTokenizer(path, token_start="<bos>", token_end="<eos>")
    for text in TEXTS:
        assert tokenizer.encode(text)[0] == [2, *reference.encode(text), 3], text
    assert tokenizer._token_start_id == 2
    assert tokenizer._token_end_id == 3
    assert tokenizer._token_pad_id == 0


def test_decode_matches_sentencepiece_for_any_integer_ids(sp_model):
    path, reference = sp_model
    tokenizer = SpTokenizer(path, token_start="<bos>", token_end="<eos>")
    for text in TEXTS[:10]:
        token_ids, _ = tokenizer.encode(text)
        expected = reference.decode(token_ids)
        assert tokenizer.decode(token_ids) == expected
        assert tokenizer.decode(np.array(token_ids)) == expected
        assert tokenizer.decode(np.array(token_ids, dtype=np.int32)) == expected
        assert tokenizer.decode([np.int64(i) for i in token_ids]) == expected
        assert tokenizer.decode(tuple(token_ids)) == expected


def test_decode_refuses_ids_that_are_not_integers(sp_model):
    tokenizer = SpTokenizer(sp_model[0], token_start=None, token_end=None)
    with pytest.raises(TypeError, match="integers"):
        tokenizer.decode([1.5, 2.0])


def test_pair_encoding_and_truncation(sp_model):
    tokenizer = SpTokenizer(sp_model[0], token_start="<bos>", token_end="<eos>")
    first, second = TEXTS[0], TEXTS[1]
    token_ids, segment_ids = tokenizer.encode(first, second, maxlen=12)
    assert len(token_ids) == 12
    assert token_ids[0] == 2
    assert token_ids.count(3) == 2
    assert segment_ids == [0] * segment_ids.count(0) + [1] * segment_ids.count(1)


def test_missing_model_file_names_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"absent\.model"):
        SpTokenizer(str(tmp_path / "absent.model"))


def test_unknown_end_piece_is_refused(sp_model):
    with pytest.raises(ValueError, match="'\\[SEP\\]'"):
        SpTokenizer(sp_model[0], token_start=None, token_end="[SEP]")


def test_model_without_the_default_pieces_names_t5s_and_gemmas_settings(sp_model):
    with pytest.raises(ValueError, match="T5") as error:
        SpTokenizer(sp_model[0])
    message = str(error.value)
    assert "no start piece '[CLS]'" in message
    assert "token_start=None, token_end='</s>'" in message
    assert "token_start='<bos>', token_end='<eos>'" in message


def test_without_sentencepiece_the_error_says_how_to_install(monkeypatch, sp_model):
    monkeypatch.setitem(sys.modules, "sentencepiece", None)
    with pytest.raises(ImportError, match=r"pip install sentencepiece"):
        SpTokenizer(sp_model[0])
