"""What BPETokenizer refuses, and how chat templates are contained: files it cannot read exactly
are errors naming the file and the setting; templates run in Jinja's immutable sandbox."""

import json

import jinja2
import pytest
from gguf import GGUFWriter

from b4k3_tokenize import BPETokenizer, render_chat_template

TOKENS = ["<|endoftext|>", "a", "b", "ab", "Ġ"]


def write_tokenizer_gguf(path, model="gpt2", pre="gpt-2"):
    writer = GGUFWriter(str(path), "llama")
    writer.add_tokenizer_model(model)
    writer.add_tokenizer_pre(pre)
    writer.add_token_list(TOKENS)
    writer.add_token_types([3, 1, 1, 1, 1])
    writer.add_token_merges(["a b"])
    writer.add_eos_token_id(0)
    writer.add_chat_template("{% for m in messages %}{{ m['content'] }}{{ eos_token }}{% endfor %}")
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def test_a_small_gguf_tokenizer_reads_whole(tmp_path):
    tokenizer = BPETokenizer.from_gguf(write_tokenizer_gguf(tmp_path / "tiny.gguf"))
    assert tokenizer.token_ids("ab a<|endoftext|>") == [3, 4, 1, 0]
    assert tokenizer.eos_token == "<|endoftext|>"
    assert tokenizer.apply_chat_template([{"role": "user", "content": "ab"}], tokenize=False) == "ab<|endoftext|>"
    assert tokenizer.apply_chat_template([{"role": "user", "content": "ab"}]) == [3, 0]


def test_sentencepiece_gguf_is_refused_by_name(tmp_path):
    path = write_tokenizer_gguf(tmp_path / "spm.gguf", model="llama")
    with pytest.raises(ValueError, match=r"spm.gguf: tokenizer.ggml.model is 'llama'"):
        BPETokenizer.from_gguf(path)


def test_unknown_pre_tokenizer_is_refused_by_name(tmp_path):
    path = write_tokenizer_gguf(tmp_path / "odd.gguf", pre="mystery-pre")
    with pytest.raises(ValueError, match=r"odd.gguf: tokenizer.ggml.pre 'mystery-pre' is not supported"):
        BPETokenizer.from_gguf(path)


def test_foreign_file_is_not_a_gguf(tmp_path):
    path = tmp_path / "tokenizer.gguf"
    path.write_text("{}")
    with pytest.raises(ValueError, match=r"tokenizer.gguf is not a readable GGUF file"):
        BPETokenizer.from_gguf(path)


def test_wordpiece_tokenizer_json_is_refused_by_name(tmp_path):
    path = tmp_path / "tokenizer.json"
    path.write_text(json.dumps({"model": {"type": "WordPiece", "vocab": {}}}))
    with pytest.raises(ValueError, match=r"tokenizer.json: the model type 'WordPiece' is not supported"):
        BPETokenizer.from_tokenizer_json(path)


def test_unsupported_pre_tokenizer_is_refused_by_name(tmp_path):
    path = tmp_path / "tokenizer.json"
    model = {"type": "BPE", "vocab": {"a": 0}, "merges": []}
    path.write_text(json.dumps({"model": model, "pre_tokenizer": {"type": "Metaspace"}}))
    with pytest.raises(ValueError, match=r"the pre-tokenizer 'Metaspace' is not supported"):
        BPETokenizer.from_tokenizer_json(path)


def test_templates_cannot_reach_python_internals_or_mutate_their_input():
    messages = [{"role": "user", "content": "hi"}]
    with pytest.raises(jinja2.exceptions.SecurityError):
        render_chat_template("{{ messages.append(1) }}", messages)
    with pytest.raises(jinja2.exceptions.SecurityError):
        render_chat_template("{{ ''.__class__.__mro__[1].__subclasses__() }}", messages)
    assert messages == [{"role": "user", "content": "hi"}]


def test_templates_raise_their_own_errors_and_keep_non_ascii_json():
    with pytest.raises(jinja2.exceptions.TemplateError, match="no system role"):
        render_chat_template("{{ raise_exception('no system role') }}", [])
    assert render_chat_template("{{ messages | tojson }}", [{"content": "café"}]) == '[{"content": "café"}]'


def test_a_tokenizer_without_template_says_so():
    tokenizer = BPETokenizer({"a": 0}, [])
    with pytest.raises(ValueError, match="has no chat template"):
        tokenizer.apply_chat_template([{"role": "user", "content": "a"}])
