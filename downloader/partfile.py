"""``NAME.part``: the one file a transfer writes.

Opened fresh or to be extended, written (and hashed, when a checksum is
wanted) as the body streams in, with the disk's writeback started on the
way, synced, verified, given the server's modification time and renamed into
place — or discarded. Every failure of the local disk comes out as a
``DiskError`` that says what happened, never as a network fault.
"""
from __future__ import annotations

import errno
import os
from collections.abc import Iterable
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

from .checksums import hash_file, new_hashers
from .errors import TransferError
from .naming import PART_SUFFIX, inside

# The disk is full, or will not take writes: every file of the run would
# fail the same way, so the run stops.
_RUN_STOPPERS = {
    errno.ENOSPC: "no space left on device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EROFS: "read-only file system",
}


# Writeback of a big file is started every this many bytes, so that the
# disk writes while the rest streams in and the final fsync has little left
# to wait for (bench/README.md: the large-disk set).
WRITEBACK_STEP = 8 << 20


def writeback(fd: int, start: int, end: int) -> int:
    """Start writing bytes ``start`` to ``end`` of ``fd`` to the disk,
    without waiting; returns ``end``. Linux starts the writeback of dirty
    pages for POSIX_FADV_DONTNEED (and drops only clean ones, so nothing
    just written is lost from the cache); elsewhere it is a hint at most."""
    fadvise = getattr(os, "posix_fadvise", None)
    if fadvise is not None:
        try:
            fadvise(fd, start, end - start, os.POSIX_FADV_DONTNEED)
        except OSError:
            pass  # a hint: the final fsync writes whatever is left
    return end


class DiskError(TransferError):
    """A local file operation failed. ``stops_run`` when no other file of
    the run could fare better (full disk, read-only, DEST gone)."""

    def __init__(self, reason: str, stops_run: bool) -> None:
        super().__init__(reason)
        self.stops_run = stops_run


def disk_error(exc: OSError, root: Path, what: str) -> DiskError:
    """Name a local failure for what it is, with DEST."""
    known = _RUN_STOPPERS.get(exc.errno or 0)
    if known:
        return DiskError(f"{known} (DEST {root})", stops_run=True)
    if not root.is_dir():
        return DiskError(f"DEST {root} is gone", stops_run=True)
    if not os.access(root, os.W_OK | os.X_OK):
        return DiskError(f"DEST {root} is not writable", stops_run=True)
    reason = (exc.strerror or str(exc)).lower()
    return DiskError(f"cannot {what}: {reason} (DEST {root})", stops_run=False)


def make_folder(root: Path, folder: Path) -> None:
    """Create a target's sub-folder and make sure it is inside DEST.

    DEST itself was made and resolved when the run began; a sub-folder is
    checked for every file, as a symlink could replace it meanwhile.
    """
    if folder == root:
        return
    # Checked before (a symlink on the way must not lead mkdir out of DEST)
    # and after (one could appear meanwhile).
    for _ in range(2):
        if not inside(root, folder):
            raise TransferError(f"{folder} is outside DEST (through a symlink?)")
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise disk_error(exc, root, f"create folder {folder.name}") from exc


def part_path(final: Path) -> Path:
    return final.with_name(final.name + PART_SUFFIX)


class PartFile:
    """The ``.part`` beside ``final``; ``root`` is DEST, for messages."""

    def __init__(self, final: Path, root: Path) -> None:
        self.final = final
        self.path = part_path(final)
        self.root = root
        self.size = 0
        self._fd: int | None = None
        self._hashers: dict[str, Any] = {}
        self._updates: list[Any] = []
        self._written_back = 0  # bytes whose writeback has been started

    def existing_size(self) -> int:
        try:
            return self.path.stat().st_size
        except OSError:
            return 0

    def open(self, offset: int, algorithms: Iterable[str] = ()) -> None:
        """Start from zero, or extend the ``offset`` bytes already there
        (hashing them first, so the digests cover the whole file). Only
        ``algorithms`` are hashed: SHA-256 alone costs about as much CPU
        per byte as receiving and writing together (bench/README.md)."""
        flags = os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC | getattr(os, "O_NOFOLLOW", 0)
        flags |= os.O_APPEND if offset else os.O_TRUNC
        self._hashers = new_hashers(algorithms)
        # Usually empty: the common case pays nothing for hashing.
        self._updates = [hasher.update for hasher in self._hashers.values()]
        self._written_back = offset
        try:
            self._fd = os.open(self.path, flags, 0o644)
            if offset and self._hashers:
                hash_file(self.path, self._hashers)
        except OSError as exc:
            self.close()
            raise disk_error(exc, self.root, f"write {self.path.name}") from exc
        self.size = offset

    def write(self, chunk: memoryview) -> None:
        """Append ``chunk`` (which may be reused once this returns)."""
        fd = self._fd
        assert fd is not None
        size = len(chunk)
        try:
            written = os.write(fd, chunk)
            while written < size:  # a short write: rare, but possible
                written += os.write(fd, chunk[written:])
        except OSError as exc:
            raise disk_error(exc, self.root, f"write {self.path.name}") from exc
        for update in self._updates:
            update(chunk)
        self.size += size
        if self.size - self._written_back >= WRITEBACK_STEP:
            self._written_back = writeback(fd, self._written_back, self.size)

    def sync(self, quietly: bool = False) -> None:
        """Make the bytes durable (before the rename makes them final)."""
        assert self._fd is not None
        try:
            os.fsync(self._fd)
        except OSError as exc:
            if not quietly:
                raise disk_error(exc, self.root, f"sync {self.path.name}") from exc

    def truncate(self, size: int) -> None:
        """Cut back to ``size`` bytes known to be good (quietly: this is
        already the handling of a failure)."""
        try:
            os.truncate(self.path, size)
        except OSError:
            pass

    def close(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)

    def checksums(self) -> dict[str, str]:
        """Algorithm -> hex digest of everything written, for each of the
        algorithms ``open`` was asked for."""
        return {name: hasher.hexdigest() for name, hasher in self._hashers.items()}

    def commit(self, last_modified: str | None) -> None:
        """Rename the verified, synced ``.part`` into place."""
        _set_mtime(self.path, last_modified)
        try:
            os.replace(self.path, self.final)
        except OSError as exc:
            raise disk_error(exc, self.root, f"rename {self.path.name}") from exc

    def discard(self) -> None:
        self.close()
        try:
            self.path.unlink()
        except OSError:
            pass


def _set_mtime(path: Path, last_modified: str | None) -> None:
    if not last_modified:
        return
    try:
        when = parsedate_to_datetime(last_modified).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return
    try:
        os.utime(path, (when, when))
    except OSError:
        pass
