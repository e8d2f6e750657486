"""`BPETokenizer`: byte-level BPE, the tokenizer of GPT-2, Llama-3, Qwen, SmolLM and most GGUF
models, with token ids identical to Hugging Face's `tokenizers`.

Text is cut at added tokens (`<|im_start|>`, kept whole), the rest into words by the
`PreTokenizer`; each word's bytes, spelled in GPT-2's byte alphabet, are merged pair by pair,
the lowest-ranked merge first. Decoding joins the tokens' bytes and reads them as UTF-8, so
`decode(encode(text)) == text` for any text.
"""

import dataclasses
import itertools

from b4k3_tokenize.base import TokenizerBase, as_id_list, check_text
from b4k3_tokenize.pre_tokenizers import GPT2_SPLIT, PreTokenizer, from_byte_level, import_regex


@dataclasses.dataclass(frozen=True)
class AddedToken:
    """A token matched whole in the text before any splitting (Hugging Face's `AddedToken`).

    `special` ones (control tokens) are left out by `decode(skip_special_tokens=True)`; `lstrip`
    / `rstrip` take the whitespace beside a match into it; `single_word` matches only between
    non-word characters.
    """

    content: str
    special: bool = True
    lstrip: bool = False
    rstrip: bool = False
    single_word: bool = False

    def pattern(self, regex):
        core = regex.escape(self.content)
        if self.single_word:
            core = rf"(?<!\w){core}(?!\w)"
        return (r"\s*" if self.lstrip else "") + core + (r"\s*" if self.rstrip else "")


class BPETokenizer(TokenizerBase):
    """A byte-level BPE tokenizer behind the bert4keras tokenizer API, plus `token_ids`,
    `decode(skip_special_tokens=...)` and `apply_chat_template`.

    Build one from a file with `from_tokenizer_json`, `from_vocab_merges` or `from_gguf`
    (`b4k3_tokenize.bpe_files`), or directly:

    Args:
        vocab: `{token: id}`, tokens spelled in the byte alphabet.
        merges: `(left, right)` pairs, best first.
        pre_tokenizer: a `PreTokenizer` (default GPT-2's split).
        added_tokens: `{id: AddedToken}` matched whole in the text.
        unk_token: the token of bytes the vocabulary lacks (None: they are dropped, as Hugging Face
            and llama.cpp drop them; a byte-level vocabulary usually has all 256).
        ignore_merges: take a word that is a token whole, before merging (Llama-3).
        bos_token, eos_token, pad_token: the special tokens' roles (strings), for chat templates
            and generation.
        chat_template: the Jinja chat template (a string), or None.
        token_start, token_end: tokens put around every text by `tokenize` / `encode` (default none).
        source: where the tokenizer came from, for error messages.

    Example:
        >>> tokenizer = BPETokenizer.from_gguf("SmolLM2-135M-Instruct.Q4_1.gguf")
        >>> ids = tokenizer.token_ids("Hello world!")
        >>> tokenizer.decode(ids)
        'Hello world!'
    """

    def __init__(
        self,
        vocab,
        merges,
        pre_tokenizer=None,
        added_tokens=None,
        unk_token=None,
        ignore_merges=False,
        bos_token=None,
        eos_token=None,
        pad_token=None,
        chat_template=None,
        token_start=None,
        token_end=None,
        source="<memory>",
        **kwargs,
    ):
        super().__init__(token_start=token_start, token_end=token_end, **kwargs)
        self.source = source
        self.pre_tokenizer = pre_tokenizer or PreTokenizer([GPT2_SPLIT])
        self.ignore_merges = ignore_merges
        self.added_tokens = dict(added_tokens or {})
        self._ids = dict(vocab)
        self._ids.update({token.content: token_id for token_id, token in self.added_tokens.items()})
        self._tokens = [""] * (max(self._ids.values(), default=-1) + 1)
        for token, token_id in self._ids.items():
            if token_id < 0:
                raise ValueError(f"{source}: token {token!r} has a negative id {token_id}")
            self._tokens[token_id] = token
        self._ranks = {}
        for rank, (left, right) in enumerate(merges):
            self._ranks.setdefault((left, right), rank)
        self._cache = {}
        for role, token in (("unk", unk_token), ("start", token_start), ("end", token_end)):
            if token is not None and token not in self._ids:
                raise ValueError(f"{source}: the {role} token {token!r} is not in the vocabulary")
        self._token_unk = unk_token
        self.bos_token, self.eos_token, self.pad_token = bos_token, eos_token, pad_token
        self.chat_template = chat_template
        self._special_ids = frozenset(token_id for token_id, token in self.added_tokens.items() if token.special)
        regex = import_regex()
        by_length = sorted(self.added_tokens.values(), key=lambda token: -len(token.content))
        self._added_by_content = {token.content: token for token in by_length}
        self._added_pattern = (
            regex.compile("|".join(token.pattern(regex) for token in by_length)) if by_length else None
        )

    # Construction from files (see bpe_files)

    @classmethod
    def from_tokenizer_json(cls, path, **kwargs):
        """From a Hugging Face `tokenizer.json` (and the `tokenizer_config.json` beside it, when
        there is one, for the special tokens' roles and the chat template)."""
        from b4k3_tokenize.bpe_files import read_tokenizer_json

        return cls(**{**read_tokenizer_json(path), **kwargs})

    @classmethod
    def from_vocab_merges(cls, vocab_path, merges_path, **kwargs):
        """From GPT-2's `vocab.json` and `merges.txt` (GPT-2's split; `<|endoftext|>` special when present)."""
        from b4k3_tokenize.bpe_files import read_vocab_merges

        return cls(**{**read_vocab_merges(vocab_path, merges_path), **kwargs})

    @classmethod
    def from_gguf(cls, path, **kwargs):
        """From the tokenizer in a GGUF file's metadata (`tokenizer.ggml.*`, model 'gpt2')."""
        from b4k3_tokenize.bpe_files import read_gguf_tokenizer

        return cls(**{**read_gguf_tokenizer(path), **kwargs})

    # Vocabulary

    @property
    def vocab_size(self):
        return len(self._tokens)

    def token_to_id(self, token):
        if token in self._ids:
            return self._ids[token]
        if self._token_unk is None:
            raise KeyError(f"{token!r} is not in the vocabulary of {self.source} (and it has no unk token)")
        return self._ids[self._token_unk]

    def id_to_token(self, i):
        return self._tokens[i] if 0 <= i < len(self._tokens) else ""

    def _special_id(self, token):
        return None if token is None else self._ids.get(token)

    @property
    def bos_token_id(self):
        return self._special_id(self.bos_token)

    @property
    def eos_token_id(self):
        return self._special_id(self.eos_token)

    @property
    def pad_token_id(self):
        return self._special_id(self.pad_token)

    # Encoding

    def token_ids(self, text, split_special_tokens=False):
        """Text -> token ids (with the start / end tokens when the tokenizer has them). Added
        tokens written in the text are recognized, unless `split_special_tokens`."""
        check_text(text)
        tokens = self._tokenize(text, split_special_tokens)
        if self._token_start is not None:
            tokens.insert(0, self._token_start)
        if self._token_end is not None:
            tokens.append(self._token_end)
        return self.tokens_to_ids(tokens)

    def _tokenize(self, text, split_special_tokens=False):
        tokens = []
        for piece, is_added in self._split_added(text, split_special_tokens):
            if is_added:
                tokens.append(piece)
            else:
                for word in self.pre_tokenizer.words(piece):
                    tokens.extend(self._merge(word))
        return tokens

    def _split_added(self, text, split_special_tokens):
        """`(piece, is_added_token)` in order: added tokens matched whole, the text between them."""
        if self._added_pattern is None or split_special_tokens:
            yield text, False
            return
        position = 0
        for match in self._added_pattern.finditer(text):
            if match.start() > position:
                yield text[position : match.start()], False
            yield self._added_content(match.group()), True
            position = match.end()
        if position < len(text):
            yield text[position:], False

    def _added_content(self, matched):
        """The added token of a match, whose `lstrip` / `rstrip` whitespace is part of it."""
        if matched in self._added_by_content:
            return matched
        return matched.strip()

    def _merge(self, word):
        """The BPE tokens of one byte-level word: pairs merged in rank order until none applies."""
        cached = self._cache.get(word)
        if cached is not None:
            return cached
        if self.ignore_merges and word in self._ids:
            parts = [word]
        else:
            # Without an unk token, bytes the vocabulary lacks are dropped before merging (their
            # neighbours may then merge), as Hugging Face and llama.cpp drop them.
            parts = [part for part in word if self._token_unk is not None or part in self._ids]
            ranks = self._ranks
            while len(parts) > 1:
                pairs = enumerate(itertools.pairwise(parts))
                candidates = [(ranks[pair], index) for index, pair in pairs if pair in ranks]
                if not candidates:
                    break
                best = min(candidates)[1]
                left, right = parts[best], parts[best + 1]
                merged, index = [], 0
                while index < len(parts):
                    if index + 1 < len(parts) and parts[index] == left and parts[index + 1] == right:
                        merged.append(left + right)
                        index += 2
                    else:
                        merged.append(parts[index])
                        index += 1
                parts = merged
        if len(self._cache) < 100_000:
            self._cache[word] = parts
        return parts

    # Decoding

    def decode(self, ids, skip_special_tokens=False):
        """Ids (any integer-like sequence) -> text; bytes that are not valid UTF-8 (a character cut
        between tokens) become U+FFFD, as Hugging Face decodes them."""
        ids = as_id_list(ids)
        if skip_special_tokens:
            ids = [token_id for token_id in ids if token_id not in self._special_ids]
        tokens = [self._token_translate_inv.get(token) or token for token in self.ids_to_tokens(ids)]
        return from_byte_level(tokens).decode("utf-8", errors="replace")

    # Chat

    def apply_chat_template(self, messages, add_generation_prompt=False, tokenize=True, **variables):
        """The conversation `messages` (`[{'role': ..., 'content': ...}, ...]`) rendered with the
        tokenizer's chat template, as Hugging Face's `apply_chat_template` renders it: the text, or
        with `tokenize` its token ids (added tokens in it recognized; no start / end tokens added:
        the template writes them). `variables` reach the template too (e.g. `tools`)."""
        from b4k3_tokenize.chat_template import render_chat_template

        if self.chat_template is None:
            raise ValueError(f"{self.source} has no chat template: give chat_template= when building the tokenizer")
        special = {"bos_token": self.bos_token, "eos_token": self.eos_token, "pad_token": self.pad_token}
        special["unk_token"] = self._token_unk
        text = render_chat_template(
            self.chat_template,
            messages,
            add_generation_prompt=add_generation_prompt,
            **{**{name: token for name, token in special.items() if token is not None}, **variables},
        )
        if not tokenize:
            return text
        return self.tokens_to_ids(self._tokenize(text))

    def __repr__(self):
        return f"BPETokenizer({self.source!r}, {self.vocab_size} tokens, {len(self._ranks)} merges)"
