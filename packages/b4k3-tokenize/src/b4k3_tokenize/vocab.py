"""Reading and writing WordPiece vocabularies (`vocab.txt`: one token a line, id = line number)."""

import os

from b4k3_tokenize.characters import is_cjk_character, is_punctuation, stem


def load_vocab(dict_path, encoding="utf-8", simplified=False, startswith=None):
    """Reads a vocab file into `{token: id}`.

    Each line's first whitespace-separated field is the token (a blank line stands for the empty
    token) and its line number is the id.

    With `simplified=True`, drops the tokens a Chinese model never produces (those longer than one
    character whose stem holds a CJK character or punctuation, such as `##，`), keeps the
    `startswith` tokens first, and returns `(new_token_dict, keep_tokens)`: `keep_tokens[i]` is the
    old id of new id `i`, ready for a model's `keep_tokens` argument.
    """
    if not os.path.isfile(dict_path):
        raise FileNotFoundError(f"Vocab file not found: {dict_path!r}; pass the path of a vocab.txt or a token dict.")
    token_dict = {}
    with open(dict_path, encoding=encoding) as reader:
        for line_number, line in enumerate(reader):
            fields = line.split()
            token_dict[fields[0] if fields else line.strip()] = line_number
    if not simplified:
        return token_dict

    new_token_dict, keep_tokens = {}, []
    for token in startswith or []:
        if token not in token_dict:
            raise ValueError(f"startswith token {token!r} is not in the vocab {dict_path!r}.")
        new_token_dict[token] = len(new_token_dict)
        keep_tokens.append(token_dict[token])
    for token, token_id in sorted(token_dict.items(), key=lambda item: item[1]):
        if token not in new_token_dict and not is_redundant(token):
            new_token_dict[token] = len(new_token_dict)
            keep_tokens.append(token_id)
    return new_token_dict, keep_tokens


def save_vocab(dict_path, token_dict, encoding="utf-8"):
    """Writes `{token: id}` as a vocab file, one token a line in id order."""
    with open(dict_path, "w", encoding=encoding) as writer:
        for token, _ in sorted(token_dict.items(), key=lambda item: item[1]):
            writer.write(token + "\n")


def is_redundant(token):
    """A token of several characters whose stem holds a CJK character or a punctuation mark: the
    tokenizer splits those characters off, so the token can never be produced."""
    return len(token) > 1 and any(is_cjk_character(ch) or is_punctuation(ch) for ch in stem(token))
