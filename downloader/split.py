"""``--split N``: one file over several connections at once, in byte ranges.

A transfer whose first reply is a 206 for ``bytes=0-`` with a strong
validator, for a file of at least ``--min-split-size``, at a time when no
entry waits for a worker of this process, becomes a ``SplitFile``: the file
is cut into N ranges, the transfer keeps reading the first from the reply
it has, and posts up to N-1 ``RangeJob`` s to its own pool's queue, for
idle workers or those that finish their own files first; each takes ranges
until none is left. Every range is written with ``os.pwrite`` into the one
preallocated ``.part``; each range request carries ``If-Range``.

The transfer that began the file (its owner) also takes ranges, then waits
for the others and lands the file: one ``Finished`` per file, one line on
the display (every range reports progress under the owner's number).
Finished ranges are synced and recorded in the state database (``Recorded``
events) so that a later attempt or run fetches only what is missing.
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
import urllib3

from .body import body_reader
from .checksums import file_checksums, mismatch
from .errors import TransferError
from .events import Progress, Recorded, Started
from .failures import describe, retryable
from .limits import origin
from .partfile import PartFile, disk_error, make_folder
from .receive import PROGRESS_INTERVAL
from .resume import Validator, strong_validator
from .results import DOWNLOADED
from .retry import HOST_PAUSE_STATUSES, RETRY_STATUSES, parse_retry_after
from .session import Requester, SocketHandle
from .shared import Interrupted, OutOfTime
from .spans import gaps, merge, pieces, range_fits, range_headers, split_validator
from .state import PartBegun, PartDropped, RangesDone, Record, Span, SplitRecord

if TYPE_CHECKING:
    from .transfer import Transfer

# How long an owner whose run was cancelled waits for its helpers before it
# reports: they were cut and end at once, unless stuck in a connect.
CANCEL_WAIT = 1.0
_WRITE_FLAGS = os.O_WRONLY | os.O_CLOEXEC | getattr(os, "O_NOFOLLOW", 0)


class _Stop(Exception):
    """This range's runner stops: the file changed, failed or the run ended."""


@dataclass
class RangeJob:
    """A worker's share of ``split``: take its ranges until none is left."""

    split: SplitFile


class _Piece:
    def __init__(self, span: Span) -> None:
        self.start, self.end = span
        self.position = self.start  # bytes before this are on disk


class SplitFile:
    """One file being fetched in ranges; shared by its owner and helpers."""

    def __init__(self, transfer: Transfer, validator: Validator, total: int,
                 done: tuple[Span, ...], etag: str | None, last_modified: str | None) -> None:
        self.transfer = transfer
        self.shared = transfer.shared
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
        self.pending = deque(_Piece(span) for span in pieces(
            gaps(total, done), transfer.settings.split))
        self.cond = threading.Condition()
        self.running = 0
        self.closed = False
        self.received = 0
        self.error: TransferError | None = None  # a range gave up: the file fails
        self.changed = False  # the server's file is another version now

    # -- the owner ----------------------------------------------------------

    def run(self, requester: Requester, first: requests.Response | None,
            helpers: int) -> tuple[str, None]:
        """Fetch every missing range, with ``helpers`` more connections
        (room already borrowed for them), then verify and land."""
        shared = self.shared
        self.transfer.http_status = 206
        # The reply to bytes=0- is the first range's: taken before any helper
        # can take that range.
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
        if self.changed:
            job.split = job.part = None
        else:
            assert self.transfer.relative is not None
            job.split = SplitRecord(self.total, tuple(self.done))
            job.part = Record(self.transfer.relative, self.etag, self.last_modified)
            # Not the PartBegun the file began with: applied again after
            # the ranges' records, it would forget them.
            self.transfer.change = RangesDone(tuple(self.done))

    def _land(self) -> tuple[str, None]:
        transfer = self.transfer
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
            # Ranges arrive out of order: the file is hashed once it is whole.
            actual = file_checksums(path, expected)
            fd = os.open(path, _WRITE_FLAGS)
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
        return transfer._land(self.part, self.etag, self.last_modified, actual["sha256"])

    # -- every runner -------------------------------------------------------

    def help(self, requester: Requester, handle: SocketHandle) -> None:
        """A helper's whole job (a ``RangeJob``): never raises."""
        handle.begin(self.deadline)
        try:
            self.work(requester, handle, None)
        finally:
            handle.end()

    def work(self, requester: Requester, handle: SocketHandle,
             opening: tuple[requests.Response, _Piece] | None) -> None:
        """Take ranges until none is left; ``opening`` is the owner's reply
        to ``bytes=0-`` and the first range, which it is read for."""
        first = opening[0] if opening is not None else None
        with self.cond:
            if self.closed:
                return
            self.running += 1
        fd = None
        try:
            fd = os.open(self.part.path, _WRITE_FLAGS)
            while True:
                if opening is not None:
                    piece, opening = opening[1], None
                else:
                    with self.cond:
                        if not self.pending or self._stopping():
                            return
                        piece = self.pending.popleft()
                self._piece(requester, handle, fd, piece, first)
                first = None
        except _Stop:
            pass
        except OSError as exc:
            self._fail(disk_error(exc, self.shared.root, f"write {self.part.path.name}"))
        except Exception as exc:  # a bug of ours: the file fails, the worker goes on
            self._fail(TransferError(f"internal error: {describe(exc)}"))
        finally:
            if first is not None:
                first.close()
            if fd is not None:
                os.close(fd)
            with self.cond:
                self.running -= 1
                self.cond.notify_all()

    def _stopping(self) -> bool:
        return self.changed or self.error is not None or self.shared.cancelled.is_set() or (
            self.deadline is not None and time.monotonic() >= self.deadline)

    def _fail(self, error: TransferError) -> None:
        with self.cond:
            if self.error is None:
                self.error = error

    def _piece(self, requester: Requester, handle: SocketHandle, fd: int, piece: _Piece,
               first: requests.Response | None) -> None:
        """One range, retried on its own as a file would be."""
        shared, host = self.shared, origin(self.url)
        attempts = 0
        try:
            while True:
                if self._stopping():
                    raise _Stop
                shared.gates.wait(host, shared.cancelled, self.deadline)
                attempts += 1
                try:
                    if first is not None:
                        response, first = first, None
                    else:
                        response = self._request(requester, piece)
                    try:
                        self._copy(response, fd, piece)
                    finally:
                        response.close()
                    return
                except TransferError as exc:
                    error = exc
                except (requests.RequestException, urllib3.exceptions.HTTPError) as exc:
                    error = TransferError(describe(exc), retryable=retryable(exc))
                except (ConnectionError, TimeoutError) as exc:  # not the disk's
                    error = TransferError(describe(exc), retryable=True)
                except (ValueError, UnicodeError) as exc:
                    error = TransferError(f"invalid HTTP response: {describe(exc)}")
                if self._stopping():
                    raise _Stop
                if not error.retryable or not shared.policy.allows(attempts):
                    tries = f" (after {attempts} attempts)" if attempts > 1 else ""
                    self._fail(TransferError(f"range {piece.start}-{piece.end - 1}: "
                                             f"{error.reason}{tries}"))
                    raise _Stop
                delay = shared.policy.delay(attempts, error.retry_after)
                if error.retry_after is not None and error.http_status in HOST_PAUSE_STATUSES:
                    shared.gates.pause(host, delay)
                if shared.cancelled.wait(delay):
                    raise _Stop
        finally:
            self._record(fd, piece)

    def _request(self, requester: Requester, piece: _Piece) -> requests.Response:
        timeout = self.transfer.settings.timeout
        read_timeout = timeout
        if self.deadline is not None:
            read_timeout = max(0.001, min(timeout, self.deadline - time.monotonic()))
        response = requester.get(self.url, range_headers(self.validator, piece.position,
                                                         piece.end), (timeout, read_timeout))
        status, headers = response.status_code, response.headers
        if status == 206 and range_fits(headers.get("Content-Range"), piece.position,
                                        piece.end, self.total):
            if headers.get(self.validator[0]) == self.validator[1]:
                return response
            # A server that ignores If-Range: another version's bytes.
        response.close()
        if status in (200, 206, 416):
            # 200: If-Range no longer matches; 206 of another version or
            # length; 416: the file shrank. Each range is of one version.
            with self.cond:
                self.changed = True
            raise _Stop
        if status in RETRY_STATUSES:
            raise TransferError(f"HTTP {status} {response.reason}", retryable=True,
                                http_status=status,
                                retry_after=parse_retry_after(headers.get("Retry-After")))
        raise TransferError(f"HTTP {status} {response.reason}".strip(), http_status=status)

    def _copy(self, response: requests.Response, fd: int, piece: _Piece) -> None:
        shared, settings = self.shared, self.transfer.settings
        limiter, cancelled = shared.limiter, shared.cancelled
        chunk_size = settings.chunk_size
        if limiter is not None:
            chunk_size = max(1024, min(chunk_size, int(limiter.rate) // 10))
        response.raw.enforce_content_length = True
        read = body_reader(response.raw)
        unreported, next_report = 0, time.monotonic() + PROGRESS_INTERVAL
        try:
            while piece.position < piece.end:
                # Never past the range: the owner's first reply runs to the end.
                chunk = read(min(chunk_size, piece.end - piece.position))
                if not chunk:
                    raise TransferError(f"connection closed at byte {piece.position} of range "
                                        f"{piece.start}-{piece.end - 1}", retryable=True)
                view, written = memoryview(chunk), 0
                while written < len(chunk):
                    written += os.pwrite(fd, view[written:], piece.position + written)
                piece.position += written
                unreported += written
                if limiter is not None:
                    limiter.consume(written, cancelled)
                if self._stopping():
                    raise _Stop
                now = time.monotonic()
                if now >= next_report:
                    shared.post(Progress(self.display, unreported))
                    unreported, next_report = 0, now + PROGRESS_INTERVAL
        finally:
            if unreported:
                shared.post(Progress(self.display, unreported))

    def _record(self, fd: int, piece: _Piece) -> None:
        """Sync what this range wrote and tell the state database, so that
        neither a retry nor the next run asks for it again."""
        if piece.position == piece.start:
            self._requeue(piece)
            return
        try:
            os.fdatasync(fd)  # a recorded range must be on disk
        except OSError:
            self._requeue(piece)
            return
        with self.cond:
            self.received += piece.position - piece.start
            self.done = list(merge([*self.done, (piece.start, piece.position)]))
            # Posted under the lock: the records reach the database in order.
            self.shared.post(Recorded(self.key, RangesDone(tuple(self.done))))
        if piece.position < piece.end:
            self._requeue(_Piece((piece.position, piece.end)))

    def _requeue(self, piece: _Piece) -> None:
        """An unfinished range, for another runner (or the next attempt)."""
        with self.cond:
            if not self._stopping():
                self.pending.appendleft(piece)


# -- the transfer's side ------------------------------------------------------

def begin(transfer: Transfer, requester: Requester, response: requests.Response,
          total: int) -> tuple[str, None] | None:
    """Split the file a 206 for ``bytes=0-`` began, if it is worth it and
    allowed; None leaves the reply to the single stream."""
    settings, shared = transfer.settings, transfer.shared
    headers = response.headers
    validator = split_validator(headers)
    if settings.split < 2 or total < settings.min_split_size or validator is None:
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
    record, earlier = job.split, job.part
    if record is None or earlier is None or earlier.path != transfer.relative:
        return None
    assert transfer.relative is not None
    final = shared.root / transfer.relative
    validator = strong_validator(earlier.etag, earlier.last_modified)
    part = PartFile(final, shared.root)
    if validator is None or record.total <= 0 or part.existing_size() != record.total:
        part.discard()  # holes and all: never to be taken for a whole file
        transfer.change = PartDropped()
        job.split = job.part = None
        return None
    split = SplitFile(transfer, validator, record.total, record.done, earlier.etag,
                      earlier.last_modified)
    done = sum(end - start for start, end in merge(record.done))
    shared.post(Started(transfer.slot.number, final.name, record.total, done, job.key))
    return split.run(requester, None, _helpers(transfer, len(split.pending) - 1))


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
        fd = os.open(part.path, _WRITE_FLAGS | os.O_CREAT | os.O_TRUNC, 0o644)
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
