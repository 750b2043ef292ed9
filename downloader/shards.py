"""Shards: the list cut deterministically, and the task that runs one.

Engine-neutral: ``run_shard`` is a plain function of one picklable
``ShardTask``, returning a picklable ``ShardSummary``, so any executor
(a process pool, Dask, Ray, Spark) can run it. The driver side is in
``cluster.py``.

A shard's id is a digest of its entries, not its place in the list: two
lists split by hand never share an id unless they share the work, and the
same list cut on any machine gives the same shards. A finished shard's
summary is written last, atomically, to ``DEST/.downloader/shards/ID.json``:
its marker. A shard whose marker shows no failure is not run again.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import shutil
import socket
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from .claims import FileClaims, claims_root
from .entries import Entry, Item
from .naming import STATE_DIR_NAME, normalized_out
from .progress import Reporter
from .redact import redact_url
from .outputs import write_atomic
from .results import DOWNLOADED, FAILED, SKIPPED, Summary
from .settings import Settings
from .state import Landed, Record, StateDB, prepare_dest

log = logging.getLogger(__name__)

SHARDS_DIR = "shards"
DEFAULT_SHARD_SIZE = 10_000
ID_DIGITS = 16  # 64 bits of SHA-256: no collision among billions of shards


@dataclass(frozen=True)
class Shard:
    """A slice of the deduplicated list, named by its contents."""

    id: str
    entries: tuple[Entry, ...]

    @property
    def number(self) -> int:
        """The id as a number, for ``--shard K/N`` (``number % N == K``)."""
        return int(self.id, 16)


def shard_id(entries: Sequence[Entry]) -> str:
    digest = hashlib.sha256()
    for entry in entries:
        fields = [entry.url, entry.out, entry.sha256, entry.md5, entry.sha1, entry.sha512,
                  list(entry.mirrors)]
        digest.update(json.dumps(fields).encode("utf-8", "surrogatepass") + b"\n")
    return digest.hexdigest()[:ID_DIGITS]


@dataclass
class Cut:
    """The list as shards. ``positions[s][p]`` is the index (in the input)
    of entry ``p`` of shard ``s``; ``bad`` are invalid items, ``repeats``
    ``(index, first index)`` pairs of entries seen before."""

    shards: list[Shard]
    positions: list[list[int]]
    bad: list[int] = field(default_factory=list)
    repeats: list[tuple[int, int]] = field(default_factory=list)

    @property
    def list_id(self) -> str:
        """The whole list's digest: the scope of its name claims."""
        return hashlib.sha256("".join(s.id for s in self.shards).encode()).hexdigest()[:ID_DIGITS]


def cut(items: Sequence[Item], shard_size: int) -> Cut:
    """Deduplicate ``items`` (same URL, same target) as a run does, and cut
    what is left, in input order, into shards of ``shard_size`` entries."""
    if shard_size < 1:
        raise ValueError(f"shard size must be at least 1, got {shard_size}")
    result = Cut([], [])
    first_of: dict[tuple[str, str | None], int] = {}
    entries: list[Entry] = []
    positions: list[int] = []

    def close() -> None:
        result.shards.append(Shard(shard_id(entries), tuple(entries)))
        result.positions.append(list(positions))
        entries.clear()
        positions.clear()

    for index, item in enumerate(items):
        entry = item.entry
        if entry is None:
            result.bad.append(index)
            continue
        out = normalized_out(entry.out) if entry.out is not None else None
        first = first_of.setdefault((entry.url, out), index)
        if first != index:
            result.repeats.append((index, first))
            continue
        entries.append(entry)
        positions.append(index)
        if len(entries) == shard_size:
            close()
    if entries:
        close()
    return result


# -- what a shard returns -----------------------------------------------------

@dataclass(frozen=True)
class Failure:
    """One failed entry of a shard: its place in the shard and why."""

    position: int
    url: str
    """Redacted: markers are files on a shared disk."""
    error: str
    http_status: int | None = None
    attempts: int = 0


@dataclass
class ShardSummary:
    """What a shard task returns and its marker holds: counts, bytes and
    the failures, not every success (a shard may hold 10,000 entries)."""

    id: str
    entries: int
    downloaded: int = 0
    skipped: int = 0
    bytes: int = 0
    elapsed: float = 0.0
    failures: list[Failure] = field(default_factory=list)
    worker: str = ""
    """host:pid of the process that ran it."""
    stored: bool = False
    """Read from its marker: this run sent no request for it."""

    @property
    def complete(self) -> bool:
        return not self.failures

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        del data["stored"]
        data["version"] = 1
        data["failed"] = len(self.failures)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ShardSummary:
        failures = [Failure(**f) for f in data["failures"]]
        return cls(id=data["id"], entries=data["entries"], downloaded=data["downloaded"],
                   skipped=data["skipped"], bytes=data["bytes"], elapsed=data["elapsed"],
                   failures=failures, worker=data.get("worker", ""), stored=True)

    @classmethod
    def of(cls, shard_id_: str, summary: Summary) -> ShardSummary:
        counts = summary.counts
        failures = [Failure(position, redact_url(r.url), r.error or "failed", r.http_status,
                            r.attempts)
                    for position, r in enumerate(summary.results) if r.status == FAILED]
        return cls(shard_id_, len(summary.results), counts[DOWNLOADED], counts[SKIPPED],
                   summary.bytes, summary.elapsed, failures,
                   f"{socket.gethostname()}:{os.getpid()}")


def marker_path(root: Path, shard_id_: str) -> Path:
    return root / STATE_DIR_NAME / SHARDS_DIR / f"{shard_id_}.json"


def read_marker(root: Path, shard_id_: str) -> ShardSummary | None:
    """The stored summary of a shard, or None (none yet, or unreadable:
    then the shard simply runs again)."""
    try:
        data = json.loads(marker_path(root, shard_id_).read_text("utf-8"))
        return ShardSummary.from_json(data)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def finished(root: Path, settings: Settings, shard_id_: str) -> ShardSummary | None:
    """The stored summary of a shard that need not run again: its marker
    shows no failure, and ``--if-exists skip`` (the others ask to fetch
    again)."""
    if settings.if_exists != "skip":
        return None
    stored = read_marker(root, shard_id_)
    return stored if stored is not None and stored.complete else None


# -- the task -----------------------------------------------------------------

@dataclass(frozen=True)
class ShardTask:
    """Everything one shard's task needs, picklable."""

    shard: Shard
    list_id: str
    settings: Settings
    local_dir: str | None = None
    """Where the shard's SQLite state goes, on the worker's own disk
    (default: the temporary folder)."""


def run_shard(task: ShardTask) -> ShardSummary:
    """Run one shard into DEST: the same engine, threads and Session per
    thread. A shard already finished returns its marker's summary without
    a request; one retried after its worker died fetches only what is not
    complete, under the names it had. KeyboardInterrupt is re-raised."""
    settings, shard = task.settings, task.shard
    root = prepare_dest(settings.dest)
    stored = finished(root, settings, shard.id)
    if stored is not None:
        return stored
    with _shard_lock(root, shard.id):  # the same shard twice at once: one waits
        stored = finished(root, settings, shard.id)
        if stored is not None:
            return stored
        local = _local_state(task, root)
        summary = _execute(task, root, local)
        write_atomic(marker_path(root, shard.id),
                     json.dumps(summary.to_json(), ensure_ascii=False) + "\n")
        if summary.complete:  # the marker is the shard's record now
            shutil.rmtree(local, ignore_errors=True)
        return summary


def _execute(task: ShardTask, root: Path, local: Path) -> ShardSummary:
    from .runs import run  # the engine is imported where shards run

    settings = task.settings
    names = FileClaims(claims_root(root, task.list_id))
    state_path = local / "state.db"
    items: list[Item] = []
    landed: list[tuple[str, Landed]] = []
    for position, entry in enumerate(task.shard.entries):
        where = f"shard {task.shard.id} entry {position + 1}"
        try:
            entry = _settle_name(entry, root, names, landed)
        except ValueError as exc:
            items.append(Item(where, entry.url, error=f"{where}: {exc}"))
            continue
        items.append(Item(where, entry.url, entry))
    if landed:  # a retried shard: tell its database what the first attempt finished
        db = StateDB(root, log.warning, path=state_path)
        for key, change in landed:
            db.apply(key, change)
        db.close()
    summary, interruption = run(items, settings, Reporter(), lock=False,
                                state_path=state_path, names=names)
    if interruption is not None:
        raise interruption
    return ShardSummary.of(task.shard.id, summary)


def _settle_name(entry: Entry, root: Path, names: FileClaims,
                 landed: list[tuple[str, Landed]]) -> Entry:
    """Claim an ``out=`` target before the run (the entry then names the
    claimed path); note a file an earlier attempt of this shard finished
    in ``landed``, for the run's database (it is then skipped without a
    request)."""
    key = redact_url(entry.url)
    if entry.out is not None:
        claimed = names.claim(normalized_out(entry.out), f"{key}\0out={entry.out}")
        names.preclaimed.add(claimed)
        return replace(entry, out=claimed)
    earlier = names.owned(key)
    if earlier is None:
        return entry
    names.preclaimed.add(earlier)  # the planner may claim it, from the database
    target = root / earlier
    if target.is_file():
        landed.append((key, Landed(Record(earlier, size=target.stat().st_size))))
    return entry


def _local_state(task: ShardTask, root: Path) -> Path:
    base = Path(task.local_dir or tempfile.gettempdir())
    dest_digest = hashlib.sha256(str(root).encode("utf-8", "surrogatepass")).hexdigest()[:16]
    local = base / f"downloader-{os.getuid()}" / dest_digest / task.shard.id
    local.mkdir(parents=True, exist_ok=True)
    return local


@contextmanager
def _shard_lock(root: Path, shard_id_: str) -> Iterator[None]:
    path = marker_path(root, shard_id_).with_suffix(".lock")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # dropped by the kernel if we die
        yield
    finally:
        os.close(fd)
