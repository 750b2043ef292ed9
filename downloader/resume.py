"""Resume and conditional requests, as pure functions.

Which headers an attempt sends (``Range`` + ``If-Range`` to extend a
``.part``; ``If-None-Match`` / ``If-Modified-Since`` for ``--if-exists
update``) and whether a 206 or a 416 reply is the one asked for (its
headers parsed by ``headers.py``).
"""
from __future__ import annotations

from collections.abc import Mapping
from email.utils import formatdate

from .state import Record

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


def same_version(asked: Validator | None, reply: Mapping[str, str],
                 strict: bool = False) -> bool:
    """Whether a 206 or 416 is of the version ``If-Range`` named: it carries,
    of the kind of validator sent, the same value (or none at all, unless
    ``strict``: the ``.part`` may come from another server). A server that
    ignores ``If-Range`` may send another version's bytes."""
    if asked is None:
        return True
    current = reply.get(asked[0])
    return current == asked[1] or (current is None and not strict)


def rest_of_file(content_range: tuple[int, int, int | None], offset: int) -> int | None:
    """The file's full length when a 206's range is exactly the rest of the
    file from ``offset``; else None."""
    first, last, total = content_range
    if first != offset or total is None or last + 1 != total:
        return None
    return total
