"""The ``downloader`` command: parse arguments, run the engine, render,
pick the exit status."""
from __future__ import annotations

import argparse
import io
import os
import signal
import sys
from collections.abc import Sequence
from typing import Any

from . import __version__
from .engine import Terminated, run
from .entries import Item, from_arguments, parse_lines
from .errors import DestinationError, DestinationLocked
from .progress import make_reporter
from .results import FAILED, Summary, report_json, write_atomic
from .settings import MAX_WORKERS, Settings

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_LOCKED = 0, 1, 2, 3
EXIT_SIGINT, EXIT_SIGTERM = 130, 143


class UsageError(Exception):
    pass


def _workers(text: str) -> int | str:
    if text == "auto":
        return text
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected 1-{MAX_WORKERS} or 'auto', got {text!r}") from None
    if not 1 <= value <= MAX_WORKERS:
        raise argparse.ArgumentTypeError(f"expected 1-{MAX_WORKERS} or 'auto', got {text!r}")
    return value


def _count(text: str, minimum: int = 0) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"expected at least {minimum}, got {text!r}")
    return value


def _seconds(text: str, zero_ok: bool = False) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
    if not (0 <= value if zero_ok else 0 < value) or value == float("inf"):
        kind = "non-negative" if zero_ok else "positive"
        raise argparse.ArgumentTypeError(f"expected a {kind} number of seconds, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="downloader",
        description="Download many URLs concurrently: resumable, verified, safe for cron.",
        epilog="Exit status: 0 all downloaded or skipped, 1 some failed, 2 usage error, "
               "3 DEST is in use by another run, 130/143 interrupted.")
    p.add_argument("urls", nargs="*", metavar="URL", help="URLs to download")
    p.add_argument("-i", "--input", action="append", default=[], metavar="FILE",
                   help="read the URL list from FILE ('-' = stdin); repeatable")
    p.add_argument("-d", "--dest", default="downloads", metavar="DIR",
                   help="folder to download into (default: downloads)")
    p.add_argument("-j", "--workers", type=_workers, default=8, metavar="N",
                   help="worker threads, 1-256, or 'auto' (default: 8)")
    p.add_argument("--per-host", type=lambda t: _count(t, 1), metavar="N",
                   help="at most N requests in flight to one host")
    p.add_argument("--retries", type=_count, default=3, metavar="N",
                   help="extra attempts after a retryable failure (default: 3)")
    p.add_argument("--retry-wait", type=lambda t: _seconds(t, zero_ok=True), default=1.0,
                   metavar="SECONDS",
                   help="first retry waits about this long, doubling after (default: 1)")
    p.add_argument("--timeout", type=_seconds, default=30.0, metavar="SECONDS",
                   help="connect timeout and longest silence while reading (default: 30)")
    p.add_argument("--max-time", type=_seconds, metavar="SECONDS",
                   help="the longest one file may take, all attempts together")
    p.add_argument("--if-exists", choices=("skip", "overwrite", "update"), default="skip",
                   help="a target that exists: keep it, fetch again, or fetch if newer "
                        "(default: skip)")
    p.add_argument("--no-resume", dest="resume", action="store_false",
                   help="start .part leftovers from zero")
    p.add_argument("--max-size", metavar="SIZE", help="refuse files larger than SIZE (500K, 20M, 3G)")
    p.add_argument("--limit-rate", metavar="RATE", help="cap the total rate (500K, 10M bytes/s)")
    p.add_argument("-H", "--header", action="append", default=[], metavar="'Name: value'",
                   help="extra request header; repeatable")
    p.add_argument("-U", "--user-agent", metavar="STRING",
                   help=f"User-Agent to send (default: downloader/{__version__})")
    p.add_argument("--ca-bundle", metavar="FILE", help="trust the CA certificates in FILE")
    p.add_argument("--insecure", action="store_true", help="do not verify HTTPS certificates")
    p.add_argument("--report", metavar="FILE", help="write a JSON report to FILE ('-' = stdout)")
    p.add_argument("--save-failed", metavar="FILE",
                   help="write failed entries to FILE as a URL list for -i")
    p.add_argument("--progress", choices=("auto", "bar", "log", "none"), default="auto",
                   help="bar: live bars; log: a status line every few seconds; "
                        "auto: bar on a terminal, log otherwise")
    p.add_argument("-q", "--quiet", action="store_true", help="print only failures and errors")
    p.add_argument("-v", "--verbose", action="store_true", help="a line per finished file")
    p.add_argument("--version", action="version", version=f"downloader {__version__}")
    return p


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.quiet and args.verbose:
        parser.error("-q and -v cannot be used together")
    if not args.urls and not args.input:
        parser.error("no URLs given: name them, or use -i FILE (or -i - for stdin)")
    if args.ca_bundle and args.insecure:
        parser.error("--ca-bundle and --insecure cannot be used together")
    return args


def read_items(args: argparse.Namespace) -> list[Item]:
    """Every entry from the arguments and the lists, in order."""
    items = from_arguments(args.urls)
    for name in args.input:
        try:
            # Bytes that are not UTF-8 become U+FFFD; such a line is then
            # reported as a bad line, by number.
            if name == "-":
                stdin = io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8", errors="replace")
                items.extend(parse_lines(stdin, "-"))
            else:
                with open(name, encoding="utf-8", errors="replace") as f:
                    items.extend(parse_lines(f, name))
        except OSError as exc:
            raise UsageError(f"cannot read URL list {name}: {exc.strerror or exc}") from None
    return items


def write_failed(path: str, summary: Summary, items: list[Item]) -> None:
    """Failed entries as a URL list (with their options), owner-readable only:
    it keeps credentials so the entries can be retried."""
    lines = ["# failed entries; retry with: downloader -i THIS_FILE"]
    for item, result in zip(items, summary.results):
        if result.status != FAILED:
            continue
        lines.append(f"# {result.error}")
        if item.entry is None:
            lines.append(f"# {item.url}")  # not a valid entry: retrying would fail again
            continue
        line = item.entry.url
        if item.entry.out is not None:
            line += f" out={item.entry.out}"
        if item.entry.sha256 is not None:
            line += f" sha256={item.entry.sha256}"
        lines.append(line)
    write_atomic(path, "\n".join(lines) + "\n", mode=0o600)


class _Signals:
    """SIGINT and SIGTERM raise in the main thread once; later ones are
    noted and ignored, so the clean-up that writes the summary, the report
    and the failed list is not cut short (it is bounded: a few seconds)."""

    def __init__(self) -> None:
        self.seen = False
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: Any) -> None:
        if self.seen:
            return
        self.seen = True
        raise Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()

    def __enter__(self) -> _Signals:
        for signum in (signal.SIGINT, signal.SIGTERM):
            self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc_info: Any) -> None:
        if self.seen:
            return  # exiting now: a late second signal stays ignored
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)


def _check_writable(option: str, path: str | None) -> None:
    """Fail before downloading, not after, when an output file can't be written."""
    if not path or path == "-":
        return
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder) or not os.access(folder, os.W_OK | os.X_OK):
        raise UsageError(f"{option} {path}: folder {folder} is missing or not writable")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        with _Signals():
            return _main(args)
    except KeyboardInterrupt as exc:  # before the run, or while writing the report
        print("downloader: interrupted", file=sys.stderr)
        return _interrupted_status(exc)


def _main(args: argparse.Namespace) -> int:
    try:
        settings = Settings.build(
            args.dest, workers=args.workers, per_host=args.per_host, retries=args.retries,
            retry_wait=args.retry_wait, timeout=args.timeout, max_time=args.max_time,
            if_exists=args.if_exists, resume=args.resume, max_size=args.max_size,
            limit_rate=args.limit_rate, headers=args.header, user_agent=args.user_agent,
            ca_bundle=args.ca_bundle, insecure=args.insecure)
        if args.ca_bundle and not os.path.isfile(args.ca_bundle):
            raise UsageError(f"--ca-bundle {args.ca_bundle}: no such file")
        _check_writable("--report", args.report)
        _check_writable("--save-failed", args.save_failed)
        items = read_items(args)
    except (ValueError, UsageError) as exc:
        print(f"downloader: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    reporter = make_reporter(args.progress, quiet=args.quiet, verbose=args.verbose)
    return _run_and_report(args, settings, items, reporter)


def _run_and_report(args: argparse.Namespace, settings: Settings, items: list[Item],
                    reporter: Any) -> int:
    try:
        summary, interruption = run(items, settings, reporter)
    except DestinationError as exc:
        print(f"downloader: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except DestinationLocked as exc:
        print(f"downloader: {exc}", file=sys.stderr)
        return EXIT_LOCKED
    status = EXIT_OK if summary.ok else EXIT_FAILED
    if interruption is not None:
        status = _interrupted_status(interruption)
    try:
        if args.report == "-":
            sys.stdout.write(report_json(summary))
            sys.stdout.flush()
        elif args.report:
            write_atomic(args.report, report_json(summary))
    except OSError as exc:
        print(f"downloader: error: cannot write report {args.report}: "
              f"{exc.strerror or exc}", file=sys.stderr)
        status = max(status, EXIT_FAILED)
    try:
        if args.save_failed:
            write_failed(args.save_failed, summary, items)
    except OSError as exc:
        print(f"downloader: error: cannot write {args.save_failed}: {exc.strerror or exc}",
              file=sys.stderr)
        status = max(status, EXIT_FAILED)
    return status


def _interrupted_status(interruption: BaseException) -> int:
    return EXIT_SIGTERM if isinstance(interruption, Terminated) else EXIT_SIGINT

