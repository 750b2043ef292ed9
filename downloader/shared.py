"""What the workers of one run share, and each worker's slot: the part of
it the main thread may see and poke (cut its socket)."""
from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from .naming import Names
from .retry import RetryPolicy
from .session import SocketHandle
from .settings import Settings


class Interrupted(Exception):
    """The run is being stopped (Ctrl-C, SIGTERM, a full disk)."""


class OutOfTime(Exception):
    """The file used up its ``--max-time``."""


class Cancel(threading.Event):
    """Set when the run stops early; ``reason`` is what unfinished entries
    report ("interrupted" for Ctrl-C and SIGTERM)."""

    reason = "interrupted"
    _first = threading.Lock()

    def stop(self, reason: str) -> bool:
        """Stop the run with ``reason``; True for the caller that did (the
        first reason stands)."""
        with self._first:  # one lock for all: stops are rare
            if self.is_set():
                return False
            self.reason = reason
            self.set()
            return True


class Gates(Protocol):
    """Host-wide pauses (``limits.HostGates``, or the parent's, from a child)."""

    def pause(self, host: Hashable, seconds: float) -> None: ...

    def wait(self, host: Hashable, cancelled: threading.Event,
             deadline: float | None = None) -> None: ...


class Limiter(Protocol):
    """The run's rate cap (``limits.RateLimiter``, or the parent's)."""

    rate: float

    def consume(self, nbytes: int, cancelled: threading.Event) -> None: ...


class Helpers(Protocol):
    """The pool of this process, as a split file sees it (split.py)."""

    def room(self) -> int:
        """How many helpers a split file may post now."""
        ...

    def submit(self, job: Any) -> None: ...


class HostRoom(Protocol):
    """``--per-host``'s count of connections (``limits.HostScheduler``, or
    the parent's): a split file borrows room for its extra ranges."""

    def borrow(self, host: Hashable, wanted: int) -> int: ...

    def give_back(self, host: Hashable, count: int = 1) -> None: ...


@dataclass
class Shared:
    """What every worker of one run shares."""

    settings: Settings
    root: Path
    names: Names
    """Claims of target names (a proxy of the parent's, in a child)."""
    policy: RetryPolicy
    gates: Gates
    limiter: Limiter | None
    cancelled: Cancel
    post: Callable[[object], None]
    helpers: Helpers | None = None
    """Where a split file posts its extra ranges; None: files are not split."""
    hosts: HostRoom | None = None
    """Set with ``--per-host``: the room a split file's ranges take."""


class Slot:
    """One worker's place: its number (for the display) and its job's socket."""

    def __init__(self, number: int) -> None:
        self.number = number
        self.handle = SocketHandle()
