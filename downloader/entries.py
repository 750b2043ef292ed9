"""Input entries: URL lists, command-line URLs and library arguments.

Every input item becomes an ``Item``: a valid ``Entry`` or the reason it is
not one, labelled with where it came from (``urls.txt:3``, ``argument 2``).
Bad items become failed results; they never stop the run.
"""
from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Union
from urllib.parse import urlsplit

from .checksums import ALGORITHMS, check_digest
from .naming import CONTROL, MAX_NAME_BYTES, STATE_DIR_NAME, SURROGATES

# URLs hold no whitespace either.
_CONTROL_OR_SPACE = re.compile(f"[{CONTROL}\\s]")
_CONTROL = re.compile(f"[{CONTROL}]")
# Lone surrogates: what undecodable bytes in argv become (surrogateescape),
# or any str a library caller passes. Like U+FFFD, they are not UTF-8 text.
_NOT_UTF8 = re.compile(f"[\ufffd{SURROGATES}]")
# A token that begins like a URL ("scheme://") is a mirror, not an option.
_URL_START = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
KEYS = ("out", "sha256", "md5", "sha1", "sha512")


@dataclass(frozen=True)
class Entry:
    """One thing to download: a URL, an optional target path relative to
    DEST, optional expected checksums (hex) and other URLs of the same
    file (``mirrors``, tried in turn when one fails)."""

    url: str
    out: str | None = None
    sha256: str | None = None
    md5: str | None = None
    sha1: str | None = None
    sha512: str | None = None
    mirrors: tuple[str, ...] = ()

    @property
    def checksums(self) -> dict[str, str]:
        """Algorithm -> the hex digest the file must have (those given)."""
        return {name: value for name in ALGORITHMS
                if (value := getattr(self, name)) is not None}

    @property
    def urls(self) -> tuple[str, ...]:
        """The URL, then its mirrors."""
        return (self.url, *self.mirrors)


@dataclass(frozen=True)
class Item:
    """One input item: ``entry`` when valid, else ``error`` says why not."""

    where: str
    url: str
    entry: Entry | None = None
    error: str | None = None


EntryLike = Union[str, Entry, Mapping]


def check_url(url: str) -> str | None:
    """Return why ``url`` cannot be downloaded, or None when it can."""
    if not url:
        return "empty URL"
    if _CONTROL_OR_SPACE.search(url):
        return "URL contains whitespace or control characters"
    if _NOT_UTF8.search(url):
        return "URL is not valid UTF-8"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        # The parser's message may quote a password: say only what is wrong.
        return "not a valid URL (bad host or port)"
    if parts.scheme.lower() not in ("http", "https"):
        if not parts.scheme or "://" not in url:
            # Not echoed: the text may hold credentials, and the result shows it redacted.
            return "not a URL (expected http://… or https://…)"
        return f"unsupported scheme {parts.scheme!r} (only http and https)"
    if not parts.hostname:
        return "URL has no host"
    return None


def check_out(out: str) -> str | None:
    """Return why ``out=`` is unusable, or None. It must stay inside DEST."""
    if not out:
        return "out= is empty"
    if _CONTROL.search(out):
        return "out= contains control characters"
    if _NOT_UTF8.search(out):
        return "out= is not valid UTF-8"
    if out.startswith(("/", "\\")) or re.match(r"[A-Za-z]:", out):
        return f"out={out} is an absolute path; it must be relative to DEST"
    parts = out.replace("\\", "/").split("/")
    if ".." in parts:
        return f"out={out} leaves DEST"
    if parts[-1] in ("", "."):  # "dir/", "dir/.": a folder
        return f"out={out} names no file"
    parts = [p for p in parts if p not in ("", ".")]
    if parts[0] == STATE_DIR_NAME:
        return f"out={out} is inside DEST/{STATE_DIR_NAME}, which holds the run's state"
    if any(len(p.encode("utf-8")) > 255 for p in parts):
        return f"out={out} has a path component longer than 255 bytes"
    # The same room server names leave, so that NAME.part and NAME.N.ext fit.
    if len(parts[-1].encode("utf-8")) > MAX_NAME_BYTES:
        return f"out={out} has a file name longer than {MAX_NAME_BYTES} bytes"
    return None


def make_item(where: str, entry: Entry) -> Item:
    """Validate ``entry`` and wrap it with its origin."""
    error = check_url(entry.url)
    for number, mirror in enumerate(entry.mirrors, 1):
        if error is None and (problem := check_url(mirror)) is not None:
            error = f"mirror {number}: {problem}"
    for algorithm in ALGORITHMS:
        value = getattr(entry, algorithm)
        if error is None and value is not None:
            error = check_digest(algorithm, value)
    if error is None and entry.out is not None:
        error = check_out(entry.out)
    if error is not None:
        return Item(where, entry.url, error=f"{where}: {error}")
    mirrors = tuple(dict.fromkeys(m for m in entry.mirrors if m != entry.url))
    entry = replace(entry, mirrors=mirrors,
                    **{name: value.lower() for name, value in entry.checksums.items()})
    return Item(where, entry.url, entry=entry)


def parse_line(line: str, where: str) -> Item | None:
    """Parse one URL-list line; None for blank lines and comments."""
    text = line.strip()
    if not text or text.startswith("#"):
        return None
    url, *tokens = text.split()
    mirrors: list[str] = []
    values: dict[str, str] = {}
    for token in tokens:
        if _URL_START.match(token):
            if values:
                return Item(where, url, error=f"{where}: mirror URLs go before the "
                                              "key=value options")
            mirrors.append(token)
            continue
        key, sep, value = token.partition("=")
        if not sep:
            return Item(where, url, error=f"{where}: expected key=value, got {token!r}")
        if key not in KEYS:
            return Item(where, url, error=f"{where}: unknown key {key!r} "
                                          f"(known: {', '.join(KEYS)})")
        if key in values:
            return Item(where, url, error=f"{where}: {key}= given twice")
        values[key] = value
    return make_item(where, Entry(url, mirrors=tuple(mirrors), **values))


def parse_lines(lines: Iterable[str], name: str) -> Iterator[Item]:
    """Parse a URL list read from ``name`` (``-`` for stdin)."""
    for number, line in enumerate(lines, 1):
        if number == 1:
            line = line.lstrip("\ufeff")
        item = parse_line(line, f"{name}:{number}")
        if item is not None:
            yield item


def from_arguments(urls: Iterable[str]) -> list[Item]:
    """Items for URLs given on the command line (``argument N``)."""
    return [make_item(f"argument {n}", Entry(url)) for n, url in enumerate(urls, 1)]


def from_library(urls: Iterable[EntryLike]) -> Iterator[Item]:
    """Items for ``download_all``'s ``urls`` argument, read as they are
    needed. ``TypeError`` for a lone string (at once) or a value that is
    no entry (when it is reached)."""
    if isinstance(urls, (str, bytes)):
        raise TypeError("urls must be an iterable of URLs, not a single string")
    return _library_items(urls)


def _library_items(urls: Iterable[EntryLike]) -> Iterator[Item]:
    for n, value in enumerate(urls, 1):
        where = f"entry {n}"
        if isinstance(value, Entry):
            entry = value
            if entry.out is not None and not isinstance(entry.out, str):
                entry = replace(entry, out=os.fspath(entry.out))
            entry = replace(entry, mirrors=_mirrors(where, entry.mirrors))
        elif isinstance(value, str):
            entry = Entry(value)
        elif isinstance(value, Mapping):
            unknown = set(value) - {"url", "mirrors", *KEYS}
            url = value.get("url")
            if not isinstance(url, str):
                raise TypeError(f"{where}: a mapping needs a 'url' string")
            if unknown:
                # key=str: a mapping may mix key types, which cannot be compared.
                keys = sorted(unknown, key=str)
                yield Item(where, url, error=f"{where}: unknown key(s) {keys}")
                continue
            out = value.get("out")
            entry = Entry(url, os.fspath(out) if out is not None else None,
                          mirrors=_mirrors(where, value.get("mirrors", ())),
                          **{name: value.get(name) for name in ALGORITHMS})
        else:
            raise TypeError(f"{where}: expected a URL string, a mapping or an Entry, "
                            f"got {type(value).__name__}")
        yield make_item(where, entry)


def _mirrors(where: str, mirrors: object) -> tuple[str, ...]:
    """A library caller's mirrors: an iterable of URL strings."""
    if isinstance(mirrors, (str, bytes)) or not isinstance(mirrors, Iterable):
        raise TypeError(f"{where}: mirrors must be a list of URL strings, "
                        f"not {type(mirrors).__name__}")
    urls = tuple(mirrors)
    for url in urls:
        if not isinstance(url, str):
            raise TypeError(f"{where}: mirrors must be URL strings, got {type(url).__name__}")
    return urls
