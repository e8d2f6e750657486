"""What every bert4keras tokenizer shares: start/end tokens, token translation, truncation and the
`encode` of one or two texts."""

import operator


def truncate_sequences(maxlen, indices, *sequences):
    """Pops tokens, in place, from the currently longest sequence until the total fits `maxlen`.

    `indices` says where each sequence loses a token (one int for all, or one per sequence); ties
    go to the earlier sequence. Empty and `None` sequences are ignored. Returns the sequences.
    """
    sequences = [sequence for sequence in sequences if sequence]
    if not isinstance(indices, (list, tuple)):
        indices = [indices] * len(sequences)
    while True:
        lengths = [len(sequence) for sequence in sequences]
        if sum(lengths) <= maxlen:
            return sequences
        longest = lengths.index(max(lengths))
        sequences[longest].pop(indices[longest])


def check_maxlen(maxlen, minimum):
    """`maxlen` must be an int that leaves room for the `minimum` start/end tokens and one more."""
    if isinstance(maxlen, bool) or not isinstance(maxlen, int) or maxlen <= minimum:
        raise ValueError(
            f"maxlen must be an int greater than {minimum} (the start/end tokens it must hold, and one token), "
            f"got {maxlen!r}"
        )


def check_text(text, argument="text"):
    if not isinstance(text, str):
        raise TypeError(f"{argument} must be a str, got {type(text).__name__}: {text!r:.80}")


def as_id_list(ids):
    """Any sequence of integer-like ids (list, tuple, 1-D NumPy array, NumPy integers) as Python ints."""
    if hasattr(ids, "tolist"):
        ids = ids.tolist()
    try:
        return [operator.index(token_id) for token_id in ids]
    except TypeError:
        raise TypeError(f"ids must be a 1-D sequence of integers, got {ids!r:.80}") from None


class TokenizerBase:
    """Start/end tokens, `token_translate`, `pre_tokenize` and `encode`, over a subclass's
    `_tokenize` (text -> tokens), `token_to_id` and `id_to_token`.

    Args:
        token_start: token put before every text (`None` for none).
        token_end: token put after every text (`None` for none).
        pre_tokenize: optional function text -> words run first (a word segmenter such as jieba).
        token_translate: optional `{token: replacement}` applied after tokenizing (and undone by
            `decode`).
    """

    def __init__(self, token_start="[CLS]", token_end="[SEP]", pre_tokenize=None, token_translate=None):
        self._token_pad = "[PAD]"
        self._token_unk = "[UNK]"
        self._token_mask = "[MASK]"
        self._token_start = token_start
        self._token_end = token_end
        self._pre_tokenize = pre_tokenize
        self._token_translate = dict(token_translate or {})
        self._token_translate_inv = {value: key for key, value in self._token_translate.items()}

    def _special_count(self, texts=1):
        """How many start/end tokens `texts` texts get (the second text of a pair: its end only)."""
        ends = int(self._token_end is not None)
        return int(self._token_start is not None) + ends * texts

    def tokenize(self, text, maxlen=None):
        """Text -> tokens, with the start and end tokens; with `maxlen`, tokens before the end token
        are dropped until it fits."""
        check_text(text)
        if maxlen is not None:
            check_maxlen(maxlen, self._special_count())
        tokens = self._tokenize(text)
        if self._token_translate:
            tokens = [self._token_translate.get(token) or token for token in tokens]
        if self._token_start is not None:
            tokens.insert(0, self._token_start)
        if self._token_end is not None:
            tokens.append(self._token_end)
        if maxlen is not None:
            truncate_sequences(maxlen, -(int(self._token_end is not None) + 1), tokens)
        return tokens

    def tokens_to_ids(self, tokens):
        return [self.token_to_id(token) for token in tokens]

    def ids_to_tokens(self, ids):
        ids = as_id_list(ids)
        outside = [token_id for token_id in ids if not 0 <= token_id < self.vocab_size]
        if outside:
            raise ValueError(f"id {outside[0]} is outside the vocabulary (ids 0..{self.vocab_size - 1})")
        return [self.id_to_token(token_id) for token_id in ids]

    def encode(self, first_text, second_text=None, maxlen=None, pattern="S*E*E", truncate_from="right"):
        """One text or a pair -> `(token_ids, segment_ids)`, segment 0 for the first, 1 for the second.

        Texts may also be given as token lists (as `tokenize` returns them). With `maxlen`, tokens
        are dropped from the currently longer text (the first on a tie: bert4keras' rule; Hugging
        Face drops from the second on a tie) until the pair fits. `truncate_from` is `'right'`,
        `'left'` or the index to drop at. With `pattern='S*E*E'` the second text loses its start
        token, as in BERT's `[CLS] a [SEP] b [SEP]`.
        """
        first_tokens = self._tokens_of(first_text, "first_text")
        second_tokens = None if second_text is None else self._tokens_of(second_text, "second_text")
        if maxlen is not None:
            check_maxlen(maxlen, self._special_count(1 if second_tokens is None else 2))
            if truncate_from == "right":
                index = -int(self._token_end is not None) - 1
            elif truncate_from == "left":
                index = int(self._token_start is not None)
            else:
                index = operator.index(truncate_from)
            if second_tokens is not None and pattern == "S*E*E":
                maxlen += 1
            truncate_sequences(maxlen, index, first_tokens, second_tokens)

        token_ids = self.tokens_to_ids(first_tokens)
        segment_ids = [0] * len(token_ids)
        if second_tokens is not None:
            if pattern == "S*E*E":
                second_tokens = second_tokens[int(bool(self._token_start)) :]
            second_ids = self.tokens_to_ids(second_tokens)
            token_ids.extend(second_ids)
            segment_ids.extend([1] * len(second_ids))
        return token_ids, segment_ids

    def _is_token(self, token):
        """Whether `token` can come out of `tokenize`: a vocab entry, or a word it keeps whole."""
        if token == self._token_unk or self.token_to_id(token) != self._token_unk_id:
            return True
        return self._tokenize(token) == [token]

    def _tokens_of(self, text, argument):
        """A text's tokens; a token list is copied, so truncation never alters the caller's list."""
        if isinstance(text, (list, tuple)):
            for token in text:
                check_text(token, f"each token of {argument}")
                if not self._is_token(token):
                    raise TypeError(
                        f"{argument} is a list, read as tokens (what tokenize returns), but {token!r:.80} is not a "
                        "token: pass one text (a str) per call, e.g. [tokenizer.encode(text) for text in texts]"
                    )
            return list(text)
        check_text(text, argument)
        return self.tokenize(text)
