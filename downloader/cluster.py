"""The driver of a sharded run: cut the list, run the shards on an
executor (Dask, a process pool, or this process for ``--shard K/N``),
merge their summaries into one.

Dask is imported only by ``connect``: ``import downloader`` never needs it.
"""
from __future__ import annotations

import os
import sys
import time
from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED, Executor, Future, wait
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any, Callable

from .entries import Item
from .results import DOWNLOADED, FAILED, SKIPPED, Result, Summary
from .settings import Settings
from .shardprogress import ShardReporter, shard_reporter
from .shards import DEFAULT_SHARD_SIZE, Cut, Failure, ShardSummary, ShardTask, cut, finished, run_shard
from .state import DestLock, prepare_dest

# Shards handed to the executor at once: enough to keep a large cluster
# busy, few enough that the entries waiting in the scheduler stay small.
WINDOW = 64
TICK = 0.5
EXTRA_HINT = "pip install 'bulk-downloader[cluster]'"


def parse_shard(text: str) -> tuple[int, int]:
    """``"K/N"`` -> (K, N) with 0 <= K < N; ``ValueError`` says what is wrong."""
    k_text, slash, n_text = text.partition("/")
    if not slash or not k_text.strip().isdigit() or not n_text.strip().isdigit():
        raise ValueError(f"must be K/N with whole numbers, like 0/4, got {text!r}")
    k, n = int(k_text), int(n_text)
    if n < 1:
        raise ValueError(f"N must be at least 1, got {text!r}")
    if k >= n:
        raise ValueError(f"K must be less than N (K counts from 0), got {text!r}")
    return k, n


def connect(address: str) -> tuple[Executor, Callable[[], None]]:
    """An executor on the Dask scheduler at ``address``, and how to let go
    of it. ``ValueError`` when the extra is missing or nothing answers."""
    try:
        from distributed import Client
    except ImportError:
        raise ValueError(f"needs Dask's distributed: {EXTRA_HINT}") from None
    try:
        client = Client(address, timeout=10, set_as_default=False)
    except (OSError, TimeoutError, ValueError) as exc:
        raise ValueError(f"cannot reach the Dask scheduler at {address}: {exc}") from None
    # pure=False: a shard is work with effects, never a cached value.
    return client.get_executor(pure=False), client.close


@dataclass
class ShardedSummary(Summary):
    """A sharded run's merged summary. Shards send back counts and
    failures, not every success, so ``results`` holds the failed entries
    (in input order) and ``counts`` the totals; ``downloaded`` and
    ``skipped`` are not kept."""

    items: list[Item] = field(default_factory=list)
    """The failed entries' input items, beside ``results``."""
    totals: dict[str, int] = field(default_factory=dict)
    total_bytes: int = 0
    shards: list[ShardSummary] = field(default_factory=list)

    @property
    def counts(self) -> dict[str, int]:
        return dict(self.totals)

    @property
    def bytes(self) -> int:
        return self.total_bytes

    @property
    def ok(self) -> bool:
        return self.totals.get(FAILED, 0) == 0

    def __len__(self) -> int:
        return sum(self.totals.values())

    @property
    def downloaded(self) -> list[Result]:
        raise TypeError("a sharded run keeps counts of its successes, not each one: "
                        "see .counts")

    skipped = downloaded

    def to_json(self) -> dict[str, Any]:
        data = super().to_json()
        # Each shard's counts; its failures are in "results" already.
        data["shards"] = [{**{k: v for k, v in s.to_json().items() if k != "failures"},
                           "stored": s.stored} for s in self.shards]
        return data


def run_sharded(items: Sequence[Item], settings: Settings, reporter: ShardReporter, *,
                executor: Executor | None = None, shard_size: int,
                shard: tuple[int, int] | None = None,
                local_dir: str | None = None) -> tuple[ShardedSummary, KeyboardInterrupt | None]:
    """Run ``items`` as shards: on ``executor``, or one after another here
    when it is None; with ``shard=(K, N)`` only the shards whose id % N == K.
    DEST's lock is held shared: ``--shard`` jobs on one DEST run together,
    each shard under its own lock, but never beside a plain run."""
    started_at, started = datetime.now(timezone.utc), time.monotonic()
    the_cut = cut(items, shard_size)
    chosen = [s for s, one in enumerate(the_cut.shards)
              if shard is None or one.number % shard[1] == shard[0]]
    root = prepare_dest(settings.dest)
    # Workers have other working folders: paths go to them absolute.
    settings = replace(settings, dest=root, ca_bundle=settings.ca_bundle and os.path.abspath(
        settings.ca_bundle))
    lock = DestLock(root)
    lock.acquire(shared=True)
    done: dict[int, ShardSummary] = {}
    interruption = None
    try:
        reporter.start_shards(len(chosen), sum(len(the_cut.shards[s].entries) for s in chosen))
        runner = _Runner(the_cut, items, chosen, done, reporter)
        for s in chosen:
            stored = finished(root, settings, the_cut.shards[s].id)
            if stored is not None:
                runner.land(s, stored)
        tasks = [(s, ShardTask(the_cut.shards[s], the_cut.list_id, settings, local_dir))
                 for s in chosen if s not in done]
        try:
            runner.execute(tasks, executor)
        except KeyboardInterrupt as exc:
            interruption = exc
    finally:
        lock.release()
    summary = merge(the_cut, items, chosen, done, with_bad=shard is None or shard[0] == 0)
    summary.elapsed = time.monotonic() - started
    summary.started, summary.finished = started_at, datetime.now(timezone.utc)
    reporter.close(summary)
    return summary, interruption


class _Runner:
    def __init__(self, the_cut: Cut, items: Sequence[Item], chosen: list[int],
                 done: dict[int, ShardSummary], reporter: ShardReporter) -> None:
        self.cut, self.items, self.done, self.reporter = the_cut, items, done, reporter

    def land(self, s: int, summary: ShardSummary) -> None:
        if s in self.done:  # a shard that ran twice counts once
            return
        self.done[s] = summary
        positions = self.cut.positions[s]
        self.reporter.shard_done(summary, [self.items[positions[f.position]].url
                                           for f in summary.failures])

    def execute(self, tasks: list[tuple[int, ShardTask]], executor: Executor | None) -> None:
        if executor is None:
            for s, task in tasks:
                self.land(s, run_shard(task))
            return
        waiting = list(reversed(tasks))
        running: dict[Future[ShardSummary], int] = {}
        try:
            while waiting or running:
                while waiting and len(running) < WINDOW:
                    s, task = waiting.pop()
                    running[executor.submit(run_shard, task)] = s
                ended, _ = wait(running, timeout=TICK, return_when=FIRST_COMPLETED)
                for future in ended:
                    s = running.pop(future)
                    self.land(s, self._outcome(s, future))
                self.reporter.tick()
        except BaseException:
            for future in running:
                future.cancel()
            raise

    def _outcome(self, s: int, future: Future[ShardSummary]) -> ShardSummary:
        """The shard's summary, or, when its task failed (its worker died
        more often than the executor retries, say), every entry failed
        with that reason: the next run redoes only what is incomplete."""
        try:
            return future.result()
        except Exception as exc:  # noqa: BLE001 - any task failure is data
            shard = self.cut.shards[s]
            reason = f"shard {shard.id} failed: {type(exc).__name__}: {exc}".strip()
            return ShardSummary(shard.id, len(shard.entries), failures=[
                Failure(p, e.url, reason) for p, e in enumerate(shard.entries)])


def merge(the_cut: Cut, items: Sequence[Item], chosen: list[int],
          done: dict[int, ShardSummary], *, with_bad: bool) -> ShardedSummary:
    """One summary from the shards' (an unfinished shard's entries are
    ``interrupted``); bad lines are counted by the job that takes K == 0,
    a repeated entry by the job that runs its first."""
    totals = {DOWNLOADED: 0, SKIPPED: 0, FAILED: 0}
    nbytes = 0
    failed: dict[int, Result] = {}
    ran: set[int] = set()  # the input indexes this run covered
    for s in chosen:
        positions = the_cut.positions[s]
        ran.update(positions)
        summary = done.get(s)
        if summary is None:
            for index in positions:
                failed[index] = Result(url=items[index].url, error="interrupted")
            continue
        totals[DOWNLOADED] += summary.downloaded
        totals[SKIPPED] += summary.skipped
        nbytes += summary.bytes
        for f in summary.failures:
            index = positions[f.position]
            failed[index] = Result(url=items[index].url, error=f.error,
                                   http_status=f.http_status, attempts=f.attempts)
    if with_bad:
        for index in the_cut.bad:
            failed[index] = Result(url=items[index].url, error=items[index].error)
    for index, first in the_cut.repeats:
        if first not in ran:
            continue
        if first in failed:
            failed[index] = Result(url=items[index].url, error=failed[first].error,
                                   http_status=failed[first].http_status)
        else:
            totals[SKIPPED] += 1
    totals[FAILED] = len(failed)
    order = sorted(failed)
    return ShardedSummary([failed[i] for i in order], items=[items[i] for i in order],
                          totals=totals, total_bytes=nbytes,
                          shards=[done[s] for s in chosen if s in done])


def sharded(items: Sequence[Item], settings: Settings, progress: str, *,
            executor: Executor | None, shard_size: int | None,
            shard: tuple[int, int] | None) -> ShardedSummary:
    """``download_all``'s sharded run: arguments checked, interruption raised."""
    if shard_size is None:
        shard_size = DEFAULT_SHARD_SIZE
    if isinstance(shard_size, bool) or not isinstance(shard_size, int) or shard_size < 1:
        raise ValueError(f"shard_size must be a whole number of at least 1, got {shard_size!r}")
    if shard is not None:
        k, n = shard
        if not (isinstance(k, int) and isinstance(n, int) and 0 <= k < n):
            raise ValueError(f"shard must be (K, N) with 0 <= K < N, got {shard!r}")
    if executor is not None and settings.process_count() > 1:
        raise ValueError("processes and executor cannot be used together: "
                         "each of the executor's workers is a process")
    reporter = ShardReporter.silent() if progress == "none" else shard_reporter(progress)
    summary, interruption = run_sharded(items, settings, reporter, executor=executor,
                                        shard_size=shard_size, shard=shard)
    if interruption is not None:
        raise interruption
    return summary


def command_line_run(args: Any, settings: Settings, items: list[Item],
                     run_and_report: Callable[..., int]) -> int:
    """``--cluster``, ``--shard``, ``--shard-size``: the command line's
    sharded run, reported as any run is (report, failed list, status)."""
    executor, close = None, None
    if args.cluster is not None:
        try:
            executor, close = connect(args.cluster)
        except ValueError as exc:
            print(f"downloader: error: --cluster {exc}", file=sys.stderr)
            return 2
    reporter = shard_reporter(args.progress, quiet=args.quiet, verbose=args.verbose)
    shard_size = args.shard_size or DEFAULT_SHARD_SIZE

    def runner(items: list[Item], settings: Settings,
               reporter: ShardReporter) -> tuple[ShardedSummary, KeyboardInterrupt | None]:
        return run_sharded(items, settings, reporter, executor=executor, shard_size=shard_size,
                           shard=args.shard)

    try:
        return run_and_report(args, settings, items, reporter, runner)
    finally:
        if close is not None:
            close()
