"""The ``downloader`` command: parse arguments, run the engine, render,
pick the exit status."""
from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from typing import Any

from . import __version__
from .completion import SHELLS, CompletionAction
from .datasets import DEFAULT_URL_COLUMN, ColumnError, Columns, dataset_format, read_dataset
from .dryrun import ERROR, plan_steps, summary_line
from .engine import Terminated, run
from .entries import Item, from_arguments, parse_lines
from .errors import DestinationError, DestinationLocked
from .progress import make_reporter
from .results import FAILED, Summary, report_json, write_atomic
from .settings import PROGRESS, SettingError, Settings, public_settings

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_LOCKED = 0, 1, 2, 3
EXIT_SIGINT, EXIT_SIGTERM = 130, 143


class UsageError(Exception):
    pass


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="downloader",
        description="Download many URLs concurrently: resumable, verified, safe for cron.",
        epilog="Exit status: 0 all downloaded or skipped, 1 some failed, 2 usage error, "
               "3 DEST is in use by another run, 130/143 interrupted.")
    p.add_argument("urls", nargs="*", metavar="URL", help="URLs to download")
    p.add_argument("-i", "--input", action="append", default=[], metavar="FILE",
                   help="read the URL list from FILE ('-' = stdin; a .csv, .tsv or .jsonl "
                        "FILE is a dataset: see --url-column); repeatable")
    # The run's settings, as Settings defines them (checked by Settings.build).
    for spec in public_settings():
        flag = spec.metadata["flag"]
        extra: dict[str, Any] = {"metavar": flag.metavar} if flag.metavar else {}
        if flag.choices:
            extra["choices"] = flag.choices
        p.add_argument(*flag.names, dest=spec.name, action=flag.action or "store",
                       default=argparse.SUPPRESS, help=flag.help, **extra)
    p.add_argument("--report", metavar="FILE", help="write a JSON report to FILE ('-' = stdout)")
    p.add_argument("--save-failed", metavar="FILE",
                   help="write failed entries to FILE as a URL list for -i")
    p.add_argument("--progress", choices=PROGRESS, default="auto",
                   help="bar: live bars; log: a status line every few seconds; "
                        "auto: bar on a terminal, log otherwise")
    p.add_argument("--dry-run", action="store_true",
                   help="print what would be fetched and where; no request, no file")
    p.add_argument("--completion", action=CompletionAction, choices=SHELLS,
                   metavar="SHELL",
                   help="print a completion script for SHELL (bash, zsh, fish) and exit")
    p.add_argument("--url-column", metavar="NAME",
                   help=f"the column of URLs in -i FILE.csv/.tsv/.jsonl "
                        f"(default: {DEFAULT_URL_COLUMN})")
    p.add_argument("--out-column", metavar="NAME",
                   help="the column of target paths (relative to DEST) in those files")
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
    for option, column in (("--url-column", args.url_column), ("--out-column", args.out_column)):
        if column is None:
            continue
        if not column.strip():
            parser.error(f"{option} must name a column, got {column!r}")
        if not any(dataset_format(name) for name in args.input):
            parser.error(f"{option} applies only to -i FILE.csv, .tsv or .jsonl")
    if args.dry_run:
        for option, value in (("--report", args.report), ("--save-failed", args.save_failed)):
            if value is not None:
                parser.error(f"{option} cannot be used with --dry-run, which writes no file")
    return args


def settings_from(args: argparse.Namespace) -> Settings:
    """The run's settings from the options given; a bad value is a
    ``UsageError`` naming its option."""
    options = {spec.name: getattr(args, spec.name) for spec in public_settings()
               if hasattr(args, spec.name)}
    try:
        return Settings.build(options.pop("dest", "downloads"), **options)
    except SettingError as exc:
        flags = {spec.name: spec.metadata["flag"].names[-1] for spec in public_settings()}
        problem = exc.problem
        if exc.name == "ca_bundle":  # the one check that spans two options
            problem = "cannot be used with --insecure"
        raise UsageError(f"{flags[exc.name]} {problem}") from None


def read_items(args: argparse.Namespace) -> list[Item]:
    """Every entry from the arguments and the lists, in order; a list is a
    dataset (CSV, TSV, JSON Lines) or a URL list by its extension."""
    items = from_arguments(args.urls)
    columns = Columns(args.url_column or DEFAULT_URL_COLUMN, args.out_column)
    for name in args.input:
        kind = dataset_format(name)
        try:
            # Bytes that are not UTF-8 become U+FFFD; such a line is then
            # reported as a bad line, by number.
            if name == "-":
                items.extend(parse_lines(_stdin_lines(), "-"))
            elif kind is not None:
                # utf-8-sig: spreadsheets start their CSV with a BOM.
                with open(name, encoding="utf-8-sig", errors="replace", newline="") as f:
                    items.extend(read_dataset(f, name, kind, columns))
            else:
                with open(name, encoding="utf-8", errors="replace") as f:
                    items.extend(parse_lines(f, name))
        except OSError as exc:
            raise UsageError(f"cannot read URL list {name}: {exc.strerror or exc}") from None
        except ColumnError as exc:
            raise UsageError(f"{exc.option}: {exc}") from None
    return items


def _stdin_lines() -> Iterator[str]:
    """Standard input's lines, decoded here: wrapping ``sys.stdin.buffer``
    in a new ``TextIOWrapper`` would close it when the wrapper goes away,
    and a program embedding ``main`` may read stdin again."""
    stream = sys.stdin
    if stream is None:
        raise UsageError("cannot read URL list -: there is no standard input")
    binary = getattr(stream, "buffer", None)
    if binary is None:  # a text-only replacement (io.StringIO): already decoded
        yield from stream
        return
    for line in binary:
        yield line.decode("utf-8", errors="replace")


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
    # A URL that came with bytes that are not UTF-8 is written back as those
    # bytes, so that the list is the user's own lines.
    write_atomic(path, "\n".join(lines) + "\n", mode=0o600, errors="surrogateescape")


class _Signals:
    """SIGINT and SIGTERM raise in the main thread once; later ones are
    noted and ignored, so the clean-up that writes the summary, the report
    and the failed list is not cut short (it is bounded: a few seconds).
    The caller's handlers are put back on the way out. From another thread
    (an embedding program's), signals are left alone: only the main thread
    may set handlers."""

    def __init__(self) -> None:
        self.seen = False
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: Any) -> None:
        if self.seen:
            return
        self.seen = True
        raise Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()

    def __enter__(self) -> _Signals:
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc_info: Any) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()


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
        settings = settings_from(args)
        if settings.ca_bundle and not os.path.isfile(settings.ca_bundle):
            raise UsageError(f"--ca-bundle {settings.ca_bundle}: no such file")
        _check_writable("--report", args.report)
        _check_writable("--save-failed", args.save_failed)
        items = read_items(args)
    except UsageError as exc:
        print(f"downloader: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.dry_run:
        return _dry_run(args, settings, items)
    reporter = make_reporter(args.progress, quiet=args.quiet, verbose=args.verbose)
    return _run_and_report(args, settings, items, reporter)


def _dry_run(args: argparse.Namespace, settings: Settings, items: list[Item]) -> int:
    """The plan on stdout, a line per entry: it is what was asked for, and
    can be piped; the closing count and warnings on stderr, as in a run."""
    reporter = make_reporter("none", quiet=args.quiet)
    try:
        steps = plan_steps(items, settings, reporter.warn)
    except DestinationError as exc:
        print(f"downloader: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    encoding = getattr(sys.stdout, "encoding", None) or "utf-8"
    text = "".join(step.line() + "\n" for step in steps)
    try:
        # A path or URL the stream cannot encode is escaped, not a traceback.
        sys.stdout.write(text.encode(encoding, "backslashreplace").decode(encoding))
        sys.stdout.flush()
    except BrokenPipeError:  # `downloader --dry-run ... | head`: enough was read
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    if not args.quiet:
        print(summary_line(steps), file=sys.stderr)
    return EXIT_FAILED if any(step.action == ERROR for step in steps) else EXIT_OK


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

