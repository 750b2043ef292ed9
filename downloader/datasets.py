"""Dataset lists: CSV, TSV and JSON Lines files with a column of URLs.

``-i data.csv`` (or ``.tsv``, ``.jsonl``) takes each row's URL from one
column (``--url-column``, default ``url``) and, if asked, its target path
from another (``--out-column``); other columns are ignored. Each row becomes
an ``Item``, as a URL-list line does, labelled ``FILE:LINE`` with the
physical line the row starts on, counting the header as line 1: the line an
editor's "go to line" should land on, even when a quoted CSV field spans
several lines. A bad row fails alone; a column the file does not have at
all is a ``ColumnError``, since the run cannot be what was meant.
"""
from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from .entries import Entry, Item, make_item

# What a file's extension says it holds. ``.ndjson`` is the other common
# name of JSON Lines.
FORMATS = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl"}
DEFAULT_URL_COLUMN = "url"
_SHOWN_COLUMNS = 10


class ColumnError(ValueError):
    """The file has no column by the name an option gave."""

    def __init__(self, option: str, message: str) -> None:
        super().__init__(message)
        self.option = option


@dataclass(frozen=True)
class Columns:
    """Which columns hold what."""

    url: str = DEFAULT_URL_COLUMN
    out: str | None = None


def dataset_format(name: str) -> str | None:
    """``csv``, ``tsv`` or ``jsonl`` for a dataset file's name; None for
    a plain URL list (and for ``-``, standard input)."""
    if name == "-":
        return None
    return FORMATS.get(os.path.splitext(name)[1].lower())


def read_dataset(lines: Iterable[str], name: str, kind: str, columns: Columns) -> Iterator[Item]:
    """Items for the rows of a dataset file read from ``lines`` (opened with
    ``newline=""``, as ``csv`` needs). Raises ``ColumnError`` when a column
    is missing from the header (for JSON Lines: from every record)."""
    if kind == "jsonl":
        return _json_lines(lines, name, columns)
    if kind == "tsv":
        # IANA text/tab-separated-values: no quoting, a record per line. A
        # caption that begins with '"' is then text, not the start of a
        # quoted field that swallows the following rows.
        return _table(csv.reader(lines, delimiter="\t", quoting=csv.QUOTE_NONE), name, columns)
    return _table(csv.reader(lines), name, columns)


def _table(reader: Any, name: str, columns: Columns) -> Iterator[Item]:
    url_at = out_at = None
    ended = 0  # the physical line the previous row ended on
    while True:
        start = ended + 1
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:  # the reader starts afresh on the next line
            ended = reader.line_num
            yield Item(f"{name}:{start}", "", error=f"{name}:{start}: cannot read the row: {exc}")
            continue
        ended = reader.line_num
        if not any(cell.strip() for cell in row):
            continue  # blank lines, as in a URL list
        if url_at is None:
            header = [cell.strip() for cell in row]
            url_at = _column(header, columns.url, "--url-column", name)
            if columns.out is not None:
                out_at = _column(header, columns.out, "--out-column", name)
            continue
        where = f"{name}:{start}"
        if url_at >= len(row):
            fields = f"{len(row)} field" + ("" if len(row) == 1 else "s")
            yield Item(where, "", error=f"{where}: no {columns.url!r} value "
                                        f"(the row has {fields})")
            continue
        out = row[out_at].strip() if out_at is not None and out_at < len(row) else ""
        yield make_item(where, Entry(row[url_at].strip(), out or None))


def _column(header: Sequence[str], column: str, option: str, name: str) -> int:
    try:
        return header.index(column)
    except ValueError:
        shown = ", ".join(repr(c) for c in header[:_SHOWN_COLUMNS])
        more = ", ..." if len(header) > _SHOWN_COLUMNS else ""
        raise ColumnError(option, f"{name} has no column {column!r} "
                                  f"(its columns: {shown}{more})") from None


def _json_lines(lines: Iterable[str], name: str, columns: Columns) -> Iterator[Item]:
    records = url_seen = out_seen = 0
    for number, line in enumerate(lines, 1):
        where = f"{name}:{number}"
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            yield Item(where, "", error=f"{where}: not valid JSON: {exc.msg} "
                                        f"(column {exc.colno})")
            continue
        except RecursionError:  # nested beyond what the parser follows
            yield Item(where, "", error=f"{where}: not valid JSON: nested too deeply")
            continue
        if not isinstance(record, dict):
            yield Item(where, "", error=f"{where}: not a JSON object")
            continue
        records += 1
        url = record.get(columns.url)
        out = record.get(columns.out) if columns.out is not None else None
        url_seen += columns.url in record
        out_seen += columns.out is not None and columns.out in record
        text = url if isinstance(url, str) else ""
        if url is None:
            problem = f"no {columns.url!r} value"
        elif not isinstance(url, str):
            problem = f"{columns.url!r} is not a string"
        elif out is not None and not isinstance(out, str):
            problem = f"{columns.out!r} is not a string"
        else:
            yield make_item(where, Entry(url.strip(), out.strip() if out else None))
            continue
        yield Item(where, text, error=f"{where}: {problem}")
    # No header to check: a key that no record has is a misnamed column.
    if records and not url_seen:
        raise ColumnError("--url-column", f"no record of {name} has the key {columns.url!r}")
    if records and columns.out is not None and not out_seen:
        raise ColumnError("--out-column", f"no record of {name} has the key {columns.out!r}")
