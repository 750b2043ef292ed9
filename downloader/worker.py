"""What a worker thread runs: its own ``requests.Session``, and one
``Transfer`` per job; and the run's threads, as the run sees them."""
from __future__ import annotations

import queue
import threading
from typing import Any, Union

from .events import Finished
from .failures import describe
from .plan import Job
from .pool import Pool
from .results import Result
from .session import Requester, make_session
from .shared import Shared, Slot
from .split import RangeJob
from .transfer import Transfer

Work = Union[Job, RangeJob]
"""What a worker thread takes: an entry, or a share of a split file's ranges."""


class Fetcher:
    """Runs jobs in worker threads, each with a Session of its own."""

    def __init__(self, shared: Shared) -> None:
        self.shared = shared
        self._local = threading.local()

    def __call__(self, job: Work, slot: Slot) -> Finished | None:
        requester = getattr(self._local, "requester", None)
        if requester is None:
            session = make_session(self.shared.settings, slot.handle)
            requester = self._local.requester = Requester(session)
        if isinstance(job, RangeJob):  # its file's owner posts the one Finished
            job.split.help(requester, slot.handle)
            return None
        return Transfer(job, self.shared, slot, requester).run()

    def crashed(self, job: Work, slot: Slot, exc: BaseException) -> Finished | None:
        """A job that raised past ``Transfer.run`` still ends with a result."""
        if isinstance(job, RangeJob):  # cannot happen: help() never raises
            return None
        if self.shared.cancelled.is_set():
            reason = self.shared.cancelled.reason
        else:
            reason = f"internal error: {describe(exc)}"
        return Finished(slot.number, job.index, Result(url=job.entry.url, error=reason),
                        job.key)

    def close(self, slot: Slot) -> None:
        """The worker is ending: close its Session (and its connections)."""
        requester = getattr(self._local, "requester", None)
        if requester is not None:
            self._local.requester = None
            requester.session.close()


class ThreadWorkers:
    """Worker threads in this process: what the run hands jobs to when it
    runs in one process (``-P 1``)."""

    lost_reason = "internal error: its worker thread died"
    requeue_lost = False  # a thread dies only of a bug: trying again would too

    def __init__(self, shared: Shared, events: queue.Queue[Any]) -> None:
        self.events = events
        fetcher = Fetcher(shared)
        self._pool: Pool[Work, Slot] = Pool(fetcher, fetcher.crashed, events.put, Slot,
                                            leaving=fetcher.close)
        shared.helpers = LocalHelpers(self._pool)

    def __len__(self) -> int:
        return len(self._pool)

    def grow(self, count: int) -> None:
        self._pool.grow(count)

    def submit(self, job: Job) -> None:
        self._pool.jobs.put(job)

    def done(self, index: int) -> None:
        """Threads share the queue: nothing to keep per job."""

    def reap(self) -> list[Job]:
        return entries(self._pool.reap())

    def expire(self, now: float) -> None:
        for slot in self._pool.slots:
            slot.handle.expire(now)  # --max-time is up: unblock its read

    def cut_all(self, reason: str) -> None:
        for slot in self._pool.slots:
            slot.handle.cut()

    def drain(self) -> list[Job]:
        return entries(self._pool.drain())

    def shutdown(self, timeout: float | None = None) -> None:
        self._pool.shutdown(timeout)


class LocalHelpers:
    """A pool's workers, for the ranges of a file split in this process."""

    def __init__(self, pool: Pool[Work, Slot]) -> None:
        self._pool = pool

    def room(self) -> int:
        """How many ranges of a file to post: none while entries wait for
        busy workers (files side by side use the connections already),
        else one for each other worker. Those busy with files of their own
        take ranges when they are done, so two files split at once share
        the pool instead of the first taking every idle worker."""
        jobs, idle = self._pool.jobs, self._pool.waiting
        waiting = 0
        with jobs.mutex:  # a look, not a take: the queue is short (the engine tops it up)
            for job in jobs.queue:
                # An entry that an idle worker is about to take does not count.
                waiting += isinstance(job, Job)
                if waiting > idle:
                    return 0
        return len(self._pool) - 1

    def submit(self, job: RangeJob) -> None:
        self._pool.jobs.put(job)


def entries(work: list[Work]) -> list[Job]:
    """The entries among jobs handed back (a range belongs to its owner,
    which reports its file)."""
    return [job for job in work if isinstance(job, Job)]
