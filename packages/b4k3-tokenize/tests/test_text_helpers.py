"""bert4keras3's text helpers: each checked against what bert4keras3's own code gives (stated per
test) or, for the longest common substring/subsequence, against a brute-force search."""

import itertools

import pytest

from b4k3_tokenize import (
    convert_to_str,
    convert_to_unicode,
    is_string,
    longest_common_subsequence,
    longest_common_substring,
    string_matching,
    strQ2B,
    text_segmentate,
)


def test_strq2b_turns_full_width_characters_half_width():
    assert strQ2B("ＡＢＣ　１２３，！～中文") == "ABC 123,!~中文"


def test_string_matching_searches_regular_expressions():
    assert string_matching("价格是100元", ["\\d+元", "美元"])
    assert not string_matching("价格未知", ["\\d+元", "美元"])


def test_conversions_decode_bytes_and_keep_text():
    assert convert_to_unicode("中文".encode()) == "中文"
    assert convert_to_str(b"ab\xffc") == "abc"  # errors='ignore' as bert4keras3
    assert convert_to_unicode("x") == "x"
    assert is_string("x")
    assert not is_string(b"x")


@pytest.mark.parametrize(
    ("text", "maxlen", "seps", "expected"),
    [
        # Results of bert4keras3's text_segmentate on the same arguments.
        ("短句一。短句二。短句三。", 8, "。", ["短句一。短句二。", "短句三。"]),
        ("第一句话很长很长，第二句。第三句。", 6, "。，", ["第一句话很长很长，", "第二句。", "第三句。"]),
        ("  abc  ", 10, "\n", ["abc"]),
        ("a\nb\nc", 3, "\n", ["a", "b", "c"]),  # "a\n" + "b" would be 3 > maxlen - 1
    ],
)
def test_text_segmentate_splits_at_the_separators_in_order(text, maxlen, seps, expected):
    assert text_segmentate(text, maxlen, seps) == expected


def test_text_segmentate_strips_the_given_characters():
    assert text_segmentate("。。甲。乙。。", 2, "。", "。") == ["甲", "乙"]


def brute_force_substring_length(source, target):
    lengths = [
        k
        for i in range(len(source))
        for j in range(len(target))
        for k in range(1, min(len(source) - i, len(target) - j) + 1)
        if source[i : i + k] == target[j : j + k]
    ]
    return max(lengths, default=0)


def brute_force_subsequence_length(source, target):
    for size in range(min(len(source), len(target)), 0, -1):
        targets = set(itertools.combinations(target, size))
        if any(candidate in targets for candidate in itertools.combinations(source, size)):
            return size
    return 0


PAIRS = [("abcdxyz", "xyzabcd"), ("我爱北京天安门", "北京天安门我爱"), ("abc", "def"), ("", "abc"), ("aab", "ab")]


@pytest.mark.parametrize(("source", "target"), PAIRS)
def test_longest_common_substring_is_the_longest_and_its_span_holds_it(source, target):
    length, (s0, s1, t0, t1) = longest_common_substring(source, target)
    assert length == brute_force_substring_length(source, target)
    assert source[s0:s1] == target[t0:t1]
    assert s1 - s0 == length


@pytest.mark.parametrize(("source", "target"), PAIRS)
def test_longest_common_subsequence_is_the_longest_and_its_mapping_matches(source, target):
    length, mapping = longest_common_subsequence(source, target)
    assert length == brute_force_subsequence_length(source, target) == len(mapping)
    assert all(source[i] == target[j] for i, j in mapping)
    assert mapping == sorted(mapping)
    assert len({i for i, _ in mapping}) == len({j for _, j in mapping}) == length


def test_longest_common_substring_span_is_bert4keras3s():
    # bert4keras3: longest_common_substring("abcdxyz", "xyzabcd") == (4, (0, 4, 3, 7))
    assert longest_common_substring("abcdxyz", "xyzabcd") == (4, (0, 4, 3, 7))
    # bert4keras3: longest_common_subsequence("abcde", "ace") == (3, [(0, 0), (2, 1), (4, 2)])
    assert longest_common_subsequence("abcde", "ace") == (3, [(0, 0), (2, 1), (4, 2)])
