"""bert4keras' WordPiece `Tokenizer`: BERT's basic tokenization, then greedy longest-match pieces."""

import re
import warnings

from b4k3_tokenize import characters
from b4k3_tokenize.base import TokenizerBase
from b4k3_tokenize.vocab import is_redundant, load_vocab

# How many distinct words the per-tokenizer WordPiece cache holds before it starts afresh.
WORD_CACHE_SIZE = 1 << 16


class Tokenizer(TokenizerBase):
    """WordPiece tokenizer with bert4keras' rules; token ids match Hugging Face's `BertTokenizer`.

    Text is lower-cased and stripped of accents (with `do_lower_case`), invisible characters are
    dropped, punctuation and CJK characters become words of their own, and each word is split into
    the longest vocab pieces from the left (continuations prefixed `##`). A word with no split, or
    longer than `word_maxlen` characters, stays whole and maps to `[UNK]`.

    Where bert4keras and Hugging Face differ on purpose, this follows bert4keras: `word_maxlen`
    defaults to 200 (HF: 100), special tokens written in the text (`"[CLS]"`) are split like any
    text, and pair truncation drops from the first text on a tie.

    Args:
        token_dict: path of a `vocab.txt`, or a `{token: id}` dict.
        do_lower_case: lower-case and strip accents (for uncased vocabs).
        word_maxlen: words longer than this many characters map to `[UNK]` whole.
        token_start, token_end, pre_tokenize, token_translate: see `TokenizerBase`.

    Example:
        >>> tokenizer = Tokenizer("vocab.txt", do_lower_case=True)
        >>> token_ids, segment_ids = tokenizer.encode("Hello world", "Bonjour", maxlen=16)
    """

    def __init__(self, token_dict, do_lower_case=False, word_maxlen=200, **kwargs):
        super().__init__(**kwargs)
        if isinstance(token_dict, (str, bytes)) or hasattr(token_dict, "__fspath__"):
            token_dict = load_vocab(token_dict)
        if not isinstance(token_dict, dict) or not token_dict:
            raise TypeError(
                f"token_dict must be a vocab path or a non-empty {{token: id}} dict, got {token_dict!r:.80}"
            )
        self._do_lower_case = do_lower_case
        self._token_dict = token_dict
        self._token_dict_inv = {token_id: token for token, token_id in token_dict.items()}
        self._vocab_size = len(token_dict)
        self._word_maxlen = word_maxlen
        for role, remedy in (
            ("unk", "unknown words could not be encoded; use a WordPiece vocab that has it"),
            ("start", "pass token_start=<a token of the vocab>, or None for no start token"),
            ("end", "pass token_end=<a token of the vocab>, or None for no end token"),
        ):
            token = getattr(self, f"_token_{role}")
            if token is not None and token not in token_dict:
                raise ValueError(f"The vocab has no {role} token {token!r}: {remedy}.")
        for role in ("pad", "unk", "mask", "start", "end"):
            token = getattr(self, f"_token_{role}")
            if token in token_dict:
                setattr(self, f"_token_{role}_id", token_dict[token])
        # No piece is longer than the longest vocab entry: the greedy match never tries beyond it.
        self._max_piece_length = max(len(characters.stem(token)) for token in token_dict)
        self._word_pieces = {}
        # A vocab without upper-case entries is an uncased one: capitalised words would be [UNK].
        self._warn_upper_case = not do_lower_case and not any(
            character.isupper() for token in token_dict if not self._is_special(token) for character in token
        )

    @property
    def vocab_size(self):
        return self._vocab_size

    def token_to_id(self, token):
        return self._token_dict.get(token, self._token_unk_id)

    def tokens_to_ids(self, tokens):
        get, unk = self._token_dict.get, self._token_unk_id
        return [get(token, unk) for token in tokens]

    def id_to_token(self, i):
        return self._token_dict_inv[i]

    def _tokenize(self, text, pre_tokenize=True):
        if self._warn_upper_case and any(character.isupper() for character in text):
            self._warn_upper_case = False  # once per tokenizer
            warnings.warn(
                "The vocab has no upper-case tokens (an uncased vocab) but do_lower_case=False: capitalised "
                "words become [UNK]. Pass do_lower_case=True.",
                UserWarning,
                stacklevel=3,
            )
        if self._do_lower_case:
            text = characters.lowercase_and_normalize(text)
        if pre_tokenize and self._pre_tokenize is not None:
            tokens = []
            for word in self._pre_tokenize(text):
                if word in self._token_dict:
                    tokens.append(word)
                else:
                    tokens.extend(self._tokenize(word, False))
            return tokens

        tokens, cache = [], self._word_pieces
        for word in characters.split_words(text):
            pieces = cache.get(word)
            if pieces is None:
                if len(cache) >= WORD_CACHE_SIZE:
                    cache.clear()
                pieces = cache[word] = self._word_piece_tokenize(word)
            tokens.extend(pieces)
        return tokens

    def _word_piece_tokenize(self, word):
        """Greedy longest-match-first pieces of one word; the whole word when it has no split."""
        if len(word) > self._word_maxlen:
            return (word,)
        pieces, start, vocab = [], 0, self._token_dict
        while start < len(word):
            end = min(len(word), start + self._max_piece_length)
            while end > start:
                piece = word[start:end] if start == 0 else "##" + word[start:end]
                if piece in vocab:
                    break
                end -= 1
            if end == start:
                return (word,)
            pieces.append(piece)
            start = end
        return tuple(pieces)

    def decode(self, ids, tokens=None):
        """Ids -> readable text: special `[...]` tokens dropped, pieces joined, spaces only where
        the language wants them (none around CJK characters, none before punctuation)."""
        tokens = tokens or self.ids_to_tokens(ids)
        tokens = [token for token in tokens if not self._is_special(token)]
        text = ""
        for i, token in enumerate(tokens):
            if token[:2] == "##":
                text += token[2:]
            elif len(token) == 1 and characters.is_cjk_character(token):
                text += token
            elif len(token) == 1 and characters.is_punctuation(token):
                text += token + " "
            elif i > 0 and characters.is_cjk_character(text[-1]):
                text += token
            else:
                text += " " + token
        text = re.sub(" +", " ", text)
        text = re.sub("' (re|m|s|t|ve|d|ll) ", "'\\1 ", text)
        text = _SPACE_AFTER_OPENING_PUNCTUATION.sub("\\1", text)
        text = re.sub(r"(\d\.) (\d)", "\\1\\2", text)
        return text.strip()

    def rematch(self, text, tokens):
        """For each token, the indices of the characters of `text` it came from (`[]` for special
        tokens). Raises ValueError when a token is not found in the text in order (e.g. tokens
        changed by `token_translate`)."""
        normalized, offsets = characters.normalize_with_offsets(text, self._do_lower_case)
        mapping, position = [], 0
        for token in tokens:
            if self._is_special(token):
                mapping.append([])
                continue
            piece = characters.stem(token)
            start = normalized.find(piece, position)
            if start < 0:
                raise ValueError(f"Token {token!r} is not in the text after character {position}: {text!r:.80}")
            position = start + len(piece)
            mapping.append(offsets[start:position])
        return mapping

    # bert4keras' names for the character classes, kept for code that calls them.
    stem = staticmethod(characters.stem)
    _is_space = staticmethod(characters.is_space)
    _is_punctuation = staticmethod(characters.is_punctuation)
    _is_cjk_character = staticmethod(characters.is_cjk_character)
    _is_control = staticmethod(characters.is_control)
    _is_redundant = staticmethod(is_redundant)

    @staticmethod
    def _cjk_punctuation():
        return characters.CJK_PUNCTUATION

    @staticmethod
    def _is_special(token):
        return bool(token) and token[0] == "[" and token[-1] == "]"


_SPACE_AFTER_OPENING_PUNCTUATION = re.compile(
    "(" + "|".join(re.escape(ch) for ch in characters.CJK_PUNCTUATION + "+-/={(<[") + ") "
)
