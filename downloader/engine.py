"""The run: entries -> jobs -> pool -> events -> results.

The library (``download_all``) and the command line share ``run``. The
main thread owns the scheduler, the state database and the reporter;
workers only fetch and post events.
"""
from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .entries import EntryLike, Item, check_out, from_library
from .events import Finished, Progress, Started
from .limits import HostGates, HostScheduler, RateLimiter, origin
from .naming import PART_SUFFIX, Names, normalized_out
from .autoscale import AUTO_FILE_WEIGHT, AUTO_START, AutoScaler
from .pool import Pool
from .progress import Reporter, make_reporter
from .redact import redact_url
from .results import FAILED, SKIPPED, Result, Summary
from .retry import RetryPolicy
from .session import Requester, make_session
from .settings import HeadersLike, Settings
from .state import DestLock, Record, StateDB, prepare_dest
from .failures import describe
from .transfer import Job, Shared, Slot, Transfer

TICK = 0.1
BATCH_WAIT = 0.02
QUEUE_SLACK = 64
INTERRUPT_GRACE = 3.0


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread by the command line's handler."""


def download_all(urls: Iterable[EntryLike], dest: str | Path = "downloads", *,
                 workers: int | str = 8, per_host: int | None = None, retries: int = 3,
                 retry_wait: float = 1.0, timeout: float = 30.0,
                 max_time: float | None = None, if_exists: str = "skip",
                 resume: bool = True, max_size: int | str | None = None,
                 limit_rate: int | str | None = None, headers: HeadersLike = None,
                 user_agent: str | None = None, ca_bundle: str | None = None,
                 insecure: bool = False, progress: str | bool = "none") -> Summary:
    """Download every URL in ``urls`` into ``dest``; return a ``Summary``.

    Failed downloads are results, never exceptions. Raises ``ValueError``
    for nonsense arguments, ``TypeError`` for a lone string,
    ``DestinationError`` / ``DestinationLocked`` when the run cannot start.
    KeyboardInterrupt stops the pool (keeping ``.part`` files) and is
    re-raised.
    """
    settings = Settings.build(dest, workers=workers, per_host=per_host, retries=retries,
                              retry_wait=retry_wait, timeout=timeout, max_time=max_time,
                              if_exists=if_exists, resume=resume, max_size=max_size,
                              limit_rate=limit_rate, headers=headers, user_agent=user_agent,
                              ca_bundle=ca_bundle, insecure=insecure)
    items = from_library(urls)
    if progress is True or progress is False:
        progress = "auto" if progress else "none"
    reporter = Reporter() if progress == "none" else make_reporter(progress)
    summary, interruption = run(items, settings, reporter)
    if interruption is not None:
        raise interruption
    return summary


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


@dataclass
class _Duplicate:
    index: int
    url: str
    first: int


class _Run:
    def __init__(self, items: list[Item], settings: Settings, root: Path, db: StateDB,
                 reporter: Reporter) -> None:
        self.items = items
        self.settings = settings
        self.root = root
        self.db = db
        self.reporter = reporter
        self.results: list[Result | None] = [None] * len(items)
        self.duplicates: list[_Duplicate] = []
        self.names = Names()
        self.scheduler: HostScheduler[Job] = HostScheduler(settings.per_host)
        self.events: queue.Queue[Any] = queue.Queue()
        self.cancelled = threading.Event()
        self.in_flight = 0
        self.work_done = 0  # bytes received, plus a weight per finished file

    # -- planning: items -> jobs or immediate results -----------------------

    def plan(self) -> None:
        first_of: dict[tuple[str, str | None], int] = {}
        for index, item in enumerate(self.items):
            if item.entry is None:
                self.results[index] = Result(url=item.url, error=item.error)
                continue
            entry = item.entry
            out = normalized_out(entry.out) if entry.out is not None else None
            first = first_of.setdefault((entry.url, out), index)
            if first != index:
                self.duplicates.append(_Duplicate(index, entry.url, first))
                continue
            job = Job(index, entry, redact_url(entry.url), origin(entry.url))
            try:
                self._locate(job, out)
            except ValueError as exc:  # out= under another entry's file
                self.results[index] = Result(url=entry.url, error=f"{item.where}: {exc}")
                continue
            if job.relative and self._skip_now(job):
                self.results[index] = Result(url=entry.url, path=self.root / job.relative,
                                             status=SKIPPED)
                continue
            self.scheduler.add(job.host, job)

    def _locate(self, job: Job, out: str | None) -> None:
        """Fill in what is known of the job's target before any request."""
        settings, db = self.settings, self.db
        job.known = _usable(db.file(job.key))
        job.part = _usable(db.part(job.key)) if settings.resume else None
        if out is not None:
            job.relative = self.names.claim(out)  # ValueError: a bad line
            return
        remembered = None
        if job.known and settings.if_exists != "overwrite" \
                and (self.root / job.known.path).is_file():
            remembered = job.known.path
        elif job.part and (self.root / (job.part.path + PART_SUFFIX)).is_file():
            remembered = job.part.path
        if remembered is not None:
            try:
                job.relative = self.names.claim(remembered)
            except ValueError:  # now under another entry's file: name it afresh
                job.relative = None

    def _skip_now(self, job: Job) -> bool:
        """``--if-exists skip`` with the target present: no request at all
        (unless its ``sha256=`` must be checked first)."""
        if self.settings.if_exists != "skip" or not (self.root / job.relative).is_file():
            return False
        if job.entry.sha256 is not None:
            job.verify_existing = True
            return False
        return True

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
            self._cancel(pool)
        except BaseException:
            self._cancel(pool)
            raise
        finally:
            if pool is not None:
                pool.shutdown(timeout=INTERRUPT_GRACE if self.cancelled.is_set() else None)
        for job in self.scheduler.drain():
            self.results[job.index] = Result(url=job.entry.url, error="interrupted")
        repeats = {dup.index for dup in self.duplicates}
        for index, result in enumerate(self.results):
            if result is None and index not in repeats:
                self.results[index] = Result(url=self.items[index].url, error="interrupted")
        self._settle_duplicates()
        return [r for r in self.results if r is not None], interruption

    def _start_pool(self) -> Pool[Job, Slot]:
        settings = self.settings
        shared = Shared(settings, self.root, self.names,
                        RetryPolicy(settings.retries, settings.retry_wait), HostGates(),
                        RateLimiter(settings.limit_rate) if settings.limit_rate else None,
                        self.cancelled, self.events.put)
        local = threading.local()

        def fetch(job: Job, slot: Slot) -> Finished:
            requester = getattr(local, "requester", None)
            if requester is None:
                requester = local.requester = Requester(make_session(settings, slot.handle))
            return Transfer(job, shared, slot, requester).run()

        def crashed(job: Job, slot: Slot, exc: BaseException) -> Finished:
            reason = "interrupted" if self.cancelled.is_set() else f"internal error: {describe(exc)}"
            return Finished(slot.number, job.index, Result(url=job.entry.url, error=reason),
                            job.key)

        pool: Pool[Job, Slot] = Pool(fetch, crashed, self.events.put, Slot)
        wanted = settings.workers if isinstance(settings.workers, int) else AUTO_START
        pool.grow(max(1, min(wanted, len(self.scheduler) or 1)))
        self.reporter.start(len(self.items), len(pool))
        for result in self.results:  # decided while planning: bad lines, skips
            if result is not None:
                self.reporter.finished(None, result, 0)
        return pool

    def _dispatch(self, pool: Pool[Job, Slot]) -> None:
        """Keep enough jobs waiting that no worker runs dry between two
        wake-ups of the main thread, within per-host limits."""
        while self.in_flight < 2 * len(pool) + QUEUE_SLACK:
            taken = self.scheduler.take()
            if taken is None:
                return
            self.in_flight += 1
            pool.jobs.put(taken[1])

    def _loop(self, pool: Pool[Job, Slot]) -> None:
        auto = None
        if self.settings.workers == "auto":
            auto = AutoScaler(pool, lambda: self.work_done)
        while True:
            self._dispatch(pool)
            if not self.in_flight:
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
            now = time.monotonic()
            for slot in pool.slots:
                if slot.deadline is not None and now > slot.deadline:
                    slot.handle.cut()  # --max-time is up: unblock its read
            if auto is not None:
                added = auto.tick(now, len(self.scheduler) + self.in_flight)
                if added:
                    pool.grow(added)
                    self.reporter.workers_added(added)
            self.reporter.tick()
            if busy and self.in_flight:
                self._dispatch(pool)  # top the queue up before resting
                # Let events gather (with none in hand, should a signal
                # land): one wake-up per batch rather than one per event
                # keeps the main thread off the workers' GIL.
                time.sleep(BATCH_WAIT)

    def _handle(self, event: Any) -> None:
        if isinstance(event, Finished):
            self.in_flight -= 1
            self.work_done += AUTO_FILE_WEIGHT + event.unreported
            self.scheduler.done(origin(event.result.url))
            self.results[event.index] = event.result
            if event.record is not None:
                self.db.file_done(event.key, event.record, event.had_part)
            elif event.drop_part and event.had_part:
                self.db.part_dropped(event.key)
            self.reporter.finished(event.worker, event.result, event.unreported)
            return
        if isinstance(event, Progress):
            self.work_done += event.nbytes
        elif isinstance(event, Started) and event.record is not None:
            self.db.part_begun(event.key, event.record)
        self.reporter.handle(event)

    def _cancel(self, pool: Pool[Job, Slot] | None) -> None:
        """Stop promptly: no new jobs, every transfer cut, ``.part`` kept."""
        self.cancelled.set()
        if pool is None:
            return
        for job in pool.drain():
            self.in_flight -= 1
            self.results[job.index] = Result(url=job.entry.url, error="interrupted")
        for slot in pool.slots:
            slot.handle.cut()
        deadline = time.monotonic() + INTERRUPT_GRACE
        while self.in_flight > 0 and time.monotonic() < deadline:
            try:
                self._handle(self.events.get(timeout=TICK))
            except queue.Empty:
                for slot in pool.slots:
                    slot.handle.cut()
        while True:  # late events (database records of files that landed)
            try:
                self._handle(self.events.get_nowait())
            except queue.Empty:
                break

    def _settle_duplicates(self) -> None:
        """A repeat gets its own result: skipped, or the first one's failure."""
        for dup in self.duplicates:
            first = self.results[dup.first]
            assert first is not None
            if first.status == FAILED:
                result = Result(url=dup.url, error=first.error, http_status=first.http_status)
            else:
                result = Result(url=dup.url, path=first.path, status=SKIPPED)
            self.results[dup.index] = result
            self.reporter.finished(None, result, 0)


def _usable(record: Record | None) -> Record | None:
    """A database record whose path stays inside DEST (the file could have
    been edited by hand), else None."""
    if record is None or check_out(record.path) is not None:
        return None
    return record
