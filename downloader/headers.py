"""Parsing reply headers that may be hostile.

A server can put anything in a header: negative or absurd numbers, lists
of conflicting values, digits that are not ASCII (``"²".isdigit()`` is
true, and ``int()`` accepts ``"1_000"`` and ``" +5"``), or thousands of
digits (``int()`` refuses more than 4300). Each parser here returns None
for a value it cannot trust, and never raises.
"""
from __future__ import annotations

import re

MAX_LENGTH = 2**63 - 1
"""The largest size a file can have (the largest ``off_t``): a longer
length is a lie, not a plan."""

# 19 digits hold MAX_LENGTH; a longer run of digits is absurd, and would be
# slow (or refused) to convert.
_COUNT = re.compile(r"[0-9]{1,19}")
_CONTENT_RANGE = re.compile(r"bytes[ \t]+([0-9]{1,19})-([0-9]{1,19})/([0-9]{1,19}|\*)",
                            re.IGNORECASE)
_UNSATISFIED_RANGE = re.compile(r"bytes[ \t]+\*/([0-9]{1,19})", re.IGNORECASE)


def parse_count(text: str) -> int | None:
    """A byte count: ASCII digits only, at most MAX_LENGTH."""
    text = text.strip(" \t")
    if not _COUNT.fullmatch(text):
        return None
    count = int(text)
    return count if count <= MAX_LENGTH else None


def parse_content_length(value: str | None, *,
                         transfer_encoding: str | None = None) -> int | None:
    """``Content-Length`` as a byte count, or None for "unknown".

    A list of equal values (``42, 42``) is that value (RFC 9110 s8.6).
    Negative, non-numeric, conflicting or absurd values are unknown, and so
    is any length beside a ``Transfer-Encoding``, which overrides it (RFC
    9112 s6.3): the body then ends where its framing or the connection does.
    """
    # An empty Transfer-Encoding is none at all, for http.client too.
    if value is None or (transfer_encoding is not None and transfer_encoding.strip(" \t")):
        return None
    counts = {parse_count(part) for part in value.split(",")}
    if len(counts) != 1:
        return None
    return counts.pop()


def parse_content_range(value: str | None) -> tuple[int, int, int | None] | None:
    """A 206's ``bytes FIRST-LAST/TOTAL`` as (first, last, total); total is
    None for ``*``. None when malformed or impossible (last before first,
    or not inside total)."""
    if value is None:
        return None
    match = _CONTENT_RANGE.fullmatch(value.strip(" \t"))
    if not match:
        return None
    first, last = int(match.group(1)), int(match.group(2))
    total = None if match.group(3) == "*" else int(match.group(3))
    if first > last or (total is not None and last >= total):
        return None
    return first, last, total


def parse_unsatisfied_range(value: str | None) -> int | None:
    """The length N of a 416's ``Content-Range: bytes */N``, or None."""
    if value is None:
        return None
    match = _UNSATISFIED_RANGE.fullmatch(value.strip(" \t"))
    return int(match.group(1)) if match else None
