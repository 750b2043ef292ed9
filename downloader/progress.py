"""What a person sees: live bars, plain log lines, and the summary.

Only the main thread calls a reporter, from the workers' events; the
download path never waits on drawing.
"""
from __future__ import annotations

import logging
import shutil
import sys
import time
from typing import Any, TextIO

from .events import Progress, Retrying, Started
from .redact import shown_url
from .results import DOWNLOADED, FAILED, SKIPPED, Result, Summary
from .settings import PROGRESS

log = logging.getLogger("downloader")
LOG_INTERVAL = 5.0
# Bars are redrawn at most this often (seconds).
DRAW_INTERVAL = 0.25
NAME_WIDTH = 28


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def shorten(name: str, width: int = NAME_WIDTH) -> str:
    return name if len(name) <= width else name[: width // 2 - 1] + "…" + name[-(width - width // 2):]


def failure_line(result: Result) -> str:
    return f"FAILED {shown_url(result.url)}: {result.error}"


class Reporter:
    """Silent: the library's default. Warnings go to ``logging``."""

    def start(self, total: int, workers: int) -> None:
        pass

    def workers_added(self, count: int) -> None:
        pass

    def handle(self, event: Any) -> None:
        pass

    def finished(self, worker: int | None, result: Result, unreported: int = 0) -> None:
        """An entry ended; ``unreported`` bytes of it came with no ``Progress``."""

    def tick(self) -> None:
        pass

    def warn(self, text: str) -> None:
        log.warning("%s", text)

    def close(self, summary: Summary) -> None:
        pass


class TextReporter(Reporter):
    """Lines on a stream (stderr): failures, warnings, the summary; with
    ``mode="log"`` a status line every few seconds; ``quiet`` keeps only
    failures and warnings; ``verbose`` adds a line per finished file."""

    def __init__(self, stream: TextIO | None = None, *, mode: str = "log",
                 quiet: bool = False, verbose: bool = False) -> None:
        self.stream = stream or sys.stderr
        self.mode = mode
        self.quiet = quiet
        self.verbose = verbose
        self.total = 0
        self.done = 0
        self.failures = 0
        self.bytes = 0
        self.started = time.monotonic()
        self.next_status = self.started + LOG_INTERVAL

    def write(self, line: str) -> None:
        if self.stream is None:
            return
        try:
            print(line, file=self.stream, flush=True)
        except (OSError, ValueError):  # stderr closed (a pipe into `head`)
            self.stream = None

    def start(self, total: int, workers: int) -> None:
        self.total = total
        self.started = time.monotonic()
        self.next_status = self.started + LOG_INTERVAL

    def warn(self, text: str) -> None:
        self.write(f"warning: {text}")

    def handle(self, event: Any) -> None:
        if isinstance(event, Progress):
            self.bytes += event.nbytes
        elif isinstance(event, Retrying) and not self.quiet:
            self.write(f"retry {shown_url(event.url)} in {event.delay:.1f}s: {event.reason}")

    def finished(self, worker: int | None, result: Result, unreported: int = 0) -> None:
        self.done += 1
        self.bytes += unreported
        if result.status == FAILED:
            self.failures += 1
            if not self.quiet:
                self.write(failure_line(result))
        elif self.verbose:
            self.write(f"{result.status} {shown_url(result.url)} -> {result.path} "
                       f"({human_bytes(result.bytes)})")

    def status_line(self) -> str:
        elapsed = max(time.monotonic() - self.started, 1e-9)
        return (f"[{elapsed:.0f}s] {self.done}/{self.total} done, {self.failures} failed, "
                f"{human_bytes(self.bytes)}, {human_bytes(self.bytes / elapsed)}/s")

    def tick(self) -> None:
        if self.mode == "log" and not self.quiet and time.monotonic() >= self.next_status:
            self.write(self.status_line())
            self.next_status = time.monotonic() + LOG_INTERVAL

    def close(self, summary: Summary) -> None:
        for line in summary_lines(summary, self.quiet):
            self.write(line)


_BYTE_BAR: Any = None


def _byte_bar_class() -> Any:
    """A tqdm bar that spells bytes as the rest of the screen does.

    tqdm's own byte units mix two families: with ``unit_divisor=1024`` the
    sizes are powers of 1024 labelled ``k``/``M`` and the rate is powers of
    1000 (``kB/s``), beside a total bar, a summary and options that all
    speak KiB and MiB. tqdm calls ``format_meter`` on the instance for
    every redraw (its monitor thread too), so the text is made here, with
    ``human_bytes``. Made on first use: tqdm is imported only for bars.
    """
    global _BYTE_BAR
    if _BYTE_BAR is not None:
        return _BYTE_BAR
    from tqdm import tqdm

    class ByteBar(tqdm):
        @staticmethod
        def format_meter(n: float, total: float | None, elapsed: float,  # type: ignore[override]
                         ncols: int | None = None, prefix: str = "", ascii: Any = False,
                         unit: str = "B", unit_scale: Any = False, rate: float | None = None,
                         bar_format: str | None = None, postfix: Any = None,
                         unit_divisor: float = 1024, **extra: Any) -> str:
            # tqdm 4.21 passes these by position, later releases by name
            # and with more of them (initial, colour, nrows): passed on.
            if rate is None and elapsed:
                rate = (n - extra.get("initial", 0)) / elapsed
            speed = f"{human_bytes(rate)}/s" if rate else "? B/s"
            if not total or n > total:
                label = f"{prefix}: " if prefix else ""
                return f"{label}{human_bytes(n)} [{tqdm.format_interval(elapsed)}, {speed}]"
            # Only the bar itself and the times are tqdm's; the braces of
            # {elapsed} and {remaining} are its placeholders.
            text = f"{human_bytes(n)}/{human_bytes(total)} [{{elapsed}}<{{remaining}}, {speed}]"
            return str(tqdm.format_meter(n, total, elapsed, ncols, prefix, ascii, unit,
                                         False, rate, "{l_bar}{bar}| " + text, postfix,
                                         unit_divisor, **extra))

    _BYTE_BAR = ByteBar
    return ByteBar


class _WorkerLine:
    """What one worker's bar should show at the next redraw."""

    __slots__ = ("name", "total", "offset", "received", "restart", "dirty", "started")

    def __init__(self) -> None:
        self.name: str = "idle"
        self.total: int | None = None
        self.offset = 0
        self.received, self.restart, self.dirty = 0, True, True
        self.started = 0.0  # tqdm's clock (time.time()) when the file began


class BarReporter(TextReporter):
    """tqdm: one overall bar and one bar per worker, drawn by the main thread.

    Events only note what changed; bars are redrawn a few times a second
    from ``tick``, so drawing costs the same whether files take a
    millisecond or an hour.
    """

    def __init__(self, stream: TextIO | None = None, *, verbose: bool = False) -> None:
        super().__init__(stream, mode="bar", verbose=verbose)
        self.overall: Any = None
        self.bars: list[Any] = []
        self.lines: list[_WorkerLine] = []
        self.files_drawn = 0
        self.next_draw = 0.0

    def _tqdm(self, bar_class: Any = None, **kwargs: Any) -> Any:
        from tqdm import tqdm
        kwargs.setdefault("leave", False)
        return (bar_class or tqdm)(file=self.stream, dynamic_ncols=True, mininterval=0,
                                   **kwargs)

    def start(self, total: int, workers: int) -> None:
        super().start(total, workers)
        self.overall = self._tqdm(total=total, desc="total", unit="file", position=0, leave=True,
                                  bar_format="{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt}"
                                             " files [{elapsed}<{remaining}{postfix}]")
        self.workers_added(workers)

    def _label(self, worker: int, name: str) -> str:
        # A third of the terminal for the name, so narrow terminals keep
        # one line per bar.
        columns = shutil.get_terminal_size((80, 24)).columns
        width = max(8, min(NAME_WIDTH, columns // 3 - 4))
        return f"#{worker} {shorten(name, width)}".ljust(width + 4)

    def workers_added(self, count: int) -> None:
        for _ in range(count):
            self.bars.append(self._tqdm(desc=self._label(len(self.bars), "idle"),
                                        position=len(self.bars) + 1, total=None,
                                        bar_class=_byte_bar_class()))
            self.lines.append(_WorkerLine())

    def write(self, line: str) -> None:
        from tqdm import tqdm
        try:
            tqdm.write(line, file=self.stream)
        except (OSError, ValueError):
            pass

    def handle(self, event: Any) -> None:
        if isinstance(event, Started):
            line = self.lines[event.worker]
            line.name, line.total, line.offset = event.name, event.total, event.offset
            line.received, line.restart, line.dirty = 0, True, True
            line.started = time.time()
        elif isinstance(event, Progress):
            line = self.lines[event.worker]
            line.received += event.nbytes
            line.dirty = True
        super().handle(event)

    def finished(self, worker: int | None, result: Result, unreported: int = 0) -> None:
        super().finished(worker, result, unreported)
        if worker is not None and worker < len(self.lines):
            line = self.lines[worker]
            line.name, line.total, line.offset = "idle", None, 0
            line.received, line.restart, line.dirty = 0, True, True

    def tick(self) -> None:
        now = time.monotonic()
        if self.overall is None or now < self.next_draw:
            return
        self.next_draw = now + DRAW_INTERVAL
        try:
            self._draw(now)
        except (OSError, ValueError):  # stderr closed: stop drawing, keep going
            self.overall = None

    def _draw(self, now: float) -> None:
        for number, (bar, line) in enumerate(zip(self.bars, self.lines)):
            if not line.dirty:
                continue
            if line.restart:
                # tqdm's reset() redraws at once; a new file only needs
                # its counters and clock started afresh: from when it began,
                # not from this redraw, or its first rate is nonsense.
                started = line.started or time.time()
                bar.n, bar.total = line.offset, line.total
                bar.last_print_n, bar.last_print_t = line.offset, started
                bar.start_t = started
                bar.set_description_str(self._label(number, line.name), refresh=False)
            bar.update(line.received)  # draws: mininterval is 0
            line.received, line.restart, line.dirty = 0, False, False
        elapsed = max(now - self.started, 1e-9)
        self.overall.set_postfix_str(f"{human_bytes(self.bytes)}, "
                                     f"{human_bytes(self.bytes / elapsed)}/s", refresh=False)
        self.overall.update(self.done - self.files_drawn)
        self.files_drawn = self.done

    def close(self, summary: Summary) -> None:
        self.next_draw = 0.0
        self.tick()  # the final counts
        try:
            for bar in self.bars:
                bar.close()
            if self.overall is not None:
                self.overall.close()
        except (OSError, ValueError):
            pass
        super().close(summary)


def summary_lines(summary: Summary, quiet: bool = False) -> list[str]:
    """The end-of-run text. Quiet: the failures only (nothing on success)."""
    failed = summary.failed
    counts = summary.counts
    lines = []
    if not quiet:
        elapsed = max(summary.elapsed, 1e-9)
        lines.append(
            f"{counts[DOWNLOADED]} downloaded, {counts[SKIPPED]} skipped, "
            f"{counts[FAILED]} failed; {human_bytes(summary.bytes)} in {summary.elapsed:.1f}s "
            f"({human_bytes(summary.bytes / elapsed)}/s)")
        if failed:
            lines.append("Failures:")
    for result in failed:  # the error says how many attempts it took
        lines.append(f"  {shown_url(result.url)}: {result.error}" if not quiet
                     else failure_line(result))
    return lines


def make_reporter(progress: str = "none", *, quiet: bool = False, verbose: bool = False,
                  stream: TextIO | None = None) -> Reporter:
    """The reporter for ``--progress``, ``-q`` and ``-v``."""
    if progress not in PROGRESS:
        raise ValueError(f"progress must be auto, bar, log or none, got {progress!r}")
    stream = stream or sys.stderr
    if quiet:
        return TextReporter(stream, mode="none", quiet=True)
    if progress == "auto":
        progress = "bar" if stream.isatty() else "log"
    if progress == "bar":
        return BarReporter(stream, verbose=verbose)
    if progress == "log":
        return TextReporter(stream, mode="log", verbose=verbose)
    return TextReporter(stream, mode="none", verbose=verbose)
