"""bert4keras' `SpTokenizer`: the `TokenizerBase` interface over a SentencePiece model."""

import os

from b4k3_tokenize.base import TokenizerBase, as_id_list

# What the models that lack bert4keras3's default pieces pass instead, for the error that says so.
OTHER_MODELS_SETTINGS = (
    "token_start=None, token_end='</s>' for T5 / mT5, token_start='<bos>', token_end='<eos>' for Gemma"
)


def _import_sentencepiece():
    try:
        import sentencepiece
    except ImportError:
        raise ImportError("SpTokenizer needs the sentencepiece package: pip install sentencepiece") from None
    return sentencepiece


class SpTokenizer(TokenizerBase):
    """A SentencePiece model (T5, mT5, Gemma, Llama-2 ...) behind the bert4keras tokenizer API.

    Pieces and ids are SentencePiece's own; the start and end tokens are added around them. Their
    defaults are bert4keras3's, `'[CLS]'` / `'[SEP]'` (a DeBERTa-v3 `spm.model` has them); a model
    without those pieces is refused with the settings T5 and Gemma users pass instead.

    Args:
        sp_model_path: path of the SentencePiece `.model` file.
        token_start: piece put before every text (`None` for none): `None` for T5, `'<bos>'` for Gemma.
        token_end: piece put after every text (`None` for none): `'</s>'` for T5, `'<eos>'` for Gemma.
        pre_tokenize, token_translate: see `TokenizerBase`.

    Example:
        >>> tokenizer = SpTokenizer("spiece.model", token_start=None, token_end="</s>")
        >>> token_ids, _ = tokenizer.encode("translate English to German: hello")
    """

    def __init__(self, sp_model_path, token_start="[CLS]", token_end="[SEP]", **kwargs):
        super().__init__(token_start=token_start, token_end=token_end, **kwargs)
        sentencepiece = _import_sentencepiece()
        if not os.path.isfile(sp_model_path):
            raise FileNotFoundError(f"SentencePiece model not found: {sp_model_path!r}")
        self.sp_model = sentencepiece.SentencePieceProcessor()
        self.sp_model.Load(os.fspath(sp_model_path))
        self._vocab_size = self.sp_model.get_piece_size()
        self._token_unk = self.sp_model.id_to_piece(self.sp_model.unk_id())
        pad_id = self.sp_model.pad_id()
        self._token_pad = self.sp_model.id_to_piece(pad_id) if pad_id >= 0 else None
        for role in ("start", "end"):
            token = getattr(self, f"_token_{role}")
            if token is not None and self.sp_model.piece_to_id(token) == self.sp_model.unk_id():
                raise ValueError(
                    f"The SentencePiece model {os.fspath(sp_model_path)!r} has no {role} piece {token!r} "
                    f"(bert4keras3's defaults are token_start='[CLS]', token_end='[SEP]'): pass the pieces "
                    f"the model uses, e.g. {OTHER_MODELS_SETTINGS}, or None for none."
                )
        for role in ("pad", "unk", "mask", "start", "end"):
            token = getattr(self, f"_token_{role}")
            token_id = None if token is None else self.sp_model.piece_to_id(token)
            if token_id is not None and (token_id != self.sp_model.unk_id() or token == self._token_unk):
                setattr(self, f"_token_{role}_id", token_id)

    @property
    def vocab_size(self):
        return self._vocab_size

    def token_to_id(self, token):
        return self.sp_model.piece_to_id(token)

    def id_to_token(self, i):
        return self.sp_model.id_to_piece(i) if 0 <= i < self._vocab_size else ""

    def decode(self, ids):
        """Ids (any integer-like sequence, NumPy arrays included) -> text, as SentencePiece decodes."""
        tokens = [self._token_translate_inv.get(token) or token for token in self.ids_to_tokens(as_id_list(ids))]
        return self.sp_model.decode_pieces(tokens)

    def _tokenize(self, text):
        if self._pre_tokenize is not None:
            text = " ".join(self._pre_tokenize(text))
        return self.sp_model.encode_as_pieces(text)

    def _is_special(self, i):
        return self.sp_model.is_control(i) or self.sp_model.is_unknown(i) or self.sp_model.is_unused(i)

    def _is_decodable(self, i):
        return i < self._vocab_size and not self._is_special(i)
