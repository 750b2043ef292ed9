"""What a run must remember of every entry, kept on disk.

A run of 10^6 URLs has to know which URLs it has seen (a repeat is fetched
once) and which names it has promised (two URLs never get one file). Held
in Python sets and dicts, that grows by a few hundred bytes an entry; here
it lives in a throwaway SQLite file beside the state database, and memory
stays flat however long the list.
"""
from __future__ import annotations

import os
import sqlite3
import threading
from pathlib import Path
from typing import Any

_SCHEMA = """
CREATE TABLE seen (url TEXT, out TEXT, first INTEGER, site TEXT,
                   status TEXT, path TEXT, error TEXT, http_status INTEGER,
                   sha256 TEXT, PRIMARY KEY (url, out)) WITHOUT ROWID;
CREATE TABLE taken (name TEXT PRIMARY KEY, is_file INTEGER) WITHOUT ROWID;
CREATE TABLE numbers (name TEXT PRIMARY KEY, n INTEGER) WITHOUT ROWID;
CREATE TABLE owners (owner TEXT PRIMARY KEY, name TEXT) WITHOUT ROWID;
"""
# SQLite's page cache, per connection: the file can grow, memory cannot.
_CACHE_KIB = 4096


class Scratch:
    """A throwaway SQLite database, used under one lock from any thread.

    ``path`` None keeps it in memory (a dry run, which may write nothing in
    DEST; a unit test). It is never synced: it means nothing after the run,
    and ``close`` removes it.
    """

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        if path is not None:
            path.unlink(missing_ok=True)  # left by a run that was killed
            # Owner-readable only, as --save-failed: it keeps whole URLs,
            # passwords too (SQLite would create it 0644).
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600))
        self._db = sqlite3.connect(str(path) if path is not None else ":memory:",
                                   isolation_level=None, check_same_thread=False)
        # Exclusive: no file locking per statement; nobody else opens it.
        for pragma in ("locking_mode=EXCLUSIVE", "journal_mode=OFF", "synchronous=OFF",
                       f"cache_size=-{_CACHE_KIB}"):
            self._db.execute(f"PRAGMA {pragma}")
        self._db.executescript(_SCHEMA)
        self.lock = threading.RLock()

    def one(self, sql: str, args: tuple[Any, ...]) -> tuple[Any, ...] | None:
        with self.lock:
            row: tuple[Any, ...] | None = self._db.execute(sql, args).fetchone()
            return row

    def run(self, sql: str, args: tuple[Any, ...]) -> None:
        with self.lock:
            self._db.execute(sql, args)

    def many(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        with self.lock:
            self._db.executemany(sql, rows)

    def close(self) -> None:
        with self.lock:
            self._db.close()
        if self.path is not None:
            try:
                os.unlink(self.path)
            except OSError:
                pass
