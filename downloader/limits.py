"""Shared limits between workers: per-host pauses, the run's rate cap, and
the order jobs go out in under a per-host cap."""
from __future__ import annotations

import threading
import time
from collections import defaultdict, deque
from collections.abc import Hashable
from typing import Generic, TypeVar
from urllib.parse import urlsplit

T = TypeVar("T")
DEFAULT_PORTS = {"http": 80, "https": 443}


def origin(url: str) -> tuple[str, str, int]:
    """(scheme, host, port): what "one host" means for limits and headers."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or "").lower(), parts.port or DEFAULT_PORTS.get(scheme, 0)


class HostGates:
    """A 429/503 with Retry-After pauses every request to that host."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._until: dict[Hashable, float] = {}

    def pause(self, host: Hashable, seconds: float) -> None:
        until = time.monotonic() + seconds
        with self._lock:
            if until > self._until.get(host, 0.0):
                self._until[host] = until

    def remaining(self, host: Hashable) -> float:
        """Seconds until ``host`` may be asked again (0 or less: now)."""
        with self._lock:
            return self._until.get(host, 0.0) - time.monotonic()

    def wait(self, host: Hashable, cancelled: threading.Event,
             deadline: float | None = None) -> None:
        """Block until ``host`` may be asked again, the run is cancelled or
        ``deadline`` (a ``time.monotonic()`` value) passes."""
        while True:
            remaining = self.remaining(host)
            if deadline is not None:
                remaining = min(remaining, deadline - time.monotonic())
            if remaining <= 0 or cancelled.wait(remaining):
                return


class RateLimiter:
    """A token bucket shared by all workers: the run's total bytes/second.

    Each caller books its bytes on a common timeline and sleeps until its
    booking comes due; a short burst allowance absorbs scheduling jitter.
    """

    def __init__(self, rate: int, burst_seconds: float = 0.2) -> None:
        self.rate = float(rate)
        self._burst = burst_seconds
        self._lock = threading.Lock()
        self._next = time.monotonic()

    def book(self, nbytes: int) -> float:
        """Book ``nbytes`` on the timeline; return the seconds to wait."""
        with self._lock:
            now = time.monotonic()
            start = max(self._next, now - self._burst)
            self._next = start + nbytes / self.rate
            return self._next - now

    def consume(self, nbytes: int, cancelled: threading.Event) -> None:
        wait = self.book(nbytes)
        if wait > 0:
            cancelled.wait(wait)


class HostScheduler(Generic[T]):
    """Hands out jobs so that no host has more than ``limit`` in flight,
    without holding back jobs for other hosts (round-robin over hosts).

    The main thread adds, takes and ends jobs; a worker that splits a file
    borrows room for its extra connections (``borrow``), from any thread
    (or process, through the parent): hence the lock.
    """

    def __init__(self, limit: int | None) -> None:
        self._limit = limit
        self._lock = threading.Lock()
        self._pending: dict[Hashable, deque[T]] = defaultdict(deque)
        self._active: dict[Hashable, int] = defaultdict(int)
        self._ready: deque[Hashable] = deque()
        self._in_ready: set[Hashable] = set()
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def _has_room(self, host: Hashable) -> bool:
        return self._limit is None or self._active[host] < self._limit

    def _mark_ready(self, host: Hashable) -> None:
        if host not in self._in_ready and self._pending.get(host) and self._has_room(host):
            self._in_ready.add(host)
            self._ready.append(host)

    def add(self, host: Hashable, job: T) -> None:
        with self._lock:
            self._pending[host].append(job)
            self._count += 1
            self._mark_ready(host)

    def take(self) -> tuple[Hashable, T] | None:
        """The next job that may start now, or None."""
        with self._lock:
            while self._ready:
                host = self._ready.popleft()
                self._in_ready.discard(host)
                queue = self._pending[host]
                if not queue or not self._has_room(host):
                    continue
                job = queue.popleft()
                self._count -= 1
                self._active[host] += 1
                if not queue:
                    del self._pending[host]
                else:
                    self._mark_ready(host)
                return host, job
            return None

    def drain(self) -> list[T]:
        """Remove and return every job not yet handed out."""
        with self._lock:
            jobs = [job for queue in self._pending.values() for job in queue]
            self._pending.clear()
            self._ready.clear()
            self._in_ready.clear()
            self._count = 0
            return jobs

    def done(self, host: Hashable) -> None:
        with self._lock:
            self._end(host, 1)

    def borrow(self, host: Hashable, wanted: int) -> int:
        """Room for up to ``wanted`` more connections to ``host`` beside the
        jobs in flight (a split file's ranges); each must be given back."""
        with self._lock:
            granted = wanted if self._limit is None else \
                max(0, min(wanted, self._limit - self._active[host]))
            if granted:
                self._active[host] += granted
            return granted

    def give_back(self, host: Hashable, count: int = 1) -> None:
        with self._lock:
            self._end(host, count)

    def _end(self, host: Hashable, count: int) -> None:
        self._active[host] -= count
        if not self._active[host]:
            del self._active[host]
        self._mark_ready(host)
