"""``--split`` as pure functions: which replies allow a split, how a file
is cut into ranges, what is left of it, and whether a range's reply is the
one asked for. No I/O, no clock (the split itself is split.py's).
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from email.utils import parsedate_to_datetime

from .headers import parse_content_range
from .resume import Validator
from .state import Span

# A range smaller than this is not worth a connection of its own (a
# request's round trip costs more than it saves).
MIN_PIECE = 256 * 1024


def split_validator(headers: Mapping[str, str]) -> Validator | None:
    """The validator every range's ``If-Range`` carries, if the reply has a
    strong one: an ETag not marked weak, or a Last-Modified at least a
    second older than the reply's Date (RFC 9110 s8.8.2.2: a file changed
    twice within its Last-Modified second would otherwise mix two versions
    without a sign). None: the file is fetched in one stream."""
    etag = headers.get("ETag")
    if etag and not etag.startswith("W/"):
        return "ETag", etag
    last_modified, date = headers.get("Last-Modified"), headers.get("Date")
    if not last_modified or not date:
        return None
    try:
        age = (parsedate_to_datetime(date) - parsedate_to_datetime(last_modified)).total_seconds()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return ("Last-Modified", last_modified) if age >= 1 else None


def merge(spans: Iterable[Span]) -> tuple[Span, ...]:
    """Sorted, with overlapping and touching spans joined; empty ones dropped."""
    merged: list[Span] = []
    for start, end in sorted(span for span in spans if span[1] > span[0]):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return tuple(merged)


def gaps(total: int, done: Iterable[Span]) -> list[Span]:
    """The spans of ``[0, total)`` not in ``done``."""
    missing, position = [], 0
    for start, end in merge(done):
        if start > position:
            missing.append((position, min(start, total)))
        position = max(position, end)
    if position < total:
        missing.append((position, total))
    return [span for span in missing if span[1] > span[0]]


def pieces(missing: Sequence[Span], count: int, smallest: int = MIN_PIECE) -> list[Span]:
    """Cut what is missing into about ``count`` ranges of like size (none
    smaller than ``smallest`` unless a gap is), in file order."""
    left = sum(end - start for start, end in missing)
    if not left:
        return []
    size = max(smallest, -(-left // max(1, count)))
    cut: list[Span] = []
    for start, end in missing:
        parts = max(1, round((end - start) / size))
        step = -(-(end - start) // parts)
        cut.extend((first, min(end, first + step)) for first in range(start, end, step))
    return cut


def range_headers(validator: Validator, start: int, end: int) -> dict[str, str]:
    """Ask for bytes ``[start, end)`` of the version ``validator`` names."""
    return {"Range": f"bytes={start}-{end - 1}", "If-Range": validator[1]}


def ranges_offered(headers: Mapping[str, str]) -> bool:
    """Whether a 200 says the server serves byte ranges (``Accept-Ranges:
    bytes``); one that does not say so is not asked for them."""
    return "bytes" in (headers.get("Accept-Ranges") or "").lower().replace(",", " ").split()


def range_fits(content_range: str | None, start: int, end: int, total: int) -> bool:
    """Whether a 206's Content-Range is exactly ``[start, end)`` of ``total``."""
    parsed = parse_content_range(content_range)
    return parsed == (start, end - 1, total)
