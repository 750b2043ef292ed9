"""One range of a split file (split.py), as every worker that helps
fetch it runs it: take a range, ask for it with ``If-Range``, ``pwrite``
it into the ``.part``, retry it on its own, sync and record it.
"""
from __future__ import annotations

import os
import threading
import time
from collections import deque

import requests
import urllib3

from .body import FIRST_SIZE, body_reader, next_size, thread_buffer
from .errors import TransferError
from .events import Progress, Recorded
from .failures import describe, retryable
from .limits import origin
from .partfile import PartFile, disk_error
from .receive import PROGRESS_INTERVAL
from .resume import Validator
from .retry import HOST_PAUSE_STATUSES, RETRY_STATUSES, parse_retry_after
from .session import Requester, SocketHandle
from .settings import Settings
from .shared import Shared
from .spans import merge, range_fits, range_headers
from .state import RangesDone, Span

WRITE_FLAGS = os.O_WRONLY | os.O_CLOEXEC | getattr(os, "O_NOFOLLOW", 0)


class Stop(Exception):
    """This range's runner stops: the file changed, failed or the run ended."""


class Piece:
    """A range being fetched: ``[start, end)``, of which the bytes before
    ``position`` are written."""

    def __init__(self, span: Span) -> None:
        self.start, self.end = span
        self.position = self.start


class RangeWorker:
    """What each runner of a split file does; the state is ``SplitFile``'s."""

    shared: Shared
    settings: Settings
    url: str
    key: str
    validator: Validator
    total: int
    part: PartFile
    deadline: float | None
    display: int
    done: list[Span]
    pending: deque[Piece]
    cond: threading.Condition
    running: int
    closed: bool
    received: int
    error: TransferError | None
    changed: bool
    refused: bool

    def help(self, requester: Requester, handle: SocketHandle) -> None:
        """A helper's whole job (a ``RangeJob``): never raises."""
        handle.begin(self.deadline)
        try:
            self.work(requester, handle, None)
        finally:
            handle.end()

    def work(self, requester: Requester, handle: SocketHandle,
             opening: tuple[requests.Response, Piece] | None) -> None:
        """Take ranges until none is left; ``opening`` is the owner's first
        reply and the first range, which it is read for."""
        first = opening[0] if opening is not None else None
        with self.cond:
            if self.closed:
                return
            self.running += 1
        fd = None
        try:
            while True:
                if opening is not None:
                    piece, opening = opening[1], None
                else:
                    with self.cond:
                        if not self.pending or self._stopping():
                            return
                        piece = self.pending.popleft()
                if fd is None:  # once there is a range: the file may be landed by now
                    fd = os.open(self.part.path, WRITE_FLAGS)
                self._piece(requester, handle, fd, piece, first)
                first = None
        except Stop:
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
        return self.changed or self.refused or self.error is not None or \
            self.shared.cancelled.is_set() or (
                self.deadline is not None and time.monotonic() >= self.deadline)

    def _fail(self, error: TransferError) -> None:
        with self.cond:
            if self.error is None:
                self.error = error

    def _piece(self, requester: Requester, handle: SocketHandle, fd: int, piece: Piece,
               first: requests.Response | None) -> None:
        """One range, retried on its own as a file would be."""
        shared, host = self.shared, origin(self.url)
        attempts = 0
        try:
            while True:
                if self._stopping():
                    raise Stop
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
                    raise Stop
                if not error.retryable or not shared.policy.allows(attempts):
                    tries = f" (after {attempts} attempts)" if attempts > 1 else ""
                    self._fail(TransferError(f"range {piece.start}-{piece.end - 1}: "
                                             f"{error.reason}{tries}"))
                    raise Stop
                delay = shared.policy.delay(attempts, error.retry_after)
                if error.retry_after is not None and error.http_status in HOST_PAUSE_STATUSES:
                    shared.gates.pause(host, delay)
                if shared.cancelled.wait(delay):
                    raise Stop
        finally:
            self._record(fd, piece)

    def _request(self, requester: Requester, piece: Piece) -> requests.Response:
        timeout = self.settings.timeout
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
            with self.cond:
                if status == 200 and headers.get(self.validator[0]) == self.validator[1]:
                    self.refused = True  # the same file, whole: no ranges here after all
                else:
                    # 200: If-Range no longer matches; a 206 of another
                    # version or length; 416: the file shrank.
                    self.changed = True
            raise Stop
        if status in RETRY_STATUSES:
            raise TransferError(f"HTTP {status} {response.reason}", retryable=True,
                                http_status=status,
                                retry_after=parse_retry_after(headers.get("Retry-After")))
        raise TransferError(f"HTTP {status} {response.reason}".strip(), http_status=status)

    def _copy(self, response: requests.Response, fd: int, piece: Piece) -> None:
        shared, settings = self.shared, self.settings
        limiter, cancelled = shared.limiter, shared.cancelled
        chunk_size = settings.chunk_size
        if limiter is not None:
            chunk_size = max(1024, min(chunk_size, int(limiter.rate) // 10))
        response.raw.enforce_content_length = True
        reader = body_reader(response.raw)
        buffer = thread_buffer(chunk_size)
        # Reads as receive.py makes them: what has arrived while the range
        # comes slowly, filling ones (far less CPU over TLS) while it comes fast.
        size = first = min(FIRST_SIZE, chunk_size)
        now = time.monotonic()
        unreported, next_report = 0, now + PROGRESS_INTERVAL
        try:
            while piece.position < piece.end:
                # Never past the range: the owner's first reply is the whole file.
                view = buffer[:min(size, piece.end - piece.position)]
                n = reader.readinto(view) if size > first else reader.readinto1(view)
                before, now = now, time.monotonic()
                size = next_size(size, n == len(view), now - before, PROGRESS_INTERVAL,
                                 chunk_size)
                if not n:
                    raise TransferError(f"connection closed at byte {piece.position} of range "
                                        f"{piece.start}-{piece.end - 1}", retryable=True)
                written = 0
                while written < n:
                    written += os.pwrite(fd, view[written:n], piece.position + written)
                piece.position += written
                unreported += written
                if limiter is not None:
                    limiter.consume(written, cancelled)
                if self._stopping():
                    raise Stop
                if now >= next_report:
                    shared.post(Progress(self.display, unreported))
                    unreported, next_report = 0, now + PROGRESS_INTERVAL
        finally:
            if unreported:
                shared.post(Progress(self.display, unreported))

    def _record(self, fd: int, piece: Piece) -> None:
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
            self._requeue(Piece((piece.position, piece.end)))

    def _requeue(self, piece: Piece) -> None:
        """An unfinished range, for another runner (or the next attempt)."""
        with self.cond:
            if not self._stopping():
                self.pending.appendleft(piece)
