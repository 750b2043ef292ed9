"""``DEST/.downloader/``: the run's lock and what earlier runs fetched.

The database is a cache of facts, never the only copy of anything: losing
it loses no file. Only the main thread touches it (one writer).
"""
from __future__ import annotations

import fcntl
import json
import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Union

from .errors import DestinationError, DestinationLocked
from .naming import STATE_DIR_NAME

_SCHEMA = """
CREATE TABLE IF NOT EXISTS files (
    url TEXT PRIMARY KEY, path TEXT NOT NULL, size INTEGER, sha256 TEXT,
    etag TEXT, last_modified TEXT, fetched REAL);
CREATE TABLE IF NOT EXISTS parts (
    url TEXT PRIMARY KEY, path TEXT NOT NULL, etag TEXT, last_modified TEXT,
    started REAL);
CREATE TABLE IF NOT EXISTS splits (
    url TEXT PRIMARY KEY, path TEXT NOT NULL, etag TEXT, last_modified TEXT,
    total INTEGER NOT NULL, done TEXT NOT NULL, started REAL);
"""


@dataclass(frozen=True)
class Record:
    """What the database knows of one URL: a finished file or a ``.part``.

    ``path`` is relative to DEST.
    """

    path: str
    etag: str | None = None
    last_modified: str | None = None
    size: int | None = None
    sha256: str | None = None


@dataclass(frozen=True)
class PartBegun:
    """A new ``.part`` began: where it came from, so a later run can resume it."""

    record: Record
    split: int | None = None
    """Set for a ``.part`` fetched in ranges (``--split``): the file's
    length. Such a ``.part`` is preallocated to its full length, holes and
    all, so it is recorded apart from the others (table ``splits``, not
    ``parts``): nothing that resumes a ``.part`` by its size, not even an
    older release of this program, can take it for a whole file."""


Span = tuple[int, int]
"""Bytes ``[start, end)`` of a file."""


@dataclass(frozen=True)
class RangesDone:
    """Every range of a split ``.part`` that is now on disk (synced)."""

    done: tuple[Span, ...]


@dataclass(frozen=True)
class SplitRecord:
    """A split ``.part`` an earlier run began: where it came from, the
    file's length and the ranges on disk."""

    record: Record
    total: int
    done: tuple[Span, ...]


@dataclass(frozen=True)
class Landed:
    """A file now stands complete at its path (downloaded, or kept)."""

    record: Record


@dataclass(frozen=True)
class PartDropped:
    """The ``.part`` was discarded: nothing of it is worth resuming."""


StateChange = Union[PartBegun, Landed, PartDropped, RangesDone]


def prepare_dest(dest: Path) -> Path:
    """Create DEST (and its state folder); return it resolved."""
    _check_not_a_file(dest)
    try:
        (dest / STATE_DIR_NAME).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DestinationError(f"cannot create destination {dest}: {exc.strerror or exc}") from exc
    if not os.access(dest, os.W_OK | os.X_OK):
        raise DestinationError(f"destination {dest} is not writable")
    return dest.resolve()


def _check_not_a_file(dest: Path) -> None:
    if dest.exists() and not dest.is_dir():
        raise DestinationError(f"destination {dest} exists and is not a folder")


def check_dest(dest: Path) -> Path:
    """What ``prepare_dest`` would refuse, found without creating anything
    (for ``--dry-run``); return DEST resolved."""
    _check_not_a_file(dest)
    state = dest / STATE_DIR_NAME
    if state.exists() and not state.is_dir():
        raise DestinationError(f"cannot create destination {dest}: {state} is not a folder")
    existing = dest.absolute()
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise DestinationError(f"cannot create destination {dest}: {existing} is not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        if existing == dest.absolute():
            raise DestinationError(f"destination {dest} is not writable")
        raise DestinationError(f"cannot create destination {dest}: {existing} is not writable")
    return dest.resolve()


class DestLock:
    """An exclusive ``flock`` on ``DEST/.downloader/lock`` for one run.

    The kernel drops it when the process dies, so a killed run never
    blocks the next one.
    """

    def __init__(self, root: Path) -> None:
        self._path = root / STATE_DIR_NAME / "lock"
        self._fd: int | None = None

    def acquire(self, shared: bool = False) -> None:
        """Take the lock, exclusive; ``shared`` for the drivers of sharded
        runs, which may work on one DEST together (each shard has its own
        lock) but never beside a plain run."""
        try:
            fd = os.open(self._path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise DestinationError(f"cannot open lock {self._path}: {exc.strerror}") from exc
        try:
            fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise DestinationLocked(
                f"another run is using {self._path.parent.parent} (lock {self._path})") from None
        if not shared:  # a sharer would wipe another's pid
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing drops the flock
            self._fd = None


class StateDB:
    """The SQLite file of finished downloads and begun ``.part`` files.

    A missing, unreadable or corrupt database is set aside with one warning
    and the run goes on without the facts it held.
    """

    def __init__(self, root: Path, warn: Callable[[str], None], *,
                 read_only: bool = False, path: Path | None = None) -> None:
        self._path = path or root / STATE_DIR_NAME / "state.db"
        self._warn = warn
        self._db: sqlite3.Connection | None = None
        try:
            self._db = self._open_read_only() if read_only else self._open()
        except sqlite3.DatabaseError as exc:
            if read_only:
                self._warn(f"state database {self._path} is unreadable ({exc}); "
                           "going on without it")
            else:
                self._set_aside(exc)
        # A new DEST has nothing to look up: spare a query per entry.
        self._empty = not self._run(
            "SELECT 1 WHERE EXISTS (SELECT 1 FROM files) OR EXISTS (SELECT 1 FROM parts)", ())
        # A database of a release before --split, read only, has no such table.
        self._splits = bool(self._run(
            "SELECT 1 FROM sqlite_master WHERE type='table' AND name='splits'", ()))
        if self._splits and self._empty:
            self._empty = not self._run("SELECT 1 WHERE EXISTS (SELECT 1 FROM splits)", ())
        self._begun: set[str] = set()  # part rows this run wrote

    def _open(self) -> sqlite3.Connection:
        db = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.executescript(_SCHEMA)
            db.execute("SELECT count(*) FROM files").fetchone()
        except sqlite3.DatabaseError:
            db.close()
            raise
        return db

    def _open_read_only(self) -> sqlite3.Connection | None:
        """Read what earlier runs recorded, creating no file: ``--dry-run``.

        SQLite opens a WAL database read-only by creating its ``-wal`` and
        ``-shm`` files when they are missing, so a database without them
        (closed cleanly: everything is in the main file) is read as
        immutable; one with them (a run is going on, or was killed) is read
        through them.
        """
        if not self._path.is_file():
            return None
        companions = [Path(f"{self._path}{suffix}") for suffix in ("-wal", "-shm")]
        mode = "mode=ro" if all(p.is_file() for p in companions) else "immutable=1"
        db = sqlite3.connect(f"{self._path.absolute().as_uri()}?{mode}", uri=True,
                             isolation_level=None, check_same_thread=False)
        try:
            db.execute("SELECT count(*) FROM files").fetchone()
            db.execute("SELECT count(*) FROM parts").fetchone()
        except sqlite3.DatabaseError:
            db.close()
            raise
        return db

    def _set_aside(self, exc: Exception) -> None:
        aside = self._path.with_name(f"state.db.broken-{int(time.time())}")
        try:
            os.replace(self._path, aside)
            for suffix in ("-wal", "-shm"):
                Path(str(self._path) + suffix).unlink(missing_ok=True)
            self._db = self._open()
            self._warn(f"state database {self._path} was unreadable ({exc}); "
                       f"moved it to {aside.name} and started a new one")
        except (OSError, sqlite3.DatabaseError) as again:
            self._db = None
            self._warn(f"state database {self._path} is unusable ({again}); "
                       "going on without it")

    def _run(self, sql: str, args: tuple[Any, ...], write: bool = False) -> list[tuple[Any, ...]]:
        if self._db is None:
            return []
        try:
            if write and not self._db.in_transaction:
                # Writes are grouped: the main thread commits after each
                # batch of events, not once per file.
                self._db.execute("BEGIN")
            return self._db.execute(sql, args).fetchall()
        except sqlite3.DatabaseError as exc:
            self._db.close()
            self._db = None
            self._warn(f"state database error ({exc}); going on without it")
            return []

    def file(self, url: str) -> Record | None:
        if self._empty:
            return None
        rows = self._run("SELECT path, etag, last_modified, size, sha256 FROM files WHERE url=?",
                         (url,))
        return Record(*rows[0]) if rows else None

    def part(self, url: str) -> Record | None:
        if self._empty:
            return None
        rows = self._run("SELECT path, etag, last_modified FROM parts WHERE url=?", (url,))
        return Record(*rows[0]) if rows else None

    def split(self, url: str) -> SplitRecord | None:
        """A split ``.part`` of this URL: its ranges already on disk."""
        if self._empty or not self._splits:
            return None
        rows = self._run("SELECT path, etag, last_modified, total, done FROM splits "
                         "WHERE url=?", (url,))
        if not rows:
            return None
        path, etag, last_modified, total, done = rows[0]
        try:
            spans = tuple((int(start), int(end)) for start, end in json.loads(done))
            total = int(total)
        except (TypeError, ValueError):
            # Edited by hand: still a split .part (never to be taken for a
            # whole file), but with nothing worth resuming.
            total, spans = 0, ()
        return SplitRecord(Record(path, etag, last_modified), total, spans)

    def apply(self, url: str, change: StateChange) -> None:
        """Record what a transfer did: the one place that writes."""
        if isinstance(change, PartBegun):
            record = change.record
            row = (url, record.path, record.etag, record.last_modified)
            if change.split is None:
                self._run("INSERT OR REPLACE INTO parts VALUES (?, ?, ?, ?, ?)",
                          (*row, time.time()), True)
                self._run("DELETE FROM splits WHERE url=?", (url,), True)
            else:
                self._run("INSERT OR REPLACE INTO splits VALUES (?, ?, ?, ?, ?, ?, ?)",
                          (*row, change.split, "[]", time.time()), True)
                self._run("DELETE FROM parts WHERE url=?", (url,), True)
            self._begun.add(url)
            return
        if isinstance(change, RangesDone):
            self._run("UPDATE splits SET done=? WHERE url=?",
                      (json.dumps(change.done), url), True)
            return
        if isinstance(change, Landed):
            record = change.record
            self._run("INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?, ?, ?)",
                      (url, record.path, record.size, record.sha256, record.etag,
                       record.last_modified, time.time()), True)
        # A part row exists only if an earlier run left one or this run began
        # one: spare a DELETE per file otherwise.
        if not self._empty or url in self._begun:
            self._begun.discard(url)
            self._run("DELETE FROM parts WHERE url=?", (url,), True)
            self._run("DELETE FROM splits WHERE url=?", (url,), True)

    def commit(self) -> None:
        if self._db is not None and self._db.in_transaction:
            try:
                self._db.execute("COMMIT")
            except sqlite3.DatabaseError as exc:
                self._db.close()
                self._db = None
                self._warn(f"state database error ({exc}); going on without it")

    def close(self) -> None:
        if self._db is not None:
            self.commit()
        if self._db is not None:
            self._db.close()
            self._db = None
