"""Resume and conditional requests, as pure functions.

Which headers an attempt sends (``Range`` + ``If-Range`` to extend a
``.part``; ``If-None-Match`` / ``If-Modified-Since`` for ``--if-exists
update``) and whether a 206 or a 416 reply is the one asked for.
"""
from __future__ import annotations

import re
from email.utils import formatdate

from .state import Record

_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)")
_UNSATISFIED_RANGE = re.compile(r"bytes\s+\*/(\d+)")

Validator = tuple[str, str]
"""(header, value): the header the server sent it in, and its exact value."""


def strong_validator(etag: str | None, last_modified: str | None) -> Validator | None:
    """What ``If-Range`` may carry: a strong ETag, else Last-Modified."""
    if etag and not etag.startswith("W/"):
        return "ETag", etag
    if last_modified:
        return "Last-Modified", last_modified
    return None


def range_headers(validator: Validator, offset: int) -> dict[str, str]:
    """Ask for the rest of a file from ``offset``, only if it is unchanged."""
    return {"Range": f"bytes={offset}-", "If-Range": validator[1]}


def conditional_headers(known: Record | None, mtime: float) -> dict[str, str]:
    """Ask for the file only if the server has a newer one than ours.

    The exact ETag and Last-Modified the server sent last time are replayed;
    with neither on record, the file's own modification time stands in.
    """
    headers: dict[str, str] = {}
    if known and known.etag:
        headers["If-None-Match"] = known.etag
    if known and known.last_modified:
        headers["If-Modified-Since"] = known.last_modified
    elif not known or not known.etag:
        headers["If-Modified-Since"] = formatdate(mtime, usegmt=True)
    return headers


def partial_total(content_range: str | None, offset: int, asked: Validator | None,
                  current: str | None) -> int | None:
    """The file's full length when a 206 holds exactly the rest of the file
    asked for, from ``offset``, of the version ``If-Range`` named; else None.

    ``current`` is the reply's validator of the same kind as ``asked``: a
    server that ignores ``If-Range`` may send another version's bytes.
    """
    match = _CONTENT_RANGE.fullmatch((content_range or "").strip())
    if not match or match.group(3) == "*":
        return None
    first, last, total = int(match.group(1)), int(match.group(2)), int(match.group(3))
    if first != offset or last + 1 != total:
        return None
    if asked is not None and current is not None and current != asked[1]:
        return None
    return total


def unsatisfied_total(content_range: str | None) -> int | None:
    """The length a 416 reports (``bytes */N``), if it says."""
    match = _UNSATISFIED_RANGE.fullmatch((content_range or "").strip())
    return int(match.group(1)) if match else None
