"""Running a parsed command: signals, the run, and what it writes (the
report, the failed list, the checksum list), and the exit status."""
from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Callable, Iterable
from typing import Any

from .engine import Outcome, Terminated
from .runs import Run
from .entries import Item
from .errors import DestinationError, DestinationLocked
from .outputs import (ChecksumCollector, FailedList, InputOrder, Output, ReportWriter,
                      StreamedFile)
from .results import report_json
from .settings import Settings

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_LOCKED = 0, 1, 2, 3
EXIT_SIGINT, EXIT_SIGTERM = 130, 143


class UsageError(Exception):
    """An argument or a list that cannot be used: exit 2, one line."""


class Signals:
    """SIGINT and SIGTERM raise in the main thread once; later ones are
    noted and ignored, so the clean-up that writes the summary, the report
    and the failed list is not cut short (it is bounded: a few seconds).
    The caller's handlers are put back on the way out. From another thread
    (an embedding program's), signals are left alone: only the main thread
    may set handlers."""

    def __init__(self) -> None:
        self.seen = False
        self.run: Run | None = None
        """While a run goes on, a signal asks it to stop instead of
        raising: it stops between two steps of its own, so the report it
        streams stays whole."""
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: Any) -> None:
        if self.seen:
            return
        self.seen = True
        exc = Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()
        if self.run is None:
            raise exc
        self.run.interrupt(exc)

    def __enter__(self) -> Signals:
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc_info: Any) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()


def run_and_report(args: argparse.Namespace, settings: Settings, items: Iterable[Item],
                    reporter: Any, signals: Signals) -> int:
    """Run, streaming each outcome to the report and the failed list as it
    lands (put back in input order, within bounds); the command line itself
    keeps only counts and failures."""
    outputs: list[tuple[str, Output]] = []
    wanted: list[tuple[str, str | None, Callable[[str], Output]]] = [
        ("--report", args.report, ReportWriter), ("--save-failed", args.save_failed, FailedList),
        ("--write-checksums", args.write_checksums, ChecksumCollector)]
    for option, path, kind in wanted:
        if not path:
            continue
        try:
            outputs.append((path, kind(path)))
        except OSError as exc:
            for _, output in outputs:
                output.discard()
            print(f"downloader: error: {option} {path}: {exc.strerror or exc}",
                  file=sys.stderr)
            return EXIT_USAGE
    runner = Run(items, settings, reporter)
    order = InputOrder()
    signals.run = runner
    wanted_outputs = len(outputs)
    try:
        for outcome in runner:
            _write(outputs, order.push(outcome))
        _write(outputs, order.flush())
    except BaseException as exc:  # no temporary file is left beside an output
        for _, output in outputs:
            output.discard()
        if isinstance(exc, DestinationLocked):
            print(f"downloader: {exc}", file=sys.stderr)
            return EXIT_LOCKED
        if isinstance(exc, (DestinationError, UsageError)):
            print(f"downloader: error: {exc}", file=sys.stderr)
            return EXIT_USAGE
        raise
    finally:
        signals.run = None
    status = EXIT_OK if runner.tally.ok else EXIT_FAILED
    if runner.interruption is not None:
        status = interrupted_status(runner.interruption)
    if len(outputs) < wanted_outputs:  # one could not be written (said so then)
        status = max(status, EXIT_FAILED)
    for path, output in outputs:
        try:
            output.finish(runner.tally)
        except OSError as exc:
            output.discard()
            _cannot_write(path, exc)
            status = max(status, EXIT_FAILED)
    return status


def report_sharded(args: argparse.Namespace, settings: Settings, items: list[Item],
                    reporter: Any, runner: Callable[..., Any]) -> int:
    """A sharded run (``cluster.py``): its merged summary holds the counts
    and the failures, beside their items; written out whole at the end."""
    try:
        summary, interruption = runner(items, settings, reporter)
    except DestinationError as exc:
        print(f"downloader: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except DestinationLocked as exc:
        print(f"downloader: {exc}", file=sys.stderr)
        return EXIT_LOCKED
    status = EXIT_OK if summary.ok else EXIT_FAILED
    if interruption is not None:
        status = interrupted_status(interruption)
    for option, path in (("--report", args.report), ("--save-failed", args.save_failed)):
        if not path:
            continue
        try:
            if option == "--report":
                report = StreamedFile(path, errors="backslashreplace")
                report.write(report_json(summary))
                report.commit()
            else:
                failed = FailedList(path)
                for item, result in zip(summary.items, summary.results):
                    failed.add(item.entry, result)
                failed.finish(summary.tally())
        except OSError as exc:
            print(f"downloader: error: cannot write {path}: {exc.strerror or exc}",
                  file=sys.stderr)
            status = max(status, EXIT_FAILED)
    return status


def _write(outputs: list[tuple[str, Output]], outcomes: list[Outcome]) -> None:
    """Hand ``outcomes`` to each output. One that cannot be written (its
    disk is full) is dropped, and said so: the downloads go on."""
    for outcome in outcomes:
        for path, output in list(outputs):
            try:
                output.add(outcome.entry, outcome.result)
            except OSError as exc:
                output.discard()
                outputs.remove((path, output))
                _cannot_write(path, exc)


def _cannot_write(path: str, exc: OSError) -> None:
    print(f"downloader: error: cannot write {path}: {exc.strerror or exc}", file=sys.stderr)


def interrupted_status(interruption: BaseException) -> int:
    return EXIT_SIGTERM if isinstance(interruption, Terminated) else EXIT_SIGINT

