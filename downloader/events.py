"""Small messages from workers to the main thread (workers never draw)."""
from __future__ import annotations

from dataclasses import dataclass

from .results import Result
from .state import PartBegun, RangesDone, StateChange


@dataclass(frozen=True)
class Started:
    """A worker began receiving a file's body (posted only once a transfer
    lasts long enough to be seen, or is too big to be quick).

    ``change`` is set when a new ``.part`` began: the state database
    should know where it came from, so the next run can resume it.
    """
    worker: int
    name: str
    total: int | None
    offset: int
    key: str
    change: PartBegun | None = None


@dataclass(frozen=True)
class Progress:
    """Bytes a worker received since its last report (sent ~10 times/s)."""
    worker: int
    nbytes: int


@dataclass(frozen=True)
class Recorded:
    """A split file's ranges now on disk, for the state database, while the
    file is still coming (so a killed run resumes them)."""
    key: str
    change: RangesDone


@dataclass(frozen=True)
class Retrying:
    url: str
    reason: str
    delay: float


@dataclass(frozen=True)
class Finished:
    """A job ended. ``change`` is what the state database should record."""
    worker: int
    index: int
    result: Result
    key: str
    change: StateChange | None = None
    unreported: int = 0
    """Bytes received since the last ``Progress``."""
    stop_run: str | None = None
    """Set when no other entry could succeed either (the disk is full):
    the reason to stop the run with."""
