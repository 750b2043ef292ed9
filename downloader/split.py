"""``--split N``: one file over several connections at once, in byte ranges.

A transfer whose first reply is a 200 with ``Accept-Ranges: bytes`` and a
strong validator, for a file of at least ``--min-split-size``, at a time
when no entry waits for a worker of this process, becomes a ``SplitFile``:
the file is cut into N ranges, the transfer keeps reading the first from
the reply it has, and posts up to N-1 ``RangeJob`` s to its own pool's queue, for
idle workers or those that finish their own files first; each takes ranges
until none is left. Every range is written with ``os.pwrite`` into the one
preallocated ``.part``; each range request carries ``If-Range``.

The transfer that began the file (its owner) also takes ranges, then waits
for the others and lands the file: one ``Finished`` per file, one line on
the display (every range reports progress under the owner's number).
Finished ranges are synced and recorded in the state database (``Recorded``
events) so that a later attempt or run fetches only what is missing.

A range answered with a 206 of another version (a server that ignores
``If-Range``), a 200 of another version or a 416 means the file changed:
it starts over. A 200 of the same version means the server serves no
ranges after all: the file is fetched again in one stream.
"""
from __future__ import annotations

import errno
import os
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING

import requests

from .checksums import file_checksums, mismatch
from .errors import TransferError
from .events import Started
from .limits import origin
from .partfile import PartFile, disk_error, make_folder
from .ranges import WRITE_FLAGS, Piece, RangeWorker
from .resume import Validator, strong_validator
from .session import Requester
from .shared import Interrupted, OutOfTime
from .spans import gaps, merge, pieces, ranges_offered, split_validator
from .state import PartBegun, PartDropped, RangesDone, Record, Span, SplitRecord

if TYPE_CHECKING:
    from .transfer import Transfer

# How long an owner whose run was cancelled waits for its helpers before it
# reports: they were cut and end at once, unless stuck in a connect.
CANCEL_WAIT = 1.0


class RangesRefused(Exception):
    """A range was answered with the whole file (a 200 of the same
    version): the transfer asks again, for one stream."""


@dataclass
class RangeJob:
    """A worker's share of ``split``: take its ranges until none is left."""

    split: SplitFile


class SplitFile(RangeWorker):
    """One file being fetched in ranges; shared by its owner and helpers."""

    def __init__(self, transfer: Transfer, validator: Validator, total: int,
                 done: tuple[Span, ...], etag: str | None, last_modified: str | None) -> None:
        self.transfer = transfer
        self.shared = transfer.shared
        self.settings = transfer.settings
        self.url = transfer.url
        self.key = transfer.job.key
        self.validator = validator
        self.total = total
        self.etag, self.last_modified = etag, last_modified
        assert transfer.relative is not None
        self.part = PartFile(self.shared.root / transfer.relative, self.shared.root)
        self.deadline = transfer.deadline
        self.display = transfer.slot.number  # the one line the file is shown on
        self.done = list(done)
        self.pending = deque(Piece(span) for span in pieces(
            gaps(total, done), transfer.settings.split))
        self.cond = threading.Condition()
        self.running = 0
        self.closed = False
        self.received = 0
        self.error: TransferError | None = None  # a range gave up: the file fails
        self.changed = False  # the server's file is another version now
        self.refused = False  # a range was answered with the whole file

    # -- the owner ----------------------------------------------------------

    def run(self, requester: Requester, first: requests.Response | None,
            helpers: int) -> tuple[str, None]:
        """Fetch every missing range, with ``helpers`` more connections
        (room already borrowed for them), then verify and land."""
        shared = self.shared
        # The first reply is read for the first range: taken before any
        # helper can take that range.
        opening = (first, self.pending.popleft()) if first is not None else None
        if shared.helpers is not None:
            for _ in range(helpers):
                shared.helpers.submit(RangeJob(self))
        try:
            self.work(requester, self.transfer.slot.handle, opening)
            self._wait()
        finally:
            with self.cond:
                self.closed = True  # a helper that starts late finds nothing to do
            _give_back(self.transfer, helpers)
            self.transfer.received += self.received
            self._remember()
        return self._land()

    def _wait(self) -> None:
        cancelled = self.shared.cancelled
        with self.cond:
            while self.running:
                if cancelled.is_set():
                    self.cond.wait_for(lambda: not self.running, CANCEL_WAIT)
                    return
                self.cond.wait(0.1)

    def _remember(self) -> None:
        """What a later attempt of this transfer resumes from."""
        job = self.transfer.job
        job.part = None  # not a .part to extend by its size
        if self.changed or self.refused:
            job.split = None
            job.one_stream = self.refused
        else:
            assert self.transfer.relative is not None
            job.split = SplitRecord(Record(self.transfer.relative, self.etag, self.last_modified),
                                    self.total, tuple(self.done))
            # Not the PartBegun the file began with: applied again after
            # the ranges' records, it would forget them.
            self.transfer.change = RangesDone(tuple(self.done))

    def _land(self) -> tuple[str, None]:
        transfer = self.transfer
        if self.refused:  # the bytes so far are good, but one stream starts from zero
            self.part.discard()
            transfer.change = PartDropped()
            raise RangesRefused
        if self.changed:
            self.part.discard()
            transfer.change = PartDropped()
            raise TransferError("file changed on the server during a split download",
                                retryable=True)
        if self.shared.cancelled.is_set():
            raise Interrupted
        if self.error is not None:
            raise self.error
        if self.deadline is not None and time.monotonic() >= self.deadline:
            raise OutOfTime
        missing = gaps(self.total, self.done)
        if missing:  # cannot happen unless a helper vanished: say so, keep the rest
            raise TransferError(f"{sum(e - s for s, e in missing)} bytes of a split download "
                                "are missing", retryable=True)
        expected = transfer._expected()
        path = self.part.path
        try:
            # Ranges arrive out of order: the file is hashed once it is
            # whole, and only when a digest is wanted (as for one stream).
            actual = file_checksums(path, expected,
                                    sha256=self.shared.settings.record_sha256)
            fd = os.open(path, WRITE_FLAGS)
            try:
                size = os.fstat(fd).st_size
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            raise disk_error(exc, self.shared.root, f"sync {path.name}") from exc
        if size != self.total:
            raise TransferError(f"split download is {size} bytes, not {self.total}",
                                retryable=True)
        wrong = mismatch(expected, actual)
        if wrong is not None:
            self.part.discard()
            transfer.change = PartDropped()
            raise TransferError(wrong)
        self.part.size = size
        return transfer._land(self.part, self.etag, self.last_modified, actual.get("sha256"))

# -- the transfer's side ------------------------------------------------------

def begin(transfer: Transfer, requester: Requester, response: requests.Response,
          total: int) -> tuple[str, None] | None:
    """Split the file whose 200 is ``response``, if it is worth it and
    allowed: the reply is read for the first range only. None leaves it to
    the single stream."""
    settings, shared = transfer.settings, transfer.shared
    headers = response.headers
    validator = split_validator(headers)
    if settings.split < 2 or total < settings.min_split_size or validator is None \
            or not ranges_offered(headers) or transfer.job.one_stream:
        return None
    helpers = _helpers(transfer, settings.split - 1)
    if not helpers:  # one connection: the reply in hand is the whole file
        return None
    assert transfer.relative is not None
    split = SplitFile(transfer, validator, total, (), headers.get("ETag"),
                      headers.get("Last-Modified"))
    final = split.part.final
    try:
        make_folder(shared.root, final.parent)
        transfer._check_cancel()  # a worker the run gave up on touches no file
        _preallocate(split.part, total)
    except BaseException:
        _give_back(transfer, helpers)
        raise
    begun = PartBegun(Record(transfer.relative, split.etag, split.last_modified), split=total)
    transfer.change = begun
    transfer.part_from = transfer.url
    shared.post(Started(transfer.slot.number, final.name, total, 0, transfer.job.key, begun))
    return split.run(requester, response, helpers)


def resume(transfer: Transfer, requester: Requester) -> tuple[str, None] | None:
    """Go on with a split ``.part`` an earlier attempt or run left; None if
    there is none. One that does not match its record starts over."""
    job, shared = transfer.job, transfer.shared
    record = job.split
    if record is None or record.record.path != transfer.relative:
        return None
    earlier = record.record
    assert transfer.relative is not None
    final = shared.root / transfer.relative
    validator = strong_validator(earlier.etag, earlier.last_modified)
    part = PartFile(final, shared.root)
    if validator is None or record.total <= 0 or part.existing_size() != record.total:
        part.discard()  # holes and all: never to be taken for a whole file
        transfer.change = PartDropped()
        job.split = None
        return None
    split = SplitFile(transfer, validator, record.total, record.done, earlier.etag,
                      earlier.last_modified)
    done = sum(end - start for start, end in merge(record.done))
    shared.post(Started(transfer.slot.number, final.name, record.total, done, job.key))
    transfer.http_status = 206
    connections = min(len(split.pending), transfer.settings.split)
    try:
        return split.run(requester, None, _helpers(transfer, connections - 1))
    except RangesRefused:  # the job now says: one stream, from zero
        return None


def _helpers(transfer: Transfer, wanted: int) -> int:
    """How many workers of this process may help, within
    ``--per-host`` (their room is borrowed: ``SplitFile.run`` gives it back)."""
    shared = transfer.shared
    wanted = min(wanted, shared.helpers.room() if shared.helpers is not None else 0)
    if wanted < 1 or shared.hosts is None:
        return max(0, wanted)
    return shared.hosts.borrow(origin(transfer.url), wanted)


def _give_back(transfer: Transfer, helpers: int) -> None:
    if helpers and transfer.shared.hosts is not None:
        transfer.shared.hosts.give_back(origin(transfer.url), helpers)


def _preallocate(part: PartFile, total: int) -> None:
    """A new ``.part`` of the file's full length: its blocks reserved where
    the file system can, so that ranges written out of order neither
    fragment it nor find the disk full half way."""
    try:
        fd = os.open(part.path, WRITE_FLAGS | os.O_CREAT | os.O_TRUNC, 0o644)
    except OSError as exc:
        raise disk_error(exc, part.root, f"write {part.path.name}") from exc
    try:
        if hasattr(os, "posix_fallocate"):
            try:
                os.posix_fallocate(fd, 0, total)
            except OSError as exc:
                if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL):
                    raise
        os.ftruncate(fd, total)  # where fallocate is missing: sparse, same length
    except OSError as exc:
        os.close(fd)
        part.discard()
        raise disk_error(exc, part.root, f"write {part.path.name}") from exc
    os.close(fd)
