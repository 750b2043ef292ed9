"""A run as its callers see it: an iterator of outcomes (``Run``), or the
whole summary at the end (``run``)."""
from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from .engine import Engine, Outcome
from .entries import Item
from .naming import STATE_DIR_NAME, Names
from .progress import Reporter
from .results import Summary, Tally
from .scratch import Scratch
from .settings import Settings
from .state import DestLock, StateDB, prepare_dest


class Run:
    """One run over ``items``: iterate it for each entry's ``Outcome`` as it
    ends, in the order they end.

    Items are read and planned a window at a time, and nothing is kept per
    finished entry but its ``Tally`` counts, so memory does not grow with
    the list. A KeyboardInterrupt (or ``interrupt``) stops the pool, keeps
    ``.part`` files and ends the iteration; ``interruption`` then holds it.
    Closing the iterator early (``break``, ``close()``) stops the pool the
    same way. ``finish_input``: after a stop, read the rest of the input
    too, each entry failing with the reason (a caller that must have a
    result for every entry); after a stop for any other reason than an
    interruption the rest is always read, so that ``--save-failed`` lists
    every entry that was not downloaded.
    """

    def __init__(self, items: Iterable[Item], settings: Settings, reporter: Reporter, *,
                 tally: Tally | None = None, finish_input: bool = False, lock: bool = True,
                 state_path: Path | None = None, names: Names | None = None) -> None:
        self.items = items
        self.lock = lock
        self.state_path = state_path
        self.names = names
        self.settings = settings
        self.reporter = reporter
        self.tally = tally if tally is not None else Tally()
        self.finish_input = finish_input
        self.interruption: KeyboardInterrupt | None = None
        self._run: Engine | None = None
        self._pending: KeyboardInterrupt | None = None

    def interrupt(self, exc: KeyboardInterrupt) -> None:
        """Stop the run as Ctrl-C does, from a signal handler: the main
        loop notices within a tick, between two steps of its own."""
        self._pending = exc
        if self._run is not None:
            self._run.pending = exc

    def __iter__(self) -> Iterator[Outcome]:
        settings, reporter, tally = self.settings, self.reporter, self.tally
        tally.begin()
        root = prepare_dest(settings.dest)
        lock = DestLock(root)
        if self.lock:
            lock.acquire()
        try:
            db = StateDB(root, reporter.warn, path=self.state_path)
            # Beside the state database: on local disk for a shard.
            scratch_dir = self.state_path.parent if self.state_path else root / STATE_DIR_NAME
            scratch = Scratch(scratch_dir / "scratch.db")
            try:
                if settings.insecure:
                    reporter.warn("--insecure: HTTPS certificates are not verified")
                run = self._run = Engine(self.items, settings, root, db, scratch, reporter,
                                       self.finish_input, self.names)
                run.pending = self._pending
                yield from self._hand_on(run)
                self.interruption = run.interruption
            finally:
                scratch.close()
                db.close()
        finally:
            lock.release()
            tally.end()
        reporter.close(tally)


    def _hand_on(self, run: Engine) -> Iterator[Outcome]:
        """The run's outcomes, counted. A KeyboardInterrupt that lands here,
        between two steps of the run rather than in one, is handed to the
        run to stop it as usual; however this generator ends, the run's
        does too, and with it the pool."""
        outcomes = run.outcomes()
        stop: KeyboardInterrupt | None = None
        try:
            while True:
                try:
                    outcome = next(outcomes) if stop is None else outcomes.throw(stop)
                except StopIteration:
                    return
                stop = None
                try:
                    self.tally.add(outcome.result)
                    yield outcome
                except KeyboardInterrupt as exc:
                    stop = exc
        finally:
            outcomes.close()


def run(items: Iterable[Item], settings: Settings, reporter: Reporter,
        **options: Any) -> tuple[Summary, KeyboardInterrupt | None]:
    """Download ``items``; return the summary (every result, in input
    order) and the interruption, if any. ``options``: ``Run``'s."""
    runner = Run(items, settings, reporter, finish_input=True, **options)
    outcomes = sorted(runner, key=lambda outcome: outcome.index)
    tally = runner.tally
    summary = Summary([outcome.result for outcome in outcomes], elapsed=tally.elapsed,
                      started=tally.started, finished=tally.finished)
    return summary, runner.interruption
