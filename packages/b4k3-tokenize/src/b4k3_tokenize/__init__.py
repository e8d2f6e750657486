"""bert4keras-compatible tokenizers (WordPiece and SentencePiece) with no Keras dependency."""

__version__ = "0.1.0"
