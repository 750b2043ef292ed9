"""Small messages from workers to the main thread (workers never draw)."""
from __future__ import annotations

from dataclasses import dataclass

from .results import Result
from .state import Record


@dataclass(frozen=True)
class Started:
    """A worker began receiving a file's body (posted only once a transfer
    lasts long enough to be seen, or is too big to be quick).

    ``record`` is set when a new ``.part`` began: the state database
    should know where it came from, so the next run can resume it.
    """
    worker: int
    index: int
    name: str
    total: int | None
    offset: int
    key: str
    record: Record | None = None


@dataclass(frozen=True)
class Progress:
    """Bytes a worker received since its last report (sent ~10 times/s)."""
    worker: int
    nbytes: int


@dataclass(frozen=True)
class Retrying:
    worker: int
    index: int
    url: str
    reason: str
    delay: float


@dataclass(frozen=True)
class Finished:
    """A job ended; ``record`` is set when a file now stands at its path."""
    worker: int
    index: int
    result: Result
    key: str
    record: Record | None = None
    drop_part: bool = False
    had_part: bool = False
    """The database may hold a ``.part`` row for this URL."""
    unreported: int = 0
    """Bytes received since the last ``Progress``."""
