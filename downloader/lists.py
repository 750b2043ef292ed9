"""The URL lists a command names: opened (and a table's header checked)
before the run, read as the run goes."""
from __future__ import annotations

import argparse
import itertools
import sys
from collections.abc import Callable, Iterable, Iterator
from typing import IO

from .command import UsageError
from .datasets import DEFAULT_URL_COLUMN, ColumnError, Columns, dataset_format, read_dataset
from .entries import Item, from_arguments, parse_lines


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
