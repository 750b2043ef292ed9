"""The files a run writes besides the downloads: the JSON report, the list
of failed entries and the checksum list.

Each is written as results land, to a temporary file beside its target
that is renamed into place at the end (readers see the old file or the
whole new one), so that a run of millions of entries holds none of them
in memory. ``-`` streams to standard output instead.
"""
from __future__ import annotations

import json
import os
import secrets
import sys
from pathlib import Path
from typing import IO, Any, Union

from .checksums import checksum_text, file_checksums
from .entries import Entry
from .results import FAILED, Result, Tally, report_head


HELD_LIMIT = 10_000


class InputOrder:
    """Puts outcomes back in input order as they come in, holding those
    that ended before an earlier one. Held behind a slow entry, at most
    ``limit`` wait: past that they go out as they are (in order among
    themselves), so that memory stays bounded whatever the run."""

    def __init__(self, limit: int = HELD_LIMIT) -> None:
        self.limit = limit
        self._next = 0  # the first index not yet handed on
        self._held: dict[int, Any] = {}

    def push(self, outcome: Any) -> list[Any]:
        """``outcome`` (with an ``index``) came in: those now due, in order."""
        if outcome.index < self._next:  # late: the run went on without it
            return [outcome]
        self._held[outcome.index] = outcome
        due = []
        while self._next in self._held:
            due.append(self._held.pop(self._next))
            self._next += 1
        if len(self._held) > self.limit:
            due.extend(self.flush())
        return due

    def flush(self) -> list[Any]:
        """Every outcome still held, in order."""
        due = [self._held.pop(index) for index in sorted(self._held)]
        if due:
            self._next = max(self._next, due[-1].index + 1)
        return due


class StreamedFile:
    """Text written bit by bit to a temporary file beside ``path``, which
    ``commit`` syncs and renames into place (``discard`` removes it).
    ``mode`` is filtered by the umask, as for any new file (the umask is
    never changed: other threads may be creating files); ``errors`` is the
    UTF-8 encoder's, for text that is not UTF-8. ``-`` is standard output."""

    def __init__(self, path: str | os.PathLike[str], mode: int = 0o666,
                 errors: str = "strict") -> None:
        self.target = Path(path)
        self.tmp: Path | None = None
        self._stream: IO[str]
        if str(path) == "-":
            self._stream = sys.stdout
            self._errors = errors
            return
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
        for _ in range(100):
            tmp = self.target.with_name(f".{self.target.name}.{secrets.token_hex(4)}.tmp")
            try:
                fd = os.open(tmp, flags, mode)
                break
            except FileExistsError:
                continue
        else:
            raise FileExistsError(f"no free temporary name beside {self.target}")
        self.tmp = tmp
        self._stream = os.fdopen(fd, "w", encoding="utf-8", errors=errors)

    def write(self, text: str) -> None:
        if self.tmp is None:
            # Standard output's own encoding may not take every character.
            encoding = getattr(self._stream, "encoding", None) or "utf-8"
            text = text.encode(encoding, self._errors).decode(encoding, "replace")
        self._stream.write(text)

    def commit(self) -> None:
        self._stream.flush()
        if self.tmp is None:
            return
        try:
            os.fsync(self._stream.fileno())
            self._stream.close()
            os.replace(self.tmp, self.target)
        except BaseException:
            self.discard()
            raise
        self.tmp = None

    def discard(self) -> None:
        if self.tmp is None:
            return
        try:
            self._stream.close()
        except OSError:
            pass
        try:
            os.unlink(self.tmp)
        except OSError:
            pass
        self.tmp = None


def write_atomic(path: str | os.PathLike[str], text: str, mode: int = 0o666,
                 errors: str = "strict") -> None:
    """Write ``text`` to ``path`` so that readers see the old or the new
    file, never half of one."""
    out = StreamedFile(path, mode, errors)
    try:
        out.write(text)
        out.commit()
    finally:
        out.discard()


class ReportWriter:
    """The JSON report, one result at a time. The file is valid JSON, with
    the schema of ``Summary.to_json``, once ``finish`` has run: at the end
    of the run, however it ended. A URL given with bytes that are not UTF-8
    keeps them as \\udcXX escapes."""

    def __init__(self, path: str) -> None:
        self._file = StreamedFile(path, errors="backslashreplace")
        self._file.write('{\n  "results": [')
        self._separator = "\n    "

    def add(self, entry: Entry | None, result: Result) -> None:
        # One write per result: a result is in the file whole or not at all.
        self._file.write(self._separator + json.dumps(result.to_json(), ensure_ascii=False))
        self._separator = ",\n    "

    def finish(self, tally: Tally) -> None:
        # The other fields after the results: only now are they known.
        head = json.dumps(report_head(tally), indent=2, ensure_ascii=False)
        self._file.write("\n  ],\n" + head.removeprefix("{\n") + "\n")
        self._file.commit()

    def discard(self) -> None:
        self._file.discard()


class FailedList:
    """Failed entries as a URL list (with their options), owner-readable
    only: it keeps credentials so the entries can be retried. A URL that
    came with bytes that are not UTF-8 is written back as those bytes, so
    the list is the user's own lines."""

    def __init__(self, path: str) -> None:
        self._file = StreamedFile(path, mode=0o600, errors="surrogateescape")
        self._file.write("# failed entries; retry with: downloader -i THIS_FILE\n")

    def add(self, entry: Entry | None, result: Result) -> None:
        if result.status != FAILED:
            return
        if entry is None:  # not a valid entry: retrying would fail again
            self._file.write(f"# {result.error}\n# {result.url}\n")
            return
        options = [f"out={entry.out}"] if entry.out is not None else []
        options += [f"{name}={value}" for name, value in entry.checksums.items()]
        self._file.write(f"# {result.error}\n" + " ".join([*entry.urls, *options]) + "\n")

    def finish(self, tally: Tally) -> None:
        self._file.commit()

    def discard(self) -> None:
        self._file.discard()


class ChecksumCollector:
    """A ``sha256sum -c`` list of every file the run downloaded or kept,
    each path relative to the list's own folder (the current one for
    ``-``), sorted by path. A downloaded file's SHA-256 was computed as it was written; a
    kept one is read once at the end, unless this run already checked it.
    It holds a path and a digest per file until then."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._files: dict[str, str | None] = {}

    def add(self, entry: Entry | None, result: Result) -> None:
        if result.path is not None and result.status != FAILED:
            if self._files.get(str(result.path)) is None:
                self._files[str(result.path)] = result.sha256

    def finish(self, tally: Tally) -> None:
        files: list[tuple[Path, str]] = []
        # Results land in the order they end: list the files by name.
        for name, digest in sorted(self._files.items()):
            if digest is None:
                try:
                    digest = file_checksums(Path(name))["sha256"]
                except OSError:
                    continue  # gone or unreadable since: nothing to vouch for
            files.append((Path(name), digest))
        where = "." if self.path == "-" else os.path.dirname(os.path.abspath(self.path))
        out = StreamedFile(self.path, errors="surrogateescape")
        try:
            out.write(checksum_text(files, os.path.realpath(where)))
            out.commit()
        finally:
            out.discard()

    def discard(self) -> None:
        self._files.clear()


Output = Union[ReportWriter, FailedList, ChecksumCollector]

