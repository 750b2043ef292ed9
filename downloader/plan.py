"""Planning: each input item becomes a job, a result decided at once, or a
repeat of an earlier entry. No threads, no requests."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Union

from .checksums import Checksums
from .entries import Entry, Item, check_out
from .limits import origin
from .naming import PART_SUFFIX, Names, normalized_out
from .redact import redact_url
from .results import SKIPPED, Result
from .scratch import Scratch
from .settings import Settings
from .state import Record, SplitRecord, StateDB


@dataclass
class Job:
    """One entry to fetch, with what planning already knows of it."""

    index: int
    entry: Entry
    key: str
    """The URL as stored in the state database (credentials redacted)."""
    host: tuple[str, str, int]
    relative: str | None = None
    """Target path relative to DEST, when known before any request."""
    known: Record | None = None
    """The finished file the database recorded for this URL."""
    part: Record | None = None
    """A ``.part`` an earlier run began for this URL."""
    split: SplitRecord | None = None
    """Its ranges, if it was fetched in ranges (``--split``)."""
    one_stream: bool = False
    """The server answered a range with the whole file: no more splitting."""
    verify_existing: bool = False
    """The target exists: keep it if it matches its checksums."""
    lost: bool = False
    """A worker process died holding it once already."""


@dataclass(frozen=True)
class Repeat:
    """The same URL (and target) as the entry at ``first``: fetched once."""

    index: int
    entry: Entry
    first: int
    first_where: str


Placed = Union[Job, Result, Repeat]


class Planner:
    """Places items one at a time, in input order."""

    def __init__(self, settings: Settings, root: Path, db: StateDB, names: Names,
                 scratch: Scratch) -> None:
        self.settings = settings
        self.root = root
        self.db = db
        self.names = names
        self._scratch = scratch

    def place(self, index: int, item: Item) -> Placed:
        if item.entry is None:
            return Result(url=item.url, error=item.error)
        entry = item.entry
        out = normalized_out(entry.out) if entry.out is not None else None
        seen = self._scratch.one("SELECT first, site FROM seen WHERE url=? AND out=?",
                                 (entry.url, out or ""))
        if seen is not None:
            return Repeat(index, entry, *seen)
        self._scratch.run("INSERT INTO seen (url, out, first, site) VALUES (?, ?, ?, ?)",
                          (entry.url, out or "", index, item.where))
        job = Job(index, entry, redact_url(entry.url), origin(entry.url))
        try:
            self._locate(job, out)
        except ValueError as exc:  # out= under another entry's file
            return Result(url=entry.url, error=f"{item.where}: {exc}")
        if job.relative and self._skip_now(job):
            return Result(url=entry.url, path=self.root / job.relative, status=SKIPPED)
        return job

    def _locate(self, job: Job, out: str | None) -> None:
        """Fill in what is known of the job's target before any request."""
        settings, db = self.settings, self.db
        job.known = _usable(db.file(job.key))
        job.part = _usable(db.part(job.key)) if settings.resume else None
        split = db.split(job.key) if settings.resume else None
        if split is not None and _usable(split.record) is not None:
            job.split = split
        if out is not None:
            job.relative = self.names.claim(out)  # ValueError: a bad line
            return
        remembered = None
        if job.known and settings.if_exists != "overwrite" \
                and (self.root / job.known.path).is_file():
            remembered = job.known.path
        else:
            for begun in (job.part, job.split.record if job.split else None):
                if begun and (self.root / (begun.path + PART_SUFFIX)).is_file():
                    remembered = begun.path
                    break
        if remembered is not None:
            try:
                job.relative = self.names.claim(remembered)
            except ValueError:  # now under another entry's file: name it afresh
                job.relative = None

    def _skip_now(self, job: Job) -> bool:
        """``--if-exists skip`` with the target present: no request at all
        (unless its checksums must be checked first)."""
        assert job.relative is not None
        if self.settings.if_exists != "skip" or not (self.root / job.relative).is_file():
            return False
        if expected_checksums(job.entry, self.settings, self.root, job.relative):
            job.verify_existing = True
            return False
        return True


    def settled(self, entry: Entry, result: Result) -> None:
        """The first entry of its URL ended: what its repeats will say."""
        out = normalized_out(entry.out) if entry.out is not None else ""
        self._scratch.run(
            "UPDATE seen SET status=?, path=?, error=?, http_status=?, sha256=? "
            "WHERE url=? AND out=?",
            (result.status, str(result.path) if result.path is not None else None,
             result.error, result.http_status, result.sha256, entry.url, out))

    def outcome(self, repeat: Repeat) -> Result | None:
        """A repeat's own result, once the entry it repeats has ended."""
        entry = repeat.entry
        out = normalized_out(entry.out) if entry.out is not None else ""
        row = self._scratch.one("SELECT status, path, error, http_status, sha256 FROM seen "
                                "WHERE url=? AND out=?", (entry.url, out))
        if row is None or row[0] is None:
            return None
        status, path, error, http_status, sha256 = row
        first = Result(url=entry.url, path=Path(path) if path is not None else None,
                       status=status, error=error, http_status=http_status, sha256=sha256)
        return settle_repeat(repeat, first)


def expected_checksums(entry: Entry, settings: Settings, root: Path,
                       relative: str) -> Checksums:
    """What the file at ``relative`` must match: the entry's own checksums,
    and what a ``--checksums`` list says of its name (the entry's own
    option wins for the same algorithm)."""
    listed = settings.checksums
    if listed is None:
        return entry.checksums
    return {**listed.expected(root, relative), **entry.checksums}


def settle_repeat(repeat: Repeat, first: Result) -> Result:
    """A repeat's own result: skipped, or the first one's failure."""
    url = repeat.entry.url
    if not first.ok:
        return Result(url=url, error=first.error, http_status=first.http_status)
    return Result(url=url, path=first.path, status=SKIPPED, sha256=first.sha256)


def _usable(record: Record | None) -> Record | None:
    """A database record whose path stays inside DEST (the file could have
    been edited by hand), else None."""
    if record is None or check_out(record.path) is not None:
        return None
    return record
