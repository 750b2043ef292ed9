"""Small helpers the request-level test modules share."""
from __future__ import annotations

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
