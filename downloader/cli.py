"""The ``downloader`` command: parse arguments, run the engine, render,
pick the exit status."""
from __future__ import annotations

import argparse
import getpass
import itertools
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import IO, Any

from . import __version__
from .checksums import ChecksumFileError, ChecksumList, read_checksum_list
from .credentials import Credentials, parse_user, split_user
from .completion import SHELLS, CompletionAction
from .datasets import DEFAULT_URL_COLUMN, ColumnError, Columns, dataset_format, read_dataset
from .dryrun import StepCounts, plan_steps
from .engine import Outcome, Run, Terminated
from .entries import Item, from_arguments, parse_lines
from .errors import DestinationError, DestinationLocked
from .progress import make_reporter
from .outputs import (ChecksumCollector, FailedList, InputOrder, Output, ReportWriter,
                      StreamedFile)
from .results import report_json
from .settings import PROGRESS, SettingError, Settings, public_settings

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_LOCKED = 0, 1, 2, 3
EXIT_SIGINT, EXIT_SIGTERM = 130, 143


class UsageError(Exception):
    pass


def _from_text(convert: Callable[[str], Any]) -> Callable[[str], Any]:
    """An argparse ``type`` that reports a bad value in ``convert``'s words."""
    def parse(text: str) -> Any:
        try:
            return convert(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    return parse


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
        if flag.text:
            extra["type"] = _from_text(flag.text)
        p.add_argument(*flag.names, dest=spec.name, action=flag.action or "store",
                       default=argparse.SUPPRESS, help=flag.help, **extra)
    p.add_argument("--report", metavar="FILE", help="write a JSON report to FILE ('-' = stdout)")
    p.add_argument("--save-failed", metavar="FILE",
                   help="write failed entries to FILE as a URL list for -i")
    p.add_argument("--checksums", metavar="FILE",
                   help="verify every file named in FILE (sha256sum/md5sum format) "
                        "before it is put in place")
    p.add_argument("--write-checksums", metavar="FILE",
                   help="write a 'sha256sum -c' list of the files downloaded or kept, "
                        "paths relative to FILE's folder ('-' = stdout)")
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
    p.add_argument("--cluster", metavar="tcp://HOST:PORT",
                   help="run the list as shards on this Dask scheduler "
                        "(extra: bulk-downloader[cluster]); DEST must be reachable by every worker")
    p.add_argument("--shard-size", type=_from_text(_shard_size), metavar="N",
                   help="entries per shard with --cluster or --shard (default: 10000)")
    p.add_argument("--shard", metavar="K/N", type=_from_text(_shard_text),
                   help="run only the shards whose id %% N == K (0 <= K < N): one of N jobs "
                        "over one list, with no coordinator")
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
    if args.report == "-" and args.write_checksums == "-":
        parser.error("--report - and --write-checksums - cannot share stdout")
    for option, column in (("--url-column", args.url_column), ("--out-column", args.out_column)):
        if column is None:
            continue
        if not column.strip():
            parser.error(f"{option} must name a column, got {column!r}")
        if not any(dataset_format(name) for name in args.input):
            parser.error(f"{option} applies only to -i FILE.csv, .tsv or .jsonl")
    sharded = args.cluster is not None or args.shard is not None or args.shard_size is not None
    if sharded and args.write_checksums is not None:
        parser.error("--write-checksums cannot be used with --cluster, --shard or --shard-size: "
                     "shards return counts, not every file")
    if sharded and args.dry_run:
        parser.error("--dry-run cannot be used with --cluster, --shard or --shard-size")
    if args.cluster is not None and getattr(args, "processes", 1) != 1:
        parser.error("-P cannot be used with --cluster: each Dask worker is a process")
    if args.dry_run:
        for option, value in (("--report", args.report), ("--save-failed", args.save_failed),
                              ("--write-checksums", args.write_checksums)):
            if value is not None:
                parser.error(f"{option} cannot be used with --dry-run, which writes no file")
    return args


def _shard_text(text: str) -> tuple[int, int]:
    from .cluster import parse_shard
    return parse_shard(text)


def _shard_size(text: str) -> int:
    if not text.strip().isdigit() or int(text) < 1:
        raise ValueError(f"must be a whole number of at least 1, got {text!r}")
    return int(text)


def settings_from(args: argparse.Namespace) -> Settings:
    """The run's settings from the options given; a bad value is a
    ``UsageError`` naming its option."""
    options = {spec.name: getattr(args, spec.name) for spec in public_settings()
               if hasattr(args, spec.name)}
    if args.checksums is not None:
        options["checksums"] = read_checksums(args.checksums)
    try:
        return Settings.build(options.pop("dest", "downloads"), **options)
    except SettingError as exc:
        flags = {spec.name: spec.metadata["flag"].names[-1] for spec in public_settings()}
        problem = exc.problem
        if exc.conflict is not None:
            problem = f"cannot be used with {flags[exc.conflict]}"
        raise UsageError(f"{flags[exc.name]} {problem}") from None


def _user_to_ask(args: argparse.Namespace) -> str | None:
    """For ``--user USER`` with no password: USER, taken out of ``args``
    until the password has been asked for."""
    name, password = split_user(getattr(args, "user", None) or ":")
    if not name or password is not None:
        return None
    del args.user
    return name


def _checked_user(user: tuple[str, str]) -> Credentials | None:
    try:
        return parse_user(user)
    except ValueError as exc:
        raise UsageError(f"--user {exc}") from None


def _ask_password(user: str) -> tuple[str, str]:
    """(user, the password typed on the terminal), as curl asks for it."""
    if sys.stdin is None or not sys.stdin.isatty():
        raise UsageError(f"--user {user} gives no password, and there is no terminal to ask "
                         "for it on: use --user USER:PASSWORD, or ~/.netrc")
    try:
        return user, getpass.getpass(f"Enter host password for user {user!r}: ")
    except EOFError:
        raise UsageError(f"--user {user}: no password given") from None


def read_checksums(path: str) -> ChecksumList:
    try:
        return read_checksum_list(path)
    except ChecksumFileError as exc:
        raise UsageError(f"--checksums {exc}") from None
    except OSError as exc:
        raise UsageError(f"--checksums {path}: cannot read it: {exc.strerror or exc}") from None


def read_items(args: argparse.Namespace) -> Iterator[Item]:
    """Every entry from the arguments and the lists, in order, read as the
    run needs them; a list is a dataset (CSV, TSV, JSON Lines) or a URL
    list by its extension. Each list is opened (and a table's header
    checked) here, so that a list that cannot be read stops the run before
    it starts."""
    sources: list[Iterable[Item]] = [from_arguments(args.urls)]
    columns = Columns(args.url_column or DEFAULT_URL_COLUMN, args.out_column)
    for name in args.input:
        sources.append(_open_list(name, columns))
    return itertools.chain.from_iterable(sources)


def _open_list(name: str, columns: Columns) -> Iterator[Item]:
    kind = dataset_format(name)
    if name == "-":
        if sys.stdin is None:
            raise UsageError("cannot read URL list -: there is no standard input")
        return parse_lines(_stdin_lines(), "-")
    try:
        # Bytes that are not UTF-8 become U+FFFD; such a line is then
        # reported as a bad line, by number. utf-8-sig: spreadsheets start
        # their CSV with a BOM.
        if kind is None:
            return _closing(open(name, encoding="utf-8", errors="replace"),
                            lambda f: parse_lines(f, name))
        items = _closing(open(name, encoding="utf-8-sig", errors="replace", newline=""),
                         lambda f: read_dataset(f, name, kind, columns))
        first = next(items, None)  # reads the header: a missing column is a usage error
        return itertools.chain([] if first is None else [first], items)
    except OSError as exc:
        raise UsageError(f"cannot read URL list {name}: {exc.strerror or exc}") from None
    except ColumnError as exc:
        raise UsageError(f"{exc.option}: {exc}") from None


def _closing(file: IO[str], read: Callable[[IO[str]], Iterator[Item]]) -> Iterator[Item]:
    with file:
        try:
            yield from read(file)
        except ColumnError as exc:  # JSON Lines: known once every record was read
            raise UsageError(f"{exc.option}: {exc}") from None


def _stdin_lines() -> Iterator[str]:
    """Standard input's lines, decoded here: wrapping ``sys.stdin.buffer``
    in a new ``TextIOWrapper`` would close it when the wrapper goes away,
    and a program embedding ``main`` may read stdin again."""
    stream = sys.stdin
    binary = getattr(stream, "buffer", None)
    if binary is None:  # a text-only replacement (io.StringIO): already decoded
        yield from stream
        return
    for line in binary:
        yield line.decode("utf-8", errors="replace")


class _Signals:
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

    def __enter__(self) -> _Signals:
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc_info: Any) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()


def _check_writable(option: str, path: str | None, dest: Path) -> None:
    """Fail before downloading, not after, when an output file can't be written."""
    if not path or path == "-":
        return
    folder = os.path.dirname(os.path.abspath(path))
    if folder == os.path.abspath(dest) and not os.path.exists(folder):
        return  # DEST: the run creates it (or says why it cannot)
    if not os.path.isdir(folder) or not os.access(folder, os.W_OK | os.X_OK):
        raise UsageError(f"{option} {path}: folder {folder} is missing or not writable")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        with _Signals() as signals:
            return _main(args, signals)
    except KeyboardInterrupt as exc:  # before the run, or while writing the report
        print("downloader: interrupted", file=sys.stderr)
        return _interrupted_status(exc)


def _main(args: argparse.Namespace, signals: _Signals) -> int:
    try:
        user = _user_to_ask(args)
        settings = settings_from(args)
        if settings.ca_bundle and not os.path.isfile(settings.ca_bundle):
            raise UsageError(f"--ca-bundle {settings.ca_bundle}: no such file")
        for option, path in [("--report", args.report), ("--save-failed", args.save_failed),
                             ("--write-checksums", args.write_checksums)]:
            _check_writable(option, path, settings.dest)
        items = read_items(args)
        if user is not None:  # last: a mistake found above should not cost typing a password
            settings = replace(settings, user=_checked_user(_ask_password(user)))
    except UsageError as exc:
        print(f"downloader: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.dry_run:
        return _dry_run(args, settings, items)
    if args.cluster is not None or args.shard is not None or args.shard_size is not None:
        from .cluster import command_line_run  # Dask only when asked
        return command_line_run(args, settings, list(items), _report_sharded)
    reporter = make_reporter(args.progress, quiet=args.quiet, verbose=args.verbose)
    return _run_and_report(args, settings, items, reporter, signals)


def _dry_run(args: argparse.Namespace, settings: Settings, items: Iterable[Item]) -> int:
    """The plan on stdout, a line per entry as it is planned: it is what
    was asked for, and can be piped; the closing count and warnings on
    stderr, as in a run."""
    reporter = make_reporter("none", quiet=args.quiet)
    encoding = getattr(sys.stdout, "encoding", None) or "utf-8"
    counts = StepCounts()
    reading = True  # stdout still wanted
    try:
        for step in plan_steps(items, settings, reporter.warn):
            counts.add(step)
            if not reading:
                continue
            try:
                # A path or URL the stream cannot encode is escaped, not a traceback.
                line = step.line() + "\n"
                sys.stdout.write(line.encode(encoding, "backslashreplace").decode(encoding))
            except BrokenPipeError:  # `downloader --dry-run ... | head`: enough was read
                reading = False
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, sys.stdout.fileno())
                os.close(devnull)
        sys.stdout.flush()
    except (DestinationError, UsageError) as exc:
        print(f"downloader: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if not args.quiet:
        print(counts.line(), file=sys.stderr)
    return EXIT_FAILED if counts.bad else EXIT_OK


def _run_and_report(args: argparse.Namespace, settings: Settings, items: Iterable[Item],
                    reporter: Any, signals: _Signals) -> int:
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
        status = _interrupted_status(runner.interruption)
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


def _report_sharded(args: argparse.Namespace, settings: Settings, items: list[Item],
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
        status = _interrupted_status(interruption)
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


def _interrupted_status(interruption: BaseException) -> int:
    return EXIT_SIGTERM if isinstance(interruption, Terminated) else EXIT_SIGINT

