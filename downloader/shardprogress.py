"""Progress of a sharded run, drawn by the driver: a bar of shards, with
files and bytes counted as each shard's summary comes back (the workers
of a cluster draw nothing)."""
from __future__ import annotations

import sys
import time
from typing import Any, TextIO

from .progress import LOG_INTERVAL, TextReporter, human_bytes
from .redact import shown_url
from .results import Summary
from .settings import PROGRESS
from .shards import ShardSummary


class ShardReporter(TextReporter):
    """``mode``: ``bar`` (tqdm), ``log`` (a status line every few seconds)
    or ``none``; failures are printed as their shard ends (``quiet``: in
    the closing summary only); ``verbose`` adds a line per shard."""

    def __init__(self, stream: TextIO | None = None, *, mode: str = "log",
                 quiet: bool = False, verbose: bool = False) -> None:
        super().__init__(stream, mode=mode, quiet=quiet, verbose=verbose)
        self.shards = self.shards_done = 0
        self.bar: Any = None

    @classmethod
    def silent(cls) -> ShardReporter:
        """The library's default: nothing drawn, nothing printed."""
        reporter = cls(mode="none")
        reporter.stream = None
        return reporter

    def start_shards(self, shards: int, entries: int) -> None:
        self.start(entries, 0)
        self.shards = shards
        if self.mode == "bar" and not self.quiet:
            from tqdm import tqdm
            self.bar = tqdm(total=shards, desc="shards", unit="shard", file=self.stream,
                            dynamic_ncols=True, mininterval=0)

    def write(self, line: str) -> None:
        if self.bar is None:
            super().write(line)
            return
        from tqdm import tqdm
        try:
            tqdm.write(line, file=self.stream)
        except (OSError, ValueError):
            pass

    def shard_done(self, summary: ShardSummary, failed_urls: list[str]) -> None:
        """A shard's summary came back; ``failed_urls`` are its failures'
        URLs as given (the summary's are redacted)."""
        self.shards_done += 1
        self.done += summary.entries
        self.failures += len(summary.failures)
        self.bytes += summary.bytes
        if not self.quiet:
            for url, failure in zip(failed_urls, summary.failures):
                self.write(f"FAILED {shown_url(url)}: {failure.error}")
        if self.verbose:
            how = "stored, no request" if summary.stored else f"ran on {summary.worker}"
            self.write(f"shard {summary.id}: {summary.downloaded} downloaded, "
                       f"{summary.skipped} skipped, {len(summary.failures)} failed, "
                       f"{human_bytes(summary.bytes)} ({how})")
        if self.bar is not None:
            self.bar.set_postfix_str(f"{self.done}/{self.total} files, "
                                     f"{human_bytes(self.bytes)}, {self.failures} failed",
                                     refresh=False)
            self.bar.update(1)

    def status_line(self) -> str:
        return f"shards {self.shards_done}/{self.shards}, " + super().status_line()

    def tick(self) -> None:
        if self.mode == "log" and not self.quiet and time.monotonic() >= self.next_status:
            self.write(self.status_line())
            self.next_status = time.monotonic() + LOG_INTERVAL

    def close(self, summary: Summary) -> None:  # type: ignore[override]
        if self.bar is not None:
            try:
                self.bar.close()
            except (OSError, ValueError):
                pass
            self.bar = None
        super().close(summary.tally())


def shard_reporter(progress: str = "none", *, quiet: bool = False, verbose: bool = False,
                   stream: TextIO | None = None) -> ShardReporter:
    """The sharded run's reporter for ``--progress``, ``-q`` and ``-v``."""
    if progress not in PROGRESS:
        raise ValueError(f"progress must be auto, bar, log or none, got {progress!r}")
    stream = stream or sys.stderr
    if progress == "auto":
        progress = "bar" if stream.isatty() else "log"
    return ShardReporter(stream, mode=progress, quiet=quiet, verbose=verbose)
