"""Checksums: the algorithms a list may name, checking what was received,
and ``sha256sum``-format files, read (``--checksums``) and written
(``--write-checksums``).

Hashing is ``hashlib``'s. A download is hashed only by the algorithms it
is expected to match (or by SHA-256 when the user asks for the digests):
SHA-256 alone costs about as much CPU per byte as the rest of the byte path.
"""
from __future__ import annotations

import hashlib
import os
import posixpath
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Algorithm -> hex digits, in the order mismatches are reported.
ALGORITHMS = {"md5": 32, "sha1": 40, "sha256": 64, "sha512": 128}
_BY_LENGTH = {length: name for name, length in ALGORITHMS.items()}
_BLOCK = 1 << 20

# GNU coreutils: "HEX  NAME" (text mode) or "HEX *NAME" (binary mode); a
# line beginning with a backslash has "\\", "\n" and "\r" escaped in NAME.
_GNU = re.compile(r"([0-9a-fA-F]+) [ *](.+)")
# BSD and `sha256sum --tag`: "SHA256 (NAME) = HEX".
_BSD = re.compile(r"(MD5|SHA1|SHA256|SHA512) \((.+)\) = ([0-9a-fA-F]+)")
_ESCAPE = re.compile(r"\\(.)")
_UNESCAPE = {"\\": "\\", "n": "\n", "r": "\r"}

Checksums = Mapping[str, str]
"""Algorithm -> lowercase hex digest."""


def check_digest(algorithm: str, value: object) -> str | None:
    """Why ``value`` is not a hex digest for ``algorithm``, or None."""
    length = ALGORITHMS[algorithm]
    if not isinstance(value, str) or len(value) != length \
            or not re.fullmatch(r"[0-9a-fA-F]+", value):
        return f"{algorithm}= must be {length} hex digits, got {value!r}"
    return None


def mismatch(expected: Checksums, actual: Checksums) -> str | None:
    """The first checksum ``actual`` fails, as a one-line reason; or None."""
    for algorithm in ALGORITHMS:
        want = expected.get(algorithm)
        if want is not None and actual.get(algorithm) != want:
            return f"{algorithm} mismatch: expected {want}, got {actual.get(algorithm)}"
    return None


def new_hashers(algorithms: Iterable[str]) -> dict[str, Any]:
    """A fresh hashlib object for each algorithm."""
    # Integrity checks, not security: md5 and sha1 stay usable on FIPS systems.
    return {name: hashlib.new(name, usedforsecurity=False) for name in algorithms}


def hash_file(path: Path, hashers: Mapping[str, Any]) -> None:
    """Feed the file at ``path`` into every hasher, reading it once."""
    with open(path, "rb") as f:
        while block := f.read(_BLOCK):
            for hasher in hashers.values():
                hasher.update(block)


def file_checksums(path: Path, algorithms: Iterable[str] = (), *,
                   sha256: bool = True) -> dict[str, str]:
    """The file's digest by each of ``algorithms``, and (unless told not
    to) its SHA-256. Nothing to compute: the file is not read."""
    names = ("sha256", *algorithms) if sha256 else tuple(algorithms)
    if not names:
        return {}
    hashers = new_hashers(names)
    hash_file(path, hashers)
    return {name: hasher.hexdigest() for name, hasher in hashers.items()}


# -- sha256sum-format files ----------------------------------------------------

class ChecksumFileError(ValueError):
    """A checksum file that cannot be used; the message names ``FILE:LINE``."""


@dataclass(frozen=True, eq=False)
class ChecksumList:
    """The checksums a ``SHA256SUMS``-style file lists, by name.

    A target is matched by its path relative to DEST, then by where the
    name points from the list's own folder (so a list written with
    ``--write-checksums`` elsewhere reads back), then by its basename
    against names that have no folder in them.
    """

    source: str
    """The file, as the user named it."""
    by_name: Mapping[str, Checksums]
    """Listed name (normalised) -> its checksums."""
    by_location: Mapping[str, Checksums]
    """Absolute path the name points to, from the list's folder -> checksums."""

    def expected(self, root: Path, relative: str) -> Checksums:
        """What the file at ``root / relative`` must match (maybe nothing)."""
        found = self.by_name.get(relative)
        if found is None:
            found = self.by_location.get(os.path.normpath(root / relative))
        if found is None:
            found = self.by_name.get(relative.rpartition("/")[2])
        return found or {}


def parse_checksum_line(line: str) -> tuple[str, str, str] | None:
    """``(algorithm, hex, name)`` from one line; None for a line to skip
    (blank, or a ``#`` comment). ``ValueError`` says what is wrong."""
    line = line.rstrip("\r\n")
    if not line.strip() or line.lstrip().startswith("#"):
        return None
    escaped = line.startswith("\\")
    text = line[1:] if escaped else line
    bsd = _BSD.fullmatch(text)
    if bsd:
        tag, name, digest = bsd.groups()
        algorithm = tag.lower()
        if len(digest) != ALGORITHMS[algorithm]:
            raise ValueError(f"a {tag} checksum has {ALGORITHMS[algorithm]} hex digits, "
                             f"not {len(digest)}")
    else:
        gnu = _GNU.fullmatch(text)
        if not gnu:
            raise ValueError("expected 'HEX  NAME', 'HEX *NAME' or 'SHA256 (NAME) = HEX'")
        digest, name = gnu.groups()
        found = _BY_LENGTH.get(len(digest))
        if found is None:
            raise ValueError(f"a checksum of {len(digest)} hex digits is none of "
                             "md5 (32), sha1 (40), sha256 (64), sha512 (128)")
        algorithm = found
    if escaped:
        name = _ESCAPE.sub(lambda m: _UNESCAPE.get(m.group(1), m.group(0)), name)
    return algorithm, digest.lower(), name


def read_checksum_list(path: str) -> ChecksumList:
    """Read a ``sha256sum``/``md5sum``-format file. ``ChecksumFileError``
    names the first bad line as ``FILE:LINE``; ``OSError`` if unreadable."""
    folder = os.path.realpath(os.path.dirname(os.path.abspath(path)))
    by_name: dict[str, dict[str, str]] = {}
    by_location: dict[str, dict[str, str]] = {}
    # Names are bytes on disk: keep any that are not UTF-8 as they are.
    with open(path, encoding="utf-8", errors="surrogateescape", newline="\n") as f:
        for number, line in enumerate(f, 1):
            if number == 1:
                line = line.lstrip("\ufeff")
            try:
                parsed = parse_checksum_line(line)
            except ValueError as exc:
                raise ChecksumFileError(f"{path}:{number}: {exc}") from None
            if parsed is None:
                continue
            algorithm, digest, name = parsed
            listed = posixpath.normpath(name)
            sums = by_name.setdefault(listed, {})
            if sums.get(algorithm, digest) != digest:
                raise ChecksumFileError(f"{path}:{number}: {name} is listed again with "
                                        f"another {algorithm} checksum")
            sums[algorithm] = digest
            by_location[os.path.normpath(os.path.join(folder, listed))] = sums
    return ChecksumList(path, by_name, by_location)


def checksum_line(digest: str, name: str) -> str:
    """One ``sha256sum`` line; a name with a backslash or a line break is
    escaped the way GNU coreutils does it."""
    if any(c in name for c in "\\\n\r"):
        name = name.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r")
        return f"\\{digest}  {name}\n"
    return f"{digest}  {name}\n"


def checksum_text(files: Iterable[tuple[Path, str]], folder: str) -> str:
    """A ``sha256sum -c``-ready list of ``(path, sha256)``, each path
    relative to ``folder`` (where the list is written)."""
    return "".join(checksum_line(digest, Path(os.path.relpath(path, folder)).as_posix())
                   for path, digest in files)
