"""Pure tests of parsing reply headers a server controls (downloader.headers).

Header values arrive as requests decodes them: Latin-1, so any byte
0x00-0xFF may be in them.
"""
from __future__ import annotations

import pytest

from downloader.headers import (MAX_LENGTH, parse_content_length, parse_content_range,
                                parse_count, parse_unsatisfied_range)

HOSTILE_NUMBERS = [
    "", " ", "-5", "+5", "1_000", "1e3", "0x10", "1.0", "abc", "5 5", "\u00b2", "1\u00b2",
    "\u0663", "\x00", "5\x00", str(MAX_LENGTH + 1), str(10**30), "9" * 5000,
]


@pytest.mark.parametrize("value, expected", [
    ("0", 0), ("1000", 1000), (" 1000 ", 1000), ("\t7", 7), ("007", 7),
    (str(MAX_LENGTH), MAX_LENGTH),
])
def test_parse_count(value: str, expected: int) -> None:
    assert parse_count(value) == expected


@pytest.mark.parametrize("value", HOSTILE_NUMBERS)
def test_parse_count_refuses_what_is_not_plain_ascii_digits(value: str) -> None:
    assert parse_count(value) is None


@pytest.mark.parametrize("value, expected", [
    (None, None),
    ("1000", 1000),
    ("0", 0),
    ("1000, 1000", 1000),  # a list of equal values is that value (RFC 9110 s8.6)
    ("1000,1000,1000", 1000),
    ("1000, 999", None),  # conflicting
    ("1000,", None),
    (",", None),
    ("-5", None),  # negative
    ("abc", None),  # non-numeric
    (str(10**30), None),  # absurd: no file is that long
    ("9" * 5000, None),  # int() would refuse it
    ("\u00b2", None),  # "²".isdigit() is true
])
def test_parse_content_length(value: str | None, expected: int | None) -> None:
    assert parse_content_length(value) == expected


@pytest.mark.parametrize("value", HOSTILE_NUMBERS)
def test_parse_content_length_never_trusts_a_hostile_number(value: str) -> None:
    assert parse_content_length(value) is None


@pytest.mark.parametrize("transfer_encoding", ["chunked", "Chunked", "gzip, chunked", "gzip"])
def test_transfer_encoding_overrides_content_length(transfer_encoding: str) -> None:
    """RFC 9112 s6.3: with Transfer-Encoding the body's framing decides; a
    Content-Length beside it says nothing about the body."""
    assert parse_content_length("10", transfer_encoding=transfer_encoding) is None


@pytest.mark.parametrize("transfer_encoding", [None, "", " "])
def test_an_empty_transfer_encoding_leaves_content_length(transfer_encoding: str | None) -> None:
    assert parse_content_length("10", transfer_encoding=transfer_encoding) == 10


@pytest.mark.parametrize("value, expected", [
    ("bytes 0-999/1000", (0, 999, 1000)),
    ("bytes 500-999/1000", (500, 999, 1000)),
    ("bytes 500-599/1000", (500, 599, 1000)),
    ("bytes 500-999/*", (500, 999, None)),
    ("BYTES 0-0/1", (0, 0, 1)),
    (" bytes  1-2/3 ", (1, 2, 3)),
    (f"bytes 0-{MAX_LENGTH - 1}/{MAX_LENGTH}", (0, MAX_LENGTH - 1, MAX_LENGTH)),
])
def test_parse_content_range(value: str, expected: tuple) -> None:
    assert parse_content_range(value) == expected


@pytest.mark.parametrize("value", [
    None, "", "bytes", "bytes */1000", "bytes 5-4/1000", "bytes 0-1000/1000", "bytes 0-5/5",
    "bytes -1-5/10", "bytes 0-5", "bytes=0-5/10", "items 0-5/10", "bytes 0-5/10, 6-9/10",
    "bytes \u00b2-5/10", "bytes 0-\u0665/10", "bytes 1_0-20/30",
    "bytes " + "1" * 5000 + "-2/3", f"bytes 0-1/{10**30}",
])
def test_parse_content_range_refuses_malformed_or_impossible(value: str | None) -> None:
    assert parse_content_range(value) is None


@pytest.mark.parametrize("value, expected", [
    ("bytes */1000", 1000), ("bytes */0", 0), ("Bytes  */7", 7),
    (None, None), ("", None), ("bytes */*", None), ("bytes 0-1/2", None), ("bytes */-1", None),
    ("bytes */\u00b2", None), ("bytes */" + "9" * 5000, None),
])
def test_parse_unsatisfied_range(value: str | None, expected: int | None) -> None:
    assert parse_unsatisfied_range(value) == expected
