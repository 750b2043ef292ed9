"""The ``downloader`` command: parse the arguments, check them, and hand
the run to ``command``."""
from __future__ import annotations

import argparse
import getpass
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from . import __version__
from .checksums import ChecksumFileError, ChecksumList, read_checksum_list
from .command import (EXIT_FAILED, EXIT_OK, EXIT_USAGE, Signals, UsageError, interrupted_status,
                      report_sharded, run_and_report)
from .completion import SHELLS, CompletionAction
from .credentials import Credentials, parse_user, split_user
from .datasets import DEFAULT_URL_COLUMN, dataset_format
from .dryrun import StepCounts, plan_steps
from .entries import Item
from .errors import DestinationError
from .lists import read_items
from .progress import make_reporter
from .settings import PROGRESS, SettingError, Settings, public_settings


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
        with Signals() as signals:
            return _main(args, signals)
    except KeyboardInterrupt as exc:  # before the run, or while writing the report
        print("downloader: interrupted", file=sys.stderr)
        return interrupted_status(exc)


def _main(args: argparse.Namespace, signals: Signals) -> int:
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
        return command_line_run(args, settings, list(items), report_sharded)
    reporter = make_reporter(args.progress, quiet=args.quiet, verbose=args.verbose)
    return run_and_report(args, settings, items, reporter, signals)


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


