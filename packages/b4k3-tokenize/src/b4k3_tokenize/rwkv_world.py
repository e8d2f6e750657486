"""`RWKVWorldTokenizer`: the "world" tokenizer of RWKV-4 World to RWKV-7, with token ids identical
to BlinkDL's `rwkv` package (`rwkv.rwkv_tokenizer.TRIE_TOKENIZER`).

The vocabulary (`rwkv_vocab_v20230424.txt`, 65,529 tokens) is a list of byte strings; a text's
UTF-8 bytes are cut greedily from the left, each time into the longest token that starts there.
Every single byte is a token, so any text encodes and `decode(encode(text)) == text`.

The vocabulary file's lines are `<id> <Python literal of a str or bytes> <length in bytes>`. They
are read with `ast.literal_eval`, which accepts literals only: the reference `eval`s each line,
so a tampered vocabulary file could run code.
"""

import ast
import importlib.util
import pathlib

from b4k3_tokenize.base import as_id_list, check_text

RWKV_WORLD_VOCAB = "rwkv_vocab_v20230424.txt"


def read_rwkv_vocab(path):
    """`{id: token bytes}` from an RWKV vocabulary file; a malformed line is a ValueError naming
    the file, the line number and the line."""
    tokens = {}
    seen = {}
    with open(path, encoding="utf-8") as file:
        for number, line in enumerate(file, 1):
            line = line.rstrip("\r\n")
            if not line.strip():
                continue
            where = f"{path}:{number}"
            token_id, token = parse_vocab_line(line, where)
            if token_id in tokens:
                raise ValueError(f"{where}: id {token_id} is given a second time, in {line!r:.120}")
            if token in seen:
                raise ValueError(f"{where}: token {token!r} already has id {seen[token]}, in {line!r:.120}")
            tokens[token_id] = token
            seen[token] = token_id
    if not tokens:
        raise ValueError(f"{path}: the vocabulary file holds no tokens")
    return tokens


def parse_vocab_line(line, where):
    """`(id, token bytes)` of one line `<id> <str or bytes literal> <length in bytes>`."""
    problem = f"{where}: expected '<id> <str or bytes literal> <length in bytes>', got {line!r:.120}"
    head, _, rest = line.partition(" ")
    literal, _, length = rest.rpartition(" ")
    if not (is_ascii_number(head) and is_ascii_number(length) and literal):
        raise ValueError(problem)
    try:
        token = ast.literal_eval(literal)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        raise ValueError(problem) from None
    if isinstance(token, str):
        try:
            token = token.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError(f"{where}: the token {literal} is not valid Unicode (a lone surrogate)") from None
    if not isinstance(token, bytes) or not token:
        raise ValueError(f"{where}: the token must be a non-empty str or bytes literal, got {literal!r:.120}")
    if len(token) != int(length):
        raise ValueError(f"{where}: the token {token!r:.80} is {len(token)} bytes long, the line says {length}")
    return int(head), token


def is_ascii_number(text):
    return text.isascii() and text.isdigit()


def build_trie(tokens):
    """The tokens as a trie of nested dicts: `{byte: [id or 0, {next byte: ...}]}`.

    Id 0 (RWKV's end-of-text token, which has no bytes) is free to mean "no token ends here".
    """
    root = {}
    for token_id, token in tokens.items():
        children = root
        for byte in token[:-1]:
            children = children.setdefault(byte, [0, {}])[1]
        children.setdefault(token[-1], [0, {}])[0] = token_id
    return root


class RWKVWorldTokenizer:
    """RWKV's "world" tokenizer: greedy longest-match over a byte-string vocabulary.

    Args:
        vocab_path: the vocabulary file, `rwkv_vocab_v20230424.txt` (or one of its format).
            `RWKVWorldTokenizer.from_rwkv_package()` reads the one the `rwkv` package ships.

    Id 0 is RWKV's end-of-text token (`end_token_id`): models emit it, the text never holds it.

    Example:
        >>> tokenizer = RWKVWorldTokenizer.from_rwkv_package()
        >>> tokenizer.encode("Hello world")
        [33155, 40213]
        >>> tokenizer.decode([33155, 40213])
        'Hello world'
    """

    end_token_id = 0

    def __init__(self, vocab_path):
        self.vocab_path = str(vocab_path)
        self._tokens = read_rwkv_vocab(vocab_path)
        if self.end_token_id in self._tokens:
            raise ValueError(f"{vocab_path}: id 0 is RWKV's end-of-text token and cannot be a token of the file")
        self._trie = build_trie(self._tokens)
        self._by_first_byte = [self._trie.get(byte) for byte in range(256)]
        self._longest = max(len(token) for token in self._tokens.values())
        self._vocab_size = max(self._tokens) + 1

    @classmethod
    def from_rwkv_package(cls):
        """The tokenizer of the vocabulary that BlinkDL's `rwkv` package ships (the package is
        found, not imported)."""
        spec = importlib.util.find_spec("rwkv")
        if spec is None or not spec.submodule_search_locations:
            raise ImportError(
                "RWKVWorldTokenizer.from_rwkv_package() reads the vocabulary of the rwkv package: "
                f"pip install rwkv, or pass the path of {RWKV_WORLD_VOCAB} to RWKVWorldTokenizer"
            )
        path = pathlib.Path(next(iter(spec.submodule_search_locations))) / RWKV_WORLD_VOCAB
        if not path.is_file():
            raise FileNotFoundError(f"the installed rwkv package has no {RWKV_WORLD_VOCAB} (looked for {path})")
        return cls(path)

    @property
    def vocab_size(self):
        """How many ids the model's embedding needs: the largest id plus one (65,530 ids; RWKV
        World models have 65,536 rows)."""
        return self._vocab_size

    def encode(self, text):
        """Text -> token ids, the longest token at each step (no end token added)."""
        check_text(text)
        return self.encode_bytes(text.encode("utf-8"))

    def encode_bytes(self, data):
        """Bytes -> token ids, the longest token at each step."""
        ids = []
        append = ids.append
        start, end = 0, len(data)
        while start < end:
            # The first byte's trie entry comes from a table (the hottest lookup), the rest by dict.
            found, children = self._by_first_byte[data[start]] or (0, {})
            position = found_end = start + 1
            for byte in data[position : start + self._longest]:
                entry = children.get(byte)
                if entry is None:
                    break
                position += 1
                token_id, children = entry
                if token_id:
                    found, found_end = token_id, position
            if not found:
                raise ValueError(
                    f"{self.vocab_path} has no token for byte {data[start]:#04x} (at byte {start} of the text)"
                )
            append(found)
            start = found_end
        return ids

    def decode_bytes(self, ids):
        """Token ids (any integer-like sequence) -> the tokens' bytes joined; an id outside the
        vocabulary (the end-of-text token 0 included) is a ValueError naming it."""
        ids = as_id_list(ids)
        try:
            return b"".join([self._tokens[token_id] for token_id in ids])
        except KeyError as missing:
            token_id = missing.args[0]
            hint = ": it is the end-of-text token, which has no text; drop it first" if token_id == 0 else ""
            raise ValueError(
                f"id {token_id} is not in the RWKV world vocabulary (ids 1 to {self.vocab_size - 1}){hint}"
            ) from None

    def decode(self, ids):
        """Token ids -> text. Bytes that are not valid UTF-8 (a character cut between tokens)
        become U+FFFD; the `rwkv` package returns a lone U+FFFD for the whole text then."""
        return self.decode_bytes(ids).decode("utf-8", errors="replace")

    def __repr__(self):
        return f"RWKVWorldTokenizer({self.vocab_path!r}, {len(self._tokens)} tokens)"
