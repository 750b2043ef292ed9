"""Small helpers the request-level test modules share."""
from __future__ import annotations

import hashlib
import os
import sqlite3
import tempfile
from pathlib import Path
from typing import Any

from downloader import Result, Summary, download_all
from httpserver import FaultServer, Request


def fetch(urls: Any, dest: Path, **options: Any) -> Summary:
    """``download_all`` with fast retries unless a test says otherwise."""
    options.setdefault("retry_wait", 0.01)
    options.setdefault("timeout", 5)
    return download_all(urls, dest, **options)


def only(summary: Summary) -> Result:
    (result,) = summary.results
    return result


def requests_for(server: FaultServer, path: str) -> list[Request]:
    return [r for r in server.requests if r.path.split("?", 1)[0] == path]


def shard_state_rows(dest: Path) -> list[tuple[int, int]]:
    """(files, parts) rows in each shard's database on the workers' disk
    (the temporary folder, here shared by both workers)."""
    digest = hashlib.sha256(str(dest.resolve()).encode()).hexdigest()[:16]
    found = []
    for db in Path(tempfile.gettempdir()).glob(f"downloader-{os.getuid()}/{digest}/*/state.db"):
        try:
            with sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True) as con:
                found.append((con.execute("SELECT count(*) FROM files").fetchone()[0],
                              con.execute("SELECT count(*) FROM parts").fetchone()[0]))
        except sqlite3.Error:  # being created
            pass
    return found
