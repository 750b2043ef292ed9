"""A pool of named worker threads fed from one ``queue.Queue``.

The pool knows nothing of HTTP: a worker takes a job, runs it, turns any
exception into the caller's failure event, posts the event, and loops until
it takes the ``None`` sentinel.
"""
from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

J = TypeVar("J")
S = TypeVar("S")


class Pool(Generic[J, S]):
    def __init__(self, run: Callable[[J, S], object], crashed: Callable[[J, S, BaseException], object],
                 post: Callable[[object], None], make_slot: Callable[[int], S],
                 name: str = "downloader") -> None:
        self._run = run
        self._crashed = crashed
        self._post = post
        self._make_slot = make_slot
        self._name = name
        self.jobs: queue.Queue[J | None] = queue.Queue()
        self.slots: list[S] = []
        self._threads: list[threading.Thread] = []

    def __len__(self) -> int:
        return len(self._threads)

    def grow(self, count: int) -> None:
        """Start ``count`` more workers."""
        for _ in range(count):
            number = len(self._threads)
            slot = self._make_slot(number)
            thread = threading.Thread(target=self._worker, args=(slot,),
                                      name=f"{self._name}-{number}", daemon=True)
            self.slots.append(slot)
            self._threads.append(thread)
            thread.start()

    def _worker(self, slot: S) -> None:
        jobs, run, post = self.jobs, self._run, self._post
        while True:
            job = jobs.get()
            if job is None:
                return
            try:
                event = run(job, slot)
            except BaseException as exc:  # a failing job never kills its worker
                event = self._crashed(job, slot, exc)
            post(event)
            del job, event

    def drain(self) -> list[J]:
        """Take back every job no worker has started."""
        taken = []
        while True:
            try:
                job = self.jobs.get_nowait()
            except queue.Empty:
                return taken
            if job is not None:
                taken.append(job)

    def shutdown(self, timeout: float | None = None) -> None:
        """Post one sentinel per worker and join them, giving up after
        ``timeout`` seconds in all (the threads are daemons: a worker stuck
        in a connect cannot hold the process)."""
        for _ in self._threads:
            self.jobs.put(None)
        deadline = None if timeout is None else time.monotonic() + timeout
        for thread in self._threads:
            thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
