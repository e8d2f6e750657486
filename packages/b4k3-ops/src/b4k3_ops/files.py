"""bert4keras3's `open`: a text file with an optional line index, to read line i of a large
corpus without reading what comes before it."""

import builtins
import json
import os

from tqdm.auto import tqdm

from b4k3_tokenize import convert_to_unicode


class open:
    """`open(name, mode, encoding, errors)` plus `indexable`: with True, the byte offset of every
    line is recorded when opening, so `f[i]` reads line i and `len(f)` counts the lines; with a
    path, the offsets are read from that JSON file if it exists, or recorded and written there.
    Also a context manager and an iterator of lines, like a file object.
    """

    def __init__(self, name, mode="r", encoding=None, errors="strict", indexable=False):
        self.name = name
        self.file = builtins.open(name, mode, encoding=encoding, errors=errors)  # noqa: SIM115 (closed by close())
        self.encoding = encoding
        self.errors = errors
        self.iterator = None
        self.offsets = None
        if indexable:
            if isinstance(indexable, str) and os.path.exists(indexable):
                with builtins.open(indexable) as index_file:
                    self.offsets = json.load(index_file)
            else:
                self.create_indexes()
                if isinstance(indexable, str):
                    with builtins.open(indexable, "w") as index_file:
                        json.dump(self.offsets, index_file)

    def create_indexes(self):
        """Records the offset of every line (the file is read once, then rewound)."""
        self.offsets, offset = [], 0
        with tqdm(total=os.path.getsize(self.name), desc="creating indexes", unit="B") as progress:
            while self.file.readline():
                self.offsets.append(offset)
                progress.update(self.file.tell() - offset)
                offset = self.file.tell()
        self.file.seek(0)

    def _text(self, text):
        return convert_to_unicode(text, self.encoding, self.errors) if self.encoding else text

    def __getitem__(self, key):
        if self.offsets is None:
            raise TypeError(f"{self.name}: open it with indexable=True to read lines by number")
        self.file.seek(self.offsets[key])
        return self._text(self.file.readline())

    def __len__(self):
        if self.offsets is None:
            raise TypeError(f"{self.name}: open it with indexable=True to count its lines")
        return len(self.offsets)

    def __iter__(self):
        for line in self.file:
            yield self._text(line)

    def next(self):
        if self.iterator is None:
            self.iterator = self.__iter__()
        return next(self.iterator)

    __next__ = next

    def read(self):
        return self._text(self.file.read())

    def readline(self):
        return self._text(self.file.readline())

    def readlines(self):
        return [self._text(line) for line in self.file.readlines()]

    def write(self, text):
        self.file.write(text)

    def flush(self):
        self.file.flush()

    def close(self):
        self.file.close()

    def tell(self):
        return self.file.tell()

    def seek(self, offset=0):
        return self.file.seek(offset)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()
