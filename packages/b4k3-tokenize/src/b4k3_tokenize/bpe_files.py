"""The three files a byte-level BPE tokenizer comes in, read into `BPETokenizer` arguments:
Hugging Face's `tokenizer.json`, GPT-2's `vocab.json` + `merges.txt`, and a GGUF file's
`tokenizer.ggml.*` metadata. Anything the file asks for that `BPETokenizer` does not do is
refused with the file and the setting named, never approximated."""

import json
import pathlib

from b4k3_tokenize.bpe import AddedToken
from b4k3_tokenize.gguf_file import gguf_value, open_gguf
from b4k3_tokenize.pre_tokenizers import (
    DIGITS,
    GGUF_PRE_SPLITS,
    GPT2_SPLIT,
    NORMALIZATION_FORMS,
    PreTokenizer,
    byte_alphabet,
    import_regex,
    to_byte_level,
)

GPT2_END_OF_TEXT = "<|endoftext|>"
# llama.cpp's token types (`tokenizer.ggml.token_type`)
GGUF_CONTROL, GGUF_USER_DEFINED = 3, 4


def _unsupported(source, what, value, supported):
    return ValueError(f"{source}: {what} {value!r} is not supported by b4k3's BPETokenizer (it reads {supported})")


# Hugging Face tokenizer.json


def read_tokenizer_json(path):
    """`BPETokenizer` arguments from `tokenizer.json` (a file, or the folder holding it)."""
    path = pathlib.Path(path)
    if path.is_dir():
        path = path / "tokenizer.json"
    if not path.is_file():
        raise FileNotFoundError(f"No tokenizer.json at {str(path)!r}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{path} is not a tokenizer.json: {error}") from error
    model = data.get("model") or {}
    if model.get("type") != "BPE":
        raise _unsupported(path, "the model type", model.get("type"), "'BPE'")
    for key in ("dropout", "continuing_subword_prefix", "end_of_word_suffix", "byte_fallback"):
        if model.get(key):
            raise _unsupported(path, f"model.{key} =", model[key], "byte-level BPE without it")
    added = {
        token["id"]: AddedToken(
            token["content"],
            special=token.get("special", False),
            lstrip=token.get("lstrip", False),
            rstrip=token.get("rstrip", False),
            single_word=token.get("single_word", False),
        )
        for token in data.get("added_tokens") or []
    }
    arguments = {
        "vocab": model["vocab"],
        "merges": [tuple(merge.split(" ", 1)) if isinstance(merge, str) else tuple(merge) for merge in model["merges"]],
        "pre_tokenizer": _pre_tokenizer_from_json(path, data.get("pre_tokenizer"), data.get("normalizer")),
        "added_tokens": added,
        "unk_token": model.get("unk_token"),
        "ignore_merges": bool(model.get("ignore_merges", False)),
        "source": str(path),
        **_template_tokens(path, data.get("post_processor")),
        **_tokenizer_config(path.parent),
    }
    return arguments


def _pre_tokenizer_from_json(source, pre_tokenizer, normalizer):
    is_sequence = (pre_tokenizer or {}).get("type") == "Sequence"
    steps = pre_tokenizer.get("pretokenizers", []) if is_sequence else [pre_tokenizer]
    splits, add_prefix_space, byte_level = [], False, False
    regex = import_regex()
    for step in steps:
        kind = (step or {}).get("type")
        if byte_level:
            raise _unsupported(source, "a pre-tokenizer after ByteLevel:", kind, "ByteLevel last")
        if kind == "ByteLevel":
            byte_level = True
            add_prefix_space = step.get("add_prefix_space", False)
            if add_prefix_space and splits:
                raise _unsupported(source, "ByteLevel(add_prefix_space=True) after", splits, "it first or alone")
            if step.get("use_regex", True):
                splits.append(GPT2_SPLIT)
        elif kind == "Digits":
            splits.append(DIGITS[bool(step.get("individual_digits", False))])
        elif kind == "Split":
            if step.get("behavior") != "Isolated" or step.get("invert"):
                raise _unsupported(source, "Split behavior", (step.get("behavior"), step.get("invert")), "'Isolated'")
            pattern = step["pattern"]
            splits.append(pattern["Regex"] if "Regex" in pattern else regex.escape(pattern["String"]))
        else:
            raise _unsupported(source, "the pre-tokenizer", kind, "ByteLevel, Digits, Split and Sequence")
    if not byte_level:
        raise _unsupported(source, "a tokenizer without a ByteLevel pre-tokenizer:", pre_tokenizer, "byte-level BPE")
    return PreTokenizer(splits, add_prefix_space=add_prefix_space, normalization=_normalization(source, normalizer))


def _normalization(source, normalizer):
    if normalizer is None:
        return None
    steps = normalizer.get("normalizers", []) if normalizer.get("type") == "Sequence" else [normalizer]
    forms = [step.get("type") for step in steps]
    if not forms:
        return None
    if len(forms) > 1 or forms[0] not in NORMALIZATION_FORMS:
        raise _unsupported(source, "the normalizer", forms, f"none or one of {NORMALIZATION_FORMS}")
    return forms[0]


def _template_tokens(source, post_processor):
    """`token_start` / `token_end` from a `TemplateProcessing` post-processor (e.g. Llama-3's BOS)."""
    kind = (post_processor or {}).get("type")
    steps = post_processor.get("processors", []) if kind == "Sequence" else [post_processor]
    arguments = {}
    for step in steps:
        kind = (step or {}).get("type")
        if kind in (None, "ByteLevel"):
            continue
        if kind != "TemplateProcessing":
            raise _unsupported(source, "the post-processor", kind, "ByteLevel and TemplateProcessing")
        single = step["single"]
        names = [next(iter(item)) for item in single]
        if names.count("Sequence") != 1:
            raise _unsupported(source, "the template", single, "one sequence with special tokens around it")
        middle = names.index("Sequence")
        before, after = single[:middle], single[middle + 1 :]
        if len(before) > 1 or len(after) > 1:
            raise _unsupported(source, "the template", single, "at most one special token on each side")
        if before:
            arguments["token_start"] = before[0]["SpecialToken"]["id"]
        if after:
            arguments["token_end"] = after[0]["SpecialToken"]["id"]
    return arguments


def _tokenizer_config(folder):
    """The special tokens' roles and the chat template from `tokenizer_config.json` (and
    `chat_template.jinja`) in `folder`, when there."""
    arguments = {}
    config_path = folder / "tokenizer_config.json"
    config = json.loads(config_path.read_text(encoding="utf-8")) if config_path.is_file() else {}
    for role in ("bos", "eos", "pad"):
        token = config.get(f"{role}_token")
        if isinstance(token, dict):
            token = token.get("content")
        if token is not None:
            arguments[f"{role}_token"] = token
    template = config.get("chat_template")
    if isinstance(template, list):  # named templates: the default one
        template = next((entry["template"] for entry in template if entry.get("name") == "default"), None)
    if (folder / "chat_template.jinja").is_file():
        template = (folder / "chat_template.jinja").read_text(encoding="utf-8")
    if template is not None:
        arguments["chat_template"] = template
    return arguments


# GPT-2 vocab.json + merges.txt


def read_vocab_merges(vocab_path, merges_path):
    """`BPETokenizer` arguments from GPT-2's `vocab.json` and `merges.txt` (GPT-2's split;
    `<|endoftext|>` special, the start, end and padding role, when the vocabulary has it)."""
    vocab_path, merges_path = pathlib.Path(vocab_path), pathlib.Path(merges_path)
    for path in (vocab_path, merges_path):
        if not path.is_file():
            raise FileNotFoundError(f"No such file: {str(path)!r}")
    vocab = json.loads(vocab_path.read_text(encoding="utf-8"))
    merges = []
    for number, line in enumerate(merges_path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip() or (number == 1 and line.startswith("#version")):
            continue
        pair = line.split(" ")
        if len(pair) != 2:
            raise ValueError(f"{merges_path}, line {number}: a merge is two tokens separated by a space, got {line!r}")
        merges.append(tuple(pair))
    arguments = {"vocab": vocab, "merges": merges, "source": str(vocab_path)}
    if GPT2_END_OF_TEXT in vocab:
        arguments["added_tokens"] = {vocab[GPT2_END_OF_TEXT]: AddedToken(GPT2_END_OF_TEXT)}
        arguments.update(bos_token=GPT2_END_OF_TEXT, eos_token=GPT2_END_OF_TEXT)
    return arguments


# GGUF metadata


def read_gguf_tokenizer(path):
    """`BPETokenizer` arguments from a GGUF file's byte-level tokenizer (`tokenizer.ggml.model`
    'gpt2'): tokens, merges, the pre-tokenizer its `tokenizer.ggml.pre` names, control and
    user-defined tokens as added tokens, the special tokens' roles and the chat template. Its
    unknown token is not used for bytes the vocabulary lacks: llama.cpp drops them, and so does
    Hugging Face."""
    reader = open_gguf(path)
    model = gguf_value(reader, "tokenizer.ggml.model")
    if model != "gpt2":
        raise ValueError(
            f"{path}: tokenizer.ggml.model is {model!r}; BPETokenizer reads byte-level BPE ('gpt2'). A SentencePiece "
            "('llama') vocabulary is not read from GGUF yet."
        )
    tokens = gguf_value(reader, "tokenizer.ggml.tokens")
    merges = gguf_value(reader, "tokenizer.ggml.merges")
    if tokens is None or merges is None:
        raise ValueError(f"{path}: the GGUF tokenizer lacks tokenizer.ggml.tokens or tokenizer.ggml.merges")
    pre = gguf_value(reader, "tokenizer.ggml.pre", "gpt-2")
    if pre not in GGUF_PRE_SPLITS:
        raise _unsupported(path, "tokenizer.ggml.pre", pre, sorted(GGUF_PRE_SPLITS))
    alphabet = set(byte_alphabet().values())
    vocab = {token if set(token) <= alphabet else to_byte_level(token): index for index, token in enumerate(tokens)}
    types = gguf_value(reader, "tokenizer.ggml.token_type") or [1] * len(tokens)
    added = {}
    for index, (token, kind) in enumerate(zip(tokens, types, strict=True)):
        # A control token spelled outside the byte alphabet is a mislabel (Hugging Face skips it too).
        if kind == GGUF_CONTROL and set(token) <= alphabet:
            added[index] = AddedToken(token, special=True)
        elif kind == GGUF_USER_DEFINED and token in vocab:
            added[index] = AddedToken(token, special=False)

    def role(name):
        token_id = gguf_value(reader, f"tokenizer.ggml.{name}_token_id")
        return None if token_id is None or not 0 <= token_id < len(tokens) else tokens[token_id]

    arguments = {
        "vocab": vocab,
        "merges": [tuple(merge.split(" ", 1)) for merge in merges],
        "pre_tokenizer": PreTokenizer(GGUF_PRE_SPLITS[pre]),
        "added_tokens": added,
        "bos_token": role("bos"),
        "eos_token": role("eos"),
        "pad_token": role("padding"),
        "chat_template": gguf_value(reader, "tokenizer.chat_template"),
        "source": str(path),
    }
    if gguf_value(reader, "tokenizer.ggml.add_bos_token", False):
        arguments["token_start"] = arguments["bos_token"]
    if gguf_value(reader, "tokenizer.ggml.add_eos_token", False):
        arguments["token_end"] = arguments["eos_token"]
    return arguments
