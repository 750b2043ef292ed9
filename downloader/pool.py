"""A pool of named worker threads fed from one ``queue.Queue``.

The pool knows nothing of HTTP: a worker takes a job, runs it, turns any
exception into the caller's failure event, posts the event (a job that
ends with none posts nothing), and loops until it takes the ``None``
sentinel. Should a worker die all the same (its
failure handler or ``post`` raised), ``reap`` hands back the job it held
and starts a new worker in its place, so no job is ever lost.
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
    def __init__(self, run: Callable[[J, S], object],
                 crashed: Callable[[J, S, BaseException], object],
                 post: Callable[[object], None], make_slot: Callable[[int], S],
                 name: str = "downloader",
                 leaving: Callable[[S], None] | None = None,
                 jobs: queue.Queue[J | None] | None = None) -> None:
        self._run = run
        self._crashed = crashed
        self._post = post
        self._make_slot = make_slot
        self._leaving = leaving
        self._name = name
        self.jobs: queue.Queue[J | None] = queue.Queue() if jobs is None else jobs
        self.slots: list[S] = []
        self._threads: list[threading.Thread] = []
        self._holding: list[J | None] = []  # each worker's job, until posted
        self._waiting = 0  # workers blocked on the queue
        self._waiting_lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._threads)

    @property
    def waiting(self) -> int:
        """Workers waiting for a job right now."""
        return self._waiting

    def grow(self, count: int) -> None:
        """Start ``count`` more workers."""
        for _ in range(count):
            number = len(self._threads)
            self.slots.append(self._make_slot(number))
            self._holding.append(None)
            self._threads.append(self._start(number))

    def _start(self, number: int) -> threading.Thread:
        thread = threading.Thread(target=self._worker, args=(number,),
                                  name=f"{self._name}-{number}", daemon=True)
        thread.start()
        return thread

    def _worker(self, number: int) -> None:
        jobs, run, post, slot = self.jobs, self._run, self._post, self.slots[number]
        try:
            while True:
                with self._waiting_lock:
                    self._waiting += 1
                try:
                    job = jobs.get()
                finally:
                    with self._waiting_lock:
                        self._waiting -= 1
                if job is None:
                    return
                self._holding[number] = job
                try:
                    event = run(job, slot)
                except BaseException as exc:  # a failing job never kills its worker
                    event = self._crashed(job, slot, exc)
                if event is not None:
                    post(event)
                self._holding[number] = None
                del job, event
        finally:
            if self._leaving is not None:
                self._leaving(slot)

    def reap(self) -> list[J]:
        """Jobs whose worker died before posting their event; each dead
        worker is replaced."""
        lost = []
        for number, thread in enumerate(self._threads):
            job = self._holding[number]
            if job is not None and not thread.is_alive():
                self._holding[number] = None
                lost.append(job)
                self._threads[number] = self._start(number)
        return lost

    def drain(self) -> list[J]:
        """Take back every job no worker has started."""
        taken: list[J] = []
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
