"""The run: items -> plan -> pool -> events -> results.

The library and the command line share ``run``. The main thread owns the
scheduler, the state database and the reporter; workers only fetch and
post events.
"""
from __future__ import annotations

import queue
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

from .autoscale import AUTO_FILE_WEIGHT, AUTO_START, AutoScaler

if TYPE_CHECKING:
    from .procpool import ProcessWorkers
from .entries import Item
from .events import Finished, Progress, Recorded, Started
from .limits import HostGates, HostScheduler, RateLimiter, origin
from .naming import Names
from .plan import Job, Planner, Repeat, settle_repeat
from .progress import Reporter
from .results import Result, Summary
from .retry import RetryPolicy
from .settings import Settings
from .shared import Cancel, Shared
from .state import DestLock, StateDB, prepare_dest
from .worker import ThreadWorkers

Workers = Union[ThreadWorkers, "ProcessWorkers"]

TICK = 0.1
DEFAULT_AUTO_THREADS = 8  # -j auto with -P: each process runs this many
BATCH_WAIT = 0.02
QUEUE_SLACK = 64
INTERRUPT_GRACE = 3.0


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread by the command line's handler."""


def run(items: list[Item], settings: Settings,
        reporter: Reporter) -> tuple[Summary, KeyboardInterrupt | None]:
    """Download ``items``; return the summary and the interruption, if any."""
    started_at = datetime.now(timezone.utc)
    started = time.monotonic()
    root = prepare_dest(settings.dest)
    lock = DestLock(root)
    lock.acquire()
    try:
        db = StateDB(root, reporter.warn)
        try:
            if settings.insecure:
                reporter.warn("--insecure: HTTPS certificates are not verified")
            results, interruption = _Run(items, settings, root, db, reporter).execute()
        finally:
            db.close()
    finally:
        lock.release()
    summary = Summary(results, elapsed=time.monotonic() - started, started=started_at,
                      finished=datetime.now(timezone.utc))
    reporter.close(summary)
    return summary, interruption


class _Run:
    def __init__(self, items: list[Item], settings: Settings, root: Path, db: StateDB,
                 reporter: Reporter) -> None:
        self.items = items
        self.settings = settings
        self.root = root
        self.db = db
        self.reporter = reporter
        self.results: list[Result | None] = [None] * len(items)
        self.repeats: list[Repeat] = []
        self.names = Names(remember_owners=settings.process_count() > 1)
        self.scheduler: HostScheduler[Job] = HostScheduler(settings.per_host)
        self.events: Any = queue.Queue()  # or the children's pipes, read alike
        self.cancelled = Cancel()
        self.active: set[int] = set()  # indexes of the jobs handed to the pool
        self.pool: Workers | None = None
        self.work_done = 0  # bytes received, plus a weight per finished file

    def plan(self) -> None:
        planner = Planner(self.settings, self.root, self.db, self.names)
        for index, item in enumerate(self.items):
            placed = planner.place(index, item)
            if isinstance(placed, Job):
                self.scheduler.add(placed.host, placed)
            elif isinstance(placed, Repeat):
                self.repeats.append(placed)
            else:
                self.results[index] = placed

    # -- running ------------------------------------------------------------

    def execute(self) -> tuple[list[Result], KeyboardInterrupt | None]:
        interruption = None
        pool = None
        try:
            self.plan()
            pool = self._start_pool()
            self._loop(pool)
        except KeyboardInterrupt as exc:
            interruption = exc
            self._cancel(pool, "interrupted")
        except BaseException:
            self._cancel(pool, "interrupted")
            raise
        finally:
            if pool is not None:
                pool.shutdown(timeout=INTERRUPT_GRACE if self.cancelled.is_set() else None)
        reason = self.cancelled.reason
        for job in self.scheduler.drain():
            self.results[job.index] = Result(url=job.entry.url, error=reason)
        repeated = {repeat.index for repeat in self.repeats}
        for index, result in enumerate(self.results):
            if result is None and index not in repeated:
                self.results[index] = Result(url=self.items[index].url, error=reason)
        for repeat in self.repeats:
            first = self.results[repeat.first]
            assert first is not None
            self.results[repeat.index] = result = settle_repeat(repeat, first)
            self.reporter.finished(None, result, 0)
        return [r for r in self.results if r is not None], interruption

    def _start_pool(self) -> Workers:
        settings = self.settings
        gates = HostGates()
        limiter = RateLimiter(settings.limit_rate) if settings.limit_rate else None
        threads = settings.workers if isinstance(settings.workers, int) else AUTO_START
        processes = settings.process_count()
        pool: Workers
        if processes > 1 and len(self.scheduler) > 1:
            from .procpool import ProcessWorkers  # only runs with -P need it

            if settings.workers == "auto":
                threads = DEFAULT_AUTO_THREADS
            # No more processes than there are jobs to share out.
            processes = min(processes, len(self.scheduler))
            pool = ProcessWorkers(settings, self.root, processes, threads, self.names,
                                  gates, limiter, self._host_room())
        else:
            shared = Shared(settings, self.root, self.names,
                            RetryPolicy(settings.retries, settings.retry_wait), gates,
                            limiter, self.cancelled, self.events.put,
                            hosts=self._host_room())
            pool = ThreadWorkers(shared, self.events)
            # No more threads than the jobs could use (a split file's
            # ranges are jobs too).
            pool.grow(max(1, min(threads, len(self.scheduler) * settings.split or 1)))
        self.events = pool.events
        self.pool = pool
        self.reporter.start(len(self.items), len(pool))
        for result in self.results:  # decided while planning: bad lines, skips
            if result is not None:
                self.reporter.finished(None, result, 0)
        return pool

    def _host_room(self) -> HostScheduler[Job] | None:
        """What split files borrow room from for their ranges, if
        ``--per-host`` limits connections."""
        if self.settings.per_host is None or self.settings.split < 2:
            return None
        return self.scheduler

    def _dispatch(self, pool: Workers) -> None:
        """Keep enough jobs waiting that no worker runs dry between two
        wake-ups of the main thread, within per-host limits."""
        while len(self.active) < 2 * len(pool) + QUEUE_SLACK:
            taken = self.scheduler.take()
            if taken is None:
                return
            job = taken[1]
            self.active.add(job.index)
            pool.submit(job)

    def _loop(self, pool: Workers) -> None:
        auto = None
        if self.settings.workers == "auto" and isinstance(pool, ThreadWorkers):
            auto = AutoScaler(pool, lambda: self.work_done)
        while True:
            self._dispatch(pool)
            if not self.active:
                return
            try:
                event = self.events.get(timeout=TICK)
            except queue.Empty:
                event = None
            busy = event is not None
            while event is not None:
                self._handle(event)
                try:
                    event = self.events.get_nowait()
                except queue.Empty:
                    event = None
            # Commit once the main thread has caught up: a .part's record is
            # on disk within moments of its first bytes (so a killed run can
            # be resumed), while a busy run pays one commit per batch, not
            # per file.
            self.db.commit()
            if self.cancelled.is_set():  # a worker found the run cannot go on
                self._cancel(pool, self.cancelled.reason)
                return
            for job in pool.reap():  # workers that died: never lose a job
                self._lost(pool, job)
            now = time.monotonic()
            pool.expire(now)
            if auto is not None:
                added = auto.tick(now, len(self.scheduler) + len(self.active))
                if added:
                    pool.grow(added)
                    self.reporter.workers_added(added)
            self.reporter.tick()
            if busy and self.active:
                self._dispatch(pool)  # top the queue up before resting
                # Let events gather (with none in hand, should a signal
                # land): one wake-up per batch rather than one per event
                # keeps the main thread off the workers' GIL.
                time.sleep(BATCH_WAIT)

    def _handle(self, event: Any) -> None:
        if isinstance(event, Finished):
            if event.index not in self.active:
                return  # already ended (its worker was reaped)
            self.active.discard(event.index)
            if self.pool is not None:
                self.pool.done(event.index)
            self.work_done += AUTO_FILE_WEIGHT + event.unreported
            self.scheduler.done(origin(event.result.url))
            self.results[event.index] = event.result
            if event.change is not None:
                self.db.apply(event.key, event.change)
            if event.stop_run is not None:
                self.reporter.warn(f"stopping the run: {event.stop_run}")
                self.cancelled.stop(f"not downloaded: the run stopped: {event.stop_run}")
            self.reporter.finished(event.worker, event.result, event.unreported)
            return
        if isinstance(event, Progress):
            self.work_done += event.nbytes
        elif isinstance(event, (Started, Recorded)) and event.change is not None:
            self.db.apply(event.key, event.change)
        self.reporter.handle(event)

    def _lost(self, pool: Workers, job: Job) -> None:
        """A job whose worker died before it ended: tried once more where
        that can help (a process killed from outside), else failed."""
        if job.index not in self.active:
            return
        self.active.discard(job.index)
        self.scheduler.done(job.host)
        if pool.requeue_lost and not job.lost and not self.cancelled.is_set():
            job.lost = True
            self.scheduler.add(job.host, job)
            return
        self.results[job.index] = result = Result(url=job.entry.url, error=pool.lost_reason)
        self.reporter.finished(None, result, 0)

    def _cancel(self, pool: Workers | None, reason: str) -> None:
        """Stop promptly: no new jobs, every transfer cut, ``.part`` kept."""
        self.cancelled.stop(reason)
        if pool is None:
            return
        for job in pool.drain():
            self.active.discard(job.index)
            self.results[job.index] = Result(url=job.entry.url, error=self.cancelled.reason)
        pool.cut_all(self.cancelled.reason)
        deadline = time.monotonic() + INTERRUPT_GRACE
        while self.active and time.monotonic() < deadline:
            try:
                self._handle(self.events.get(timeout=TICK))
            except queue.Empty:
                for job in pool.reap():
                    self._lost(pool, job)
                pool.cut_all(self.cancelled.reason)
        while True:  # late events (database records of files that landed)
            try:
                self._handle(self.events.get_nowait())
            except queue.Empty:
                break
