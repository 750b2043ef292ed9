"""What a run returns: one ``Result`` per entry, gathered in a ``Summary``."""
from __future__ import annotations

import json
import os
import secrets
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

    def to_json(self) -> dict[str, Any]:
        counts = self.counts
        finished = self.finished or datetime.now(timezone.utc)
        return {
            "version": 1,
            "started": self.started.isoformat(timespec="seconds"),
            "finished": finished.isoformat(timespec="seconds"),
            "elapsed": round(self.elapsed, 3),
            "totals": {**counts, "bytes": self.bytes},
            "results": [r.to_json() for r in self.results],
        }


def write_atomic(path: str | os.PathLike[str], text: str, mode: int = 0o666,
                 errors: str = "strict") -> None:
    """Write ``text`` to ``path`` so that readers see the old or the new
    file, never half of one. ``mode`` is filtered by the umask, as for any
    new file (the umask is never changed: other threads may be creating
    files); ``errors`` is the UTF-8 encoder's, for text that is not."""
    target = Path(path)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
    for _ in range(100):
        tmp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")
        try:
            fd = os.open(tmp, flags, mode)
            break
        except FileExistsError:
            continue
    else:
        raise FileExistsError(f"no free temporary name beside {target}")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", errors=errors) as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def report_json(summary: Summary) -> str:
    """The report as JSON text. A URL given with bytes that are not UTF-8
    (on the command line) keeps them as \\udcXX escapes, valid JSON."""
    text = json.dumps(summary.to_json(), indent=2, ensure_ascii=False) + "\n"
    return text.encode("utf-8", "backslashreplace").decode("utf-8")
