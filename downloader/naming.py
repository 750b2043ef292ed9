"""Choosing a target's file name, safely.

Names from a server or a URL are reduced to a safe basename; ``out=`` names
were checked when the list was read. ``Names`` hands out collision-free
relative paths to workers under one lock, and remembers them on disk.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import unquote, urlsplit

from .scratch import Scratch

STATE_DIR_NAME = ".downloader"
PART_SUFFIX = ".part"
MAX_NAME_BYTES = 240
FALLBACK_NAME = "index.html"

# C0, DEL and C1 (0x9b can start a terminal escape sequence): in no name,
# no URL, no line we print.
CONTROL = "\x00-\x1f\x7f-\x9f"
# Lone surrogates: percent-decoding, filename* codecs (utf-7, unicode_escape)
# and argv can produce them, and no file system or UTF-8 report holds them.
SURROGATES = "\ud800-\udfff"
_UNSAFE = re.compile(f"[{CONTROL}{SURROGATES}]")
# A Content-Disposition parameter: name=token or name="quoted string". A name
# starts only after whitespace, ';' or '"' (the lookbehind) and holds no '"',
# so no run of text is scanned from more than one start: without that, a
# server's 64 KB header of one long word cost seconds per kilobyte squared.
_PARAM = re.compile(r'''(?<![^\s;"])([^\s=;"]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;]*)''')


def sanitize(name: str | None) -> str | None:
    """Reduce a server- or URL-given name to a safe basename, or None."""
    if not name:
        return None
    name = _UNSAFE.sub("_", name)
    name = name.replace("\\", "/").rsplit("/", 1)[-1].strip()
    if name in ("", ".", ".."):
        return None
    return truncate(name)


def truncate(name: str, limit: int = MAX_NAME_BYTES) -> str:
    """Cut ``name`` to ``limit`` UTF-8 bytes at a character boundary,
    keeping its extension (when it is a short one)."""
    if len(name.encode("utf-8", "surrogatepass")) <= limit:
        return name
    stem, ext = os.path.splitext(name)
    ext_bytes = len(ext.encode("utf-8", "surrogatepass"))
    if ext_bytes > 16 or ext_bytes >= limit:
        stem, ext = name, ""
    room = max(limit - len(ext.encode("utf-8", "surrogatepass")), 0)
    cut = stem.encode("utf-8", "surrogatepass")[:room].decode("utf-8", "ignore")
    return cut + ext


def disposition_filename(header: str | None) -> str | None:
    """The file name a ``Content-Disposition`` header offers (unsanitised):
    ``filename*`` (RFC 5987/6266) first, then ``filename``."""
    if not header:
        return None
    params: dict[str, str] = {}
    _, _, rest = header.partition(";")
    for match in _PARAM.finditer(rest):
        key, value = match.group(1).lower(), match.group(2).strip()
        if value.startswith('"') and value.endswith('"') and len(value) >= 2:
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        params.setdefault(key, value)
    extended = params.get("filename*")
    if extended:
        charset, quote, encoded = extended.partition("'")
        if quote:
            _language, _, encoded = encoded.partition("'")
            try:
                return unquote(encoded, encoding=charset or "utf-8", errors="strict")
            # Any codec name a server likes: unknown (LookupError), with a
            # NUL (ValueError), or one that fails in its own way ("undefined",
            # "idna" raise plain UnicodeError, a ValueError).
            except (LookupError, ValueError):
                pass
    return params.get("filename") or None


def url_filename(url: str) -> str | None:
    """The last path segment of ``url``, percent-decoded, without its query."""
    try:
        path = urlsplit(url).path
    except ValueError:  # "http://[::1/x": an unclosed IPv6 bracket
        return None
    segment = path.rsplit("/", 1)[-1]
    return unquote(segment, errors="replace") if segment else None


def server_name(url: str, content_disposition: str | None) -> str:
    """The safe name for a target named by the server or the URL."""
    return (sanitize(disposition_filename(content_disposition))
            or sanitize(url_filename(url))
            or FALLBACK_NAME)


def numbered(relative: str, n: int) -> str:
    """``dir/name.ext`` -> ``dir/name.N.ext``."""
    folder, slash, name = relative.rpartition("/")
    stem, ext = os.path.splitext(name)
    # Names are cut to 240 bytes, so ".N" still fits the usual 255.
    return f"{folder}{slash}{stem}.{n}{ext}"


class Names:
    """Relative target paths already promised to an entry in this run,
    kept in the run's ``Scratch`` database (memory stays flat however many
    names a run hands out)."""

    def __init__(self, scratch: Scratch | None = None, remember_owners: bool = False) -> None:
        self._scratch = scratch if scratch is not None else Scratch()
        # Only worth its cost when a job can run twice (worker processes).
        self._remember_owners = remember_owners
        self._add(STATE_DIR_NAME, is_file=False)

    def _is(self, relative: str, *, is_file: bool = False) -> bool:
        row = self._scratch.one("SELECT is_file FROM taken WHERE name=?", (relative,))
        return row is not None and (bool(row[0]) or not is_file)

    def _add(self, relative: str, *, is_file: bool) -> None:
        self._scratch.run("INSERT OR REPLACE INTO taken VALUES (?, ?)", (relative, is_file))

    def _free(self, relative: str) -> bool:
        if self._is(relative) or self._is(relative + PART_SUFFIX):
            return False
        return not (relative.endswith(PART_SUFFIX) and self._is(relative[: -len(PART_SUFFIX)]))

    def claim(self, relative: str, owner: str | None = None) -> str:
        """Promise ``relative`` (or ``name.N.ext`` if taken) to the caller.

        An ``owner`` (the entry's key) that claims again gets the name it
        was given before: its job may be run again after its worker process
        died, and its ``.part`` is under that name. ``ValueError`` when one
        of its folders is another entry's file: renaming the file itself
        cannot help then.
        """
        scratch = self._scratch
        with scratch.lock:
            remember = self._remember_owners and owner is not None
            if remember:
                row = scratch.one("SELECT name FROM owners WHERE owner=?", (owner,))
                if row is not None:
                    return str(row[0])
            claimed = self._claim(relative)
            if remember:
                scratch.run("INSERT INTO owners VALUES (?, ?)", (owner, claimed))
            return claimed

    def _claim(self, relative: str) -> str:
        folder = relative.rpartition("/")[0]
        while folder:
            if self._is(folder, is_file=True):
                raise ValueError(f"{folder} is another entry's file, not a folder")
            # "a" then "a.part/b": a's download would need that folder.
            if folder.endswith(PART_SUFFIX) \
                    and self._is(folder[: -len(PART_SUFFIX)], is_file=True):
                raise ValueError(f"{folder} is where another entry's file is downloaded, "
                                 "not a folder")
            folder = folder.rpartition("/")[0]
        # Start after the last number handed out for this name, so that
        # 100,000 entries all called index.html cost no more than one.
        row = self._scratch.one("SELECT n FROM numbers WHERE name=?", (relative,))
        n = row[0] if row is not None else 0
        candidate = numbered(relative, n) if n else relative
        while not self._free(candidate):
            n += 1
            candidate = numbered(relative, n)
        if n:
            self._scratch.run("INSERT OR REPLACE INTO numbers VALUES (?, ?)", (relative, n))
        self._add(candidate, is_file=True)
        # A file's folders cannot also be files of this run.
        folder = candidate.rpartition("/")[0]
        while folder and not self._is(folder):
            self._add(folder, is_file=False)
            folder = folder.rpartition("/")[0]
        return candidate


def inside(root: Path, path: Path) -> bool:
    """Whether ``path`` (resolved, symlinks followed) lies inside ``root``."""
    try:
        path.resolve().relative_to(root)
    except ValueError:
        return False
    return True


def normalized_out(out: str) -> str:
    """``out=`` as a clean relative POSIX path (checked beforehand)."""
    parts = [p for p in out.replace("\\", "/").split("/") if p not in ("", ".")]
    return "/".join(parts)
