"""What a run returns: one ``Result`` per entry, gathered in a ``Summary``."""
from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .redact import redact_url

DOWNLOADED, SKIPPED, FAILED = "downloaded", "skipped", "failed"


@dataclass
class Result:
    """The outcome of one entry."""

    url: str
    path: Path | None = None
    status: str = FAILED
    bytes: int = 0
    attempts: int = 0
    elapsed: float = 0.0
    http_status: int | None = None
    error: str | None = None
    mirror: str | None = None
    """The URL (the entry's, or one of its mirrors) the file was downloaded
    from; None unless ``status`` is downloaded."""
    sha256: str | None = None
    """The SHA-256 of the file at ``path``, when this run read or wrote it
    whole; else None."""

    @property
    def ok(self) -> bool:
        return self.status != FAILED

    def to_json(self) -> dict[str, Any]:
        return {
            "url": redact_url(self.url),
            "path": str(self.path) if self.path is not None else None,
            "status": self.status,
            "bytes": self.bytes,
            "attempts": self.attempts,
            "elapsed": round(self.elapsed, 6),
            "http_status": self.http_status,
            "error": self.error,
            "mirror": redact_url(self.mirror) if self.mirror is not None else None,
        }


@dataclass
class Summary:
    """All results of a run, in input order."""

    results: list[Result]
    elapsed: float = 0.0
    started: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    finished: datetime | None = None

    def __iter__(self) -> Iterator[Result]:
        return iter(self.results)

    def __len__(self) -> int:
        return len(self.results)

    def _with(self, status: str) -> list[Result]:
        return [r for r in self.results if r.status == status]

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.results)

    @property
    def failed(self) -> list[Result]:
        return self._with(FAILED)

    @property
    def downloaded(self) -> list[Result]:
        return self._with(DOWNLOADED)

    @property
    def skipped(self) -> list[Result]:
        return self._with(SKIPPED)

    @property
    def bytes(self) -> int:
        return sum(r.bytes for r in self.results)

    @property
    def counts(self) -> dict[str, int]:
        """Entries by status: downloaded, skipped, failed."""
        counts = {DOWNLOADED: 0, SKIPPED: 0, FAILED: 0}
        for r in self.results:
            counts[r.status] += 1
        return counts

    def tally(self) -> Tally:
        """The counts, bytes and failures, as a run keeps them."""
        tally = Tally()
        tally.counts, tally.bytes, tally.failed = self.counts, self.bytes, self.failed
        tally.started, tally.finished, tally.elapsed = self.started, self.finished, self.elapsed
        return tally

    def to_json(self) -> dict[str, Any]:
        return {**report_head(self.tally()), "results": [r.to_json() for r in self.results]}


class Tally:
    """What a run keeps of its results: counts, bytes and (unless told
    not to) the failures, so that memory does not grow with the list."""

    def __init__(self, keep_failures: bool = True) -> None:
        self.counts = {DOWNLOADED: 0, SKIPPED: 0, FAILED: 0}
        self.bytes = 0
        self.keep_failures = keep_failures
        self.failed: list[Result] = []
        self.started = datetime.now(timezone.utc)
        self.finished: datetime | None = None
        self._clock = time.monotonic()
        self.elapsed = 0.0

    def begin(self) -> None:
        self.started = datetime.now(timezone.utc)
        self._clock = time.monotonic()

    def end(self) -> None:
        self.finished = datetime.now(timezone.utc)
        self.elapsed = time.monotonic() - self._clock

    def add(self, result: Result) -> None:
        self.counts[result.status] += 1
        self.bytes += result.bytes
        if result.status == FAILED and self.keep_failures:
            self.failed.append(result)

    @property
    def ok(self) -> bool:
        return not self.counts[FAILED]

    def totals(self) -> dict[str, int]:
        """The report's ``totals``."""
        return {**self.counts, "bytes": self.bytes}


def report_head(tally: Tally) -> dict[str, Any]:
    """The report's fields but its results."""
    finished = tally.finished or datetime.now(timezone.utc)
    return {
        "version": 1,
        "started": tally.started.isoformat(timespec="seconds"),
        "finished": finished.isoformat(timespec="seconds"),
        "elapsed": round(tally.elapsed, 3),
        "totals": tally.totals(),
    }


def report_json(summary: Summary) -> str:
    """The report as JSON text. A URL given with bytes that are not UTF-8
    (on the command line) keeps them as \\udcXX escapes, valid JSON."""
    text = json.dumps(summary.to_json(), indent=2, ensure_ascii=False) + "\n"
    return text.encode("utf-8", "backslashreplace").decode("utf-8")
