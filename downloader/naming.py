"""Choosing a target's file name, safely.

Names from a server or a URL are reduced to a safe basename; ``out=`` names
were checked when the list was read. ``Names`` hands out collision-free
relative paths to workers under one lock.
"""
from __future__ import annotations

import os
import re
import threading
from pathlib import Path
from urllib.parse import unquote, urlsplit

STATE_DIR_NAME = ".downloader"
PART_SUFFIX = ".part"
MAX_NAME_BYTES = 240
FALLBACK_NAME = "index.html"

# C0, DEL and C1 (0x9b can start a terminal escape sequence).
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# A Content-Disposition parameter: name=token or name="quoted string".
_PARAM = re.compile(r'''\s*([^\s=;]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;]*)''')


def sanitize(name: str | None) -> str | None:
    """Reduce a server- or URL-given name to a safe basename, or None."""
    if not name:
        return None
    name = _CONTROL.sub("_", name)
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
    if len(ext.encode("utf-8", "surrogatepass")) > 16:
        stem, ext = name, ""
    room = limit - len(ext.encode("utf-8", "surrogatepass"))
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
            except (LookupError, UnicodeDecodeError):
                pass
    return params.get("filename") or None


def url_filename(url: str) -> str | None:
    """The last path segment of ``url``, percent-decoded, without its query."""
    path = urlsplit(url).path
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
    """Relative target paths already promised to an entry in this run."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._taken: set[str] = {STATE_DIR_NAME}
        self._files: set[str] = set()
        self._last_number: dict[str, int] = {}

    def _free(self, relative: str) -> bool:
        taken = self._taken
        if relative in taken or relative + PART_SUFFIX in taken:
            return False
        if relative.endswith(PART_SUFFIX) and relative[: -len(PART_SUFFIX)] in taken:
            return False
        return True

    def claim(self, relative: str) -> str:
        """Promise ``relative`` (or ``name.N.ext`` if taken) to the caller.

        ``ValueError`` when one of its folders is another entry's file:
        renaming the file itself cannot help then.
        """
        with self._lock:
            folder = relative.rpartition("/")[0]
            while folder:
                if folder in self._files:
                    raise ValueError(f"{folder} is another entry's file, not a folder")
                folder = folder.rpartition("/")[0]
            # Start after the last number handed out for this name, so that
            # 100,000 entries all called index.html cost no more than one.
            n = self._last_number.get(relative, 0)
            candidate = numbered(relative, n) if n else relative
            while not self._free(candidate):
                n += 1
                candidate = numbered(relative, n)
            self._last_number[relative] = n
            self._taken.add(candidate)
            self._files.add(candidate)
            # A file's folders cannot also be files of this run.
            folder = candidate.rpartition("/")[0]
            while folder:
                self._taken.add(folder)
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
