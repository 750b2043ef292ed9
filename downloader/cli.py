"""The ``downloader`` command: parse arguments, run the engine, render,
pick the exit status."""
from __future__ import annotations

import argparse
import getpass
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from . import __version__
from .checksums import (ChecksumFileError, ChecksumList, checksum_text, file_checksums,
                        read_checksum_list)
from .credentials import Credentials, parse_user, split_user
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
    if args.dry_run:
        for option, value in (("--report", args.report), ("--save-failed", args.save_failed),
                              ("--write-checksums", args.write_checksums)):
            if value is not None:
                parser.error(f"{option} cannot be used with --dry-run, which writes no file")
    return args


def settings_from(args: argparse.Namespace) -> Settings:
    """The run's settings from the options given; a bad value is a
    ``UsageError`` naming its option."""
    options = {spec.name: getattr(args, spec.name) for spec in public_settings()
               if hasattr(args, spec.name)}
    if args.checksums is not None:
        options["checksums"] = read_checksums(args.checksums)
    if args.write_checksums is not None:
        options["record_sha256"] = True  # hashed as written: no second read
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
        entry = item.entry
        options = [f"out={entry.out}"] if entry.out is not None else []
        options += [f"{name}={value}" for name, value in entry.checksums.items()]
        lines.append(" ".join([*entry.urls, *options]))
    # A URL that came with bytes that are not UTF-8 is written back as those
    # bytes, so that the list is the user's own lines.
    write_atomic(path, "\n".join(lines) + "\n", mode=0o600, errors="surrogateescape")


def write_checksums(path: str, summary: Summary) -> None:
    """A ``sha256sum -c`` list of every file the run downloaded or kept,
    each path relative to the list's own folder (the current one for
    ``-``). A downloaded file's SHA-256 was computed as it was written; a
    kept one is read once, unless this run already checked it."""
    files: dict[str, str] = {}
    for result in summary.results:
        if result.path is None or result.status == FAILED or str(result.path) in files:
            continue
        digest = result.sha256
        if digest is None:
            try:
                digest = file_checksums(result.path)["sha256"]
            except OSError:
                continue  # gone or unreadable since: nothing to vouch for
        files[str(result.path)] = digest
    where = "." if path == "-" else os.path.dirname(os.path.abspath(path))
    text = checksum_text(((Path(name), digest) for name, digest in files.items()),
                         os.path.realpath(where))
    if path == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
    else:
        write_atomic(path, text, errors="surrogateescape")


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
        with _Signals():
            return _main(args)
    except KeyboardInterrupt as exc:  # before the run, or while writing the report
        print("downloader: interrupted", file=sys.stderr)
        return _interrupted_status(exc)


def _main(args: argparse.Namespace) -> int:
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
    try:
        if args.write_checksums:
            write_checksums(args.write_checksums, summary)
    except OSError as exc:
        print(f"downloader: error: cannot write {args.write_checksums}: "
              f"{exc.strerror or exc}", file=sys.stderr)
        status = max(status, EXIT_FAILED)
    return status


def _interrupted_status(interruption: BaseException) -> int:
    return EXIT_SIGTERM if isinstance(interruption, Terminated) else EXIT_SIGINT

