"""The run: items -> plan -> pool -> events -> outcomes.

The library and the command line drive it through ``runs.Run``. The main
thread reads and plans the items a window at a time and owns the
scheduler, the state database and the reporter; workers only fetch and
post events. Each entry's outcome is handed on as it ends and then
forgotten, so memory stays flat however long the list.
"""
from __future__ import annotations

import queue
import time
from collections import deque
from collections.abc import Generator, Iterable, Iterator
from pathlib import Path
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Union

from .autoscale import AUTO_FILE_WEIGHT, AUTO_START, AutoScaler

if TYPE_CHECKING:
    from .procpool import ProcessWorkers
from .entries import Entry, Item
from .events import Finished, Progress, Recorded, Started
from .feed import Feed
from .limits import HostGates, HostScheduler, RateLimiter
from .naming import Names
from .plan import Job, Planner, Repeat, settle_repeat
from .progress import Reporter
from .results import Result
from .retry import RetryPolicy
from .scratch import Scratch
from .settings import Settings
from .shared import Cancel, Shared
from .state import StateDB
from .worker import ThreadWorkers

Workers = Union[ThreadWorkers, "ProcessWorkers"]

TICK = 0.1
DEFAULT_AUTO_THREADS = 8  # -j auto with -P: each process runs this many
BATCH_WAIT = 0.02
QUEUE_SLACK = 64
FIRST_WINDOW = 64  # items planned before the pool starts
MIN_WINDOW = 256  # planned jobs kept ahead of the pool, plus a few per worker
WINDOW_PER_WORKER = 4
READ_BATCH = 256  # items planned per turn of the main loop, at most
INPUT_AHEAD = 1024  # items read ahead of the planning
FIRST_WAIT = 0.3  # seconds the first window waits for a slow list
INTERRUPT_GRACE = 3.0


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread by the command line's handler."""


@dataclass(frozen=True)
class Outcome:
    """How one input entry ended: its position in the input, its entry
    (None for a line that was not one) and its result."""

    index: int
    entry: Entry | None
    result: Result


class Engine:
    def __init__(self, items: Iterable[Item], settings: Settings, root: Path, db: StateDB,
                 scratch: Scratch, reporter: Reporter, finish_input: bool,
                 names: Names | None = None) -> None:
        self.feed = Feed(items, INPUT_AHEAD)
        self.next_index = 0
        self.finish_input = finish_input
        self.settings = settings
        self.root = root
        self.db = db
        self.reporter = reporter
        self.names = names or Names(scratch, remember_owners=settings.process_count() > 1)
        self.planner = Planner(settings, root, db, self.names, scratch)
        self.ready: deque[Outcome] = deque()
        self.waiting: dict[int, list[Repeat]] = {}  # first's index -> its repeats
        self.scheduler: HostScheduler[Job] = HostScheduler(settings.per_host)
        self.events: Any = queue.Queue()  # or the children's pipes, read alike
        self.cancelled = Cancel()
        self.active: dict[int, Job] = {}  # the jobs handed to the pool
        self.pool: Workers | None = None
        self.work_done = 0  # bytes received, plus a weight per finished file
        self.interruption: KeyboardInterrupt | None = None
        self.pending: KeyboardInterrupt | None = None
        self.auto: AutoScaler | None = None

    # -- reading and planning ------------------------------------------------

    @property
    def input_done(self) -> bool:
        return self.feed.done

    def read(self, limit: int, wait: float = 0.0, gather: float = 0.0) -> None:
        """Plan up to ``limit`` more items, of those read already (waiting
        up to ``wait`` seconds for the first, ``gather`` for the rest)."""
        for item in self.feed.take(limit, wait, gather):
            index = self.next_index
            self.next_index += 1
            placed = self.planner.place(index, item)
            if isinstance(placed, Job):
                self.scheduler.add(placed.host, placed)
            elif isinstance(placed, Repeat):
                result = self.planner.outcome(placed)
                if result is None:
                    self.waiting.setdefault(placed.first, []).append(placed)
                else:
                    self._emit(None, Outcome(index, placed.entry, result), first=False)
            else:
                self._emit(None, Outcome(index, item.entry, placed))
        self.reporter.total_read(self.next_index, self.input_done)

    def window(self) -> int:
        """How many planned jobs to keep ahead of the pool: enough that no
        worker runs dry, few enough that memory stays flat."""
        return WINDOW_PER_WORKER * len(self.pool or ()) + MIN_WINDOW

    def top_up(self, wait: float = 0.0) -> None:
        room = self.window() - len(self.scheduler) - len(self.active)
        if room > 0 and not self.input_done:
            self.read(min(room, READ_BATCH), wait)

    def _emit(self, worker: int | None, outcome: Outcome, unreported: int = 0,
              first: bool = True) -> None:
        """An entry ended: report it, and settle the repeats of it."""
        self.reporter.finished(worker, outcome.result, unreported)
        self.ready.append(outcome)
        if first and outcome.entry is not None:
            self.planner.settled(outcome.entry, outcome.result)
            for repeat in self.waiting.pop(outcome.index, ()):
                result = settle_repeat(repeat, outcome.result)
                self._emit(None, Outcome(repeat.index, repeat.entry, result), first=False)

    def _fail(self, job: Job, reason: str | None) -> None:
        self._emit(None, Outcome(job.index, job.entry, Result(url=job.entry.url, error=reason)))

    # -- running ------------------------------------------------------------

    def outcomes(self) -> Generator[Outcome, None, None]:
        try:
            yield from self._outcomes()
        finally:
            # However it ended (a second Ctrl-C while stopping, an error):
            # the list's reader must not outlive the run.
            self.feed.close()

    def _outcomes(self) -> Iterator[Outcome]:
        pool = None
        try:
            if self.settings.process_count() > 1:
                # Worker processes first: forking is quick, and safe only
                # while this process has a single thread (the list's reader
                # would make it start a forkserver, which outlives the run
                # by a moment).
                pool = self._start_pool()
            self.feed.start()
            # The first request waits for neither the whole list nor a slow one.
            self.read(FIRST_WINDOW, wait=FIRST_WAIT, gather=FIRST_WAIT)
            if pool is None:
                pool = self._start_pool()
            while self._step(pool):
                yield from self._take_ready()
        except KeyboardInterrupt as exc:
            self.interruption = exc
            self._cancel(pool, "interrupted")
        except GeneratorExit:  # the caller stopped iterating: stop, say nothing
            self._cancel(pool, "interrupted")
            self._shutdown(pool)
            raise
        except BaseException:
            self._cancel(pool, "interrupted")
            raise
        finally:
            self._shutdown(pool)
        reason = self.cancelled.reason
        for job in self.scheduler.drain():
            self._fail(job, reason)
        if self.cancelled.is_set() and (self.finish_input or self.interruption is None):
            # The list may never end (a pipe): a signal ends this wait too.
            for item in self.feed.rest(lambda: self.pending is not None):
                self._emit(None, Outcome(self.next_index, item.entry,
                                         Result(url=item.url, error=reason)))
                self.next_index += 1
                yield from self._take_ready()  # as read: the rest may be millions
            if not self.feed.done:  # stopped by a signal
                self.interruption = self.pending
        self.feed.close()
        for repeats in self.waiting.values():  # their first never ended
            for repeat in repeats:
                self._emit(None, Outcome(repeat.index, repeat.entry,
                                         Result(url=repeat.entry.url, error=reason)), first=False)
        self.waiting.clear()
        yield from self._take_ready()

    def _take_ready(self) -> Iterator[Outcome]:
        while self.ready:
            yield self.ready.popleft()

    def _shutdown(self, pool: Workers | None) -> None:
        if pool is not None and self.pool is not None:
            self.pool = None
            pool.shutdown(timeout=INTERRUPT_GRACE if self.cancelled.is_set() else None)

    def _start_pool(self) -> Workers:
        settings = self.settings
        gates = HostGates()
        limiter = RateLimiter(settings.limit_rate) if settings.limit_rate else None
        threads = settings.workers if isinstance(settings.workers, int) else AUTO_START
        processes = settings.process_count()
        pool: Workers
        if processes > 1 and (len(self.scheduler) > 1 or not self.input_done):
            from .procpool import ProcessWorkers  # only runs with -P need it

            if settings.workers == "auto":
                threads = DEFAULT_AUTO_THREADS
            # No more processes than there are jobs to share out.
            if self.input_done:
                processes = min(processes, len(self.scheduler))
            pool = ProcessWorkers(settings, self.root, processes, threads, self.names,
                                  gates, limiter, self._host_room())
        else:
            shared = Shared(settings, self.root, self.names,
                            RetryPolicy(settings.retries, settings.retry_wait), gates,
                            limiter, self.cancelled, self.events.put,
                            hosts=self._host_room())
            pool = ThreadWorkers(shared, self.events)
            if self.input_done:
                # No more threads than the jobs could use (a split file's
                # ranges are jobs too).
                threads = min(threads, len(self.scheduler) * settings.split)
            pool.grow(max(1, threads))
        self.events = pool.events
        self.pool = pool
        if settings.workers == "auto" and isinstance(pool, ThreadWorkers):
            self.auto = AutoScaler(pool, lambda: self.work_done)
        self.reporter.start(self.next_index, len(pool))
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
            self.active[job.index] = job
            pool.submit(job)

    def _step(self, pool: Workers) -> bool:
        """One turn of the main loop: plan, hand out, wait for events and
        handle them. False once every entry has ended."""
        if self.pending is not None:
            raise self.pending
        self.top_up()
        self._dispatch(pool)
        if not self.active:
            # Nothing in flight: done, or the items read so far all ended at
            # once (skips, bad lines, repeats), or the list is slow to come.
            if self.input_done and not len(self.scheduler):
                return False
            if not self.ready:
                self.top_up(wait=TICK)
            return True
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
        # on disk within moments of its first bytes (so a killed run can be
        # resumed), while a busy run pays one commit per batch, not per file.
        self.db.commit()
        if self.cancelled.is_set():  # a worker found the run cannot go on
            self._cancel(pool, self.cancelled.reason)
            return False
        for job in pool.reap():  # workers that died: never lose a job
            self._lost(pool, job)
        now = time.monotonic()
        pool.expire(now)
        if self.auto is not None:
            added = self.auto.tick(now, len(self.scheduler) + len(self.active))
            if added:
                pool.grow(added)
                self.reporter.workers_added(added)
        self.reporter.tick()
        if busy and self.active:
            self.top_up()
            self._dispatch(pool)  # top the queue up before resting
            # Let events gather (with none in hand, should a signal land):
            # one wake-up per batch rather than one per event keeps the
            # main thread off the workers' GIL.
            time.sleep(BATCH_WAIT)
        return True

    def _handle(self, event: Any) -> None:
        if isinstance(event, Finished):
            job = self.active.pop(event.index, None)
            if job is None:
                return  # already ended (its worker was reaped)
            if self.pool is not None:
                self.pool.done(event.index)
            self.work_done += AUTO_FILE_WEIGHT + event.unreported
            self.scheduler.done(job.host)
            if event.change is not None:
                self.db.apply(event.key, event.change)
            if event.stop_run is not None:
                self.reporter.warn(f"stopping the run: {event.stop_run}")
                self.cancelled.stop(f"not downloaded: the run stopped: {event.stop_run}")
            self._emit(event.worker, Outcome(job.index, job.entry, event.result),
                       event.unreported)
            return
        if isinstance(event, Progress):
            self.work_done += event.nbytes
        elif isinstance(event, (Started, Recorded)) and event.change is not None:
            self.db.apply(event.key, event.change)
        self.reporter.handle(event)

    def _lost(self, pool: Workers, job: Job) -> None:
        """A job whose worker died before it ended: tried once more where
        that can help (a process killed from outside), else failed."""
        if self.active.pop(job.index, None) is None:
            return
        self.scheduler.done(job.host)
        if pool.requeue_lost and not job.lost and not self.cancelled.is_set():
            job.lost = True
            self.scheduler.add(job.host, job)
            return
        self._fail(job, pool.lost_reason)

    def _cancel(self, pool: Workers | None, reason: str) -> None:
        """Stop promptly: no new jobs, every transfer cut, ``.part`` kept."""
        self.cancelled.stop(reason)
        if pool is None:
            return
        for job in pool.drain():
            if self.active.pop(job.index, None) is not None:
                self._fail(job, self.cancelled.reason)
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
        for job in list(self.active.values()):  # still not ended: given up on
            del self.active[job.index]
            self._fail(job, self.cancelled.reason)
