"""The body half of a transfer: a reply's body into ``NAME.part``, verified,
synced and renamed into place, with progress, the rate cap and
``--max-size`` on the way; or the ``.part`` kept for the next attempt, or
dropped. ``Transfer`` (transfer.py) is the other half: attempts, retries,
mirrors and the reply's head.
"""
from __future__ import annotations

import time

import requests
import urllib3

from .body import FIRST_SIZE, body_reader, next_size, thread_buffer
from .checksums import Checksums, mismatch
from .errors import TransferError
from .events import Progress, Started
from .failures import invalid_response
from .partfile import DiskError, PartFile, make_folder
from .plan import Job
from .resume import Validator, strong_validator
from .results import DOWNLOADED
from .settings import Settings
from .shared import Interrupted, Shared, Slot
from .state import Landed, PartBegun, PartDropped, Record, StateChange

PROGRESS_INTERVAL = 0.1
# A body this small arrives in one read or two: announcing it to the main
# thread would cost more than it shows.
QUICK_BODY = 256 * 1024




class Receiving:
    """What ``Transfer`` does with a body; the state below is the transfer's."""

    job: Job
    shared: Shared
    settings: Settings
    slot: Slot
    relative: str | None
    url: str
    validator: Validator | None
    part_from: str | None
    sha256: str | None
    received: int
    unreported: int
    change: StateChange | None

    def _check_cancel(self) -> None:
        raise NotImplementedError

    def _expected(self) -> Checksums:
        raise NotImplementedError

    def _receive(self, response: requests.Response, offset: int, total: int | None,
                 body: bool = True,
                 begun_with: Validator | None = None) -> tuple[str, str | None]:
        """``begun_with``: a 416 completes the ``.part``; its validators,
        not the 416's (which seldom has any), describe the file."""
        shared = self.shared
        assert self.relative is not None
        final = shared.root / self.relative
        part = PartFile(final, shared.root)
        make_folder(shared.root, final.parent)
        etag = response.headers.get("ETag")
        last_modified = response.headers.get("Last-Modified")
        if begun_with is not None:
            earlier = self.job.part if self.job.part and \
                self.job.part.path == self.relative else None
            etag = etag or (earlier.etag if earlier else None) or (
                begun_with[1] if begun_with[0] == "ETag" else None)
            last_modified = last_modified or (earlier.last_modified if earlier else None) or (
                begun_with[1] if begun_with[0] == "Last-Modified" else None)
        begun = None
        if body:
            self.validator = strong_validator(etag, last_modified)
            if offset == 0:
                begun = PartBegun(Record(self.relative, etag, last_modified))
                self.part_from = self.url
        self._check_cancel()  # a worker the run gave up on touches no file
        expected = self._expected()
        algorithms = {*expected, "sha256"} if self.settings.record_sha256 else set(expected)
        # Opened (so truncated, for a new one) before the database hears of
        # it: a .part must never be recorded as a version it does not hold.
        part.open(offset, algorithms)
        if begun is not None:
            # Until it lands or is dropped, the database should know where
            # this .part came from; the Finished event says so too, should
            # the Started one be lost (a signal in the middle of handling it).
            self.change = begun
        start = Started(self.slot.number, final.name, total, offset, self.job.key, begun)
        # Quick bodies are announced only if they turn out slow: a .part of
        # one is not worth resuming in a later run.
        quick = total is not None and total - offset <= QUICK_BODY
        if not quick:
            self.shared.post(start)
        try:
            if body:
                self._stream(response, part, total, start if quick else None)
            if total is not None and part.size != total:
                raise TransferError(f"connection closed after {part.size} of {total} bytes",
                                    retryable=True)
            if total is None and self.slot.handle.was_cut:
                # With no length to check, a socket we shut down looks like
                # the end of the body: it is not.
                self._check_cancel()
                raise TransferError(f"transfer cut after {part.size} bytes", retryable=True)
            actual = part.checksums()
            wrong = mismatch(expected, actual)
            if wrong is not None:
                self._discard(part)  # a file that fails never lands
                raise TransferError(wrong)
            part.sync()
        except DiskError:
            if offset:  # an earlier run's bytes are good: keep them to resume
                part.truncate(offset)
            else:  # its last write failed; free what it holds
                self._discard(part)
            raise
        except BaseException:
            if part.size == 0:
                self._discard(part)  # nothing worth keeping: leave no litter
            elif not isinstance(self.change, PartDropped):
                part.sync(quietly=True)  # kept for the next attempt or run
            raise
        finally:
            part.close()
        return self._land(part, etag, last_modified, actual.get("sha256"))

    def _land(self, part: PartFile, etag: str | None, last_modified: str | None,
              sha256: str | None) -> tuple[str, None]:
        """Rename the verified, synced ``.part`` into place (a split file's
        too: split.py) and say what the database should record."""
        assert self.relative is not None
        if self.shared.cancelled.is_set():  # the run gave up on this worker: no rename now
            raise Interrupted
        part.commit(last_modified)
        self.sha256 = sha256
        self.change = Landed(Record(self.relative, etag, last_modified, part.size, sha256))
        return DOWNLOADED, None

    def _stream(self, response: requests.Response, part: PartFile, total: int | None,
                start: Started | None) -> None:
        """Copy the body into ``part``; ``start`` is posted if the body takes
        long enough to be worth showing."""
        shared, slot = self.shared, self.slot.number
        limiter, cancelled = shared.limiter, shared.cancelled
        max_size = self.settings.max_size
        largest = self.settings.chunk_size
        if limiter is not None:
            largest = max(1024, min(largest, int(limiter.rate) // 10))
        reader = body_reader(response.raw)
        buffer = thread_buffer(largest)
        size = first = min(FIRST_SIZE, largest)
        offset = part.size
        now = time.monotonic()
        next_report = now + PROGRESS_INTERVAL
        try:
            while True:
                view = buffer[:size]
                n = reader.readinto(view) if size > first else reader.readinto1(view)
                if not n:
                    break
                part.write(buffer[:n])
                self.received += n
                self.unreported += n
                if max_size is not None and part.size > max_size:
                    self._discard(part)
                    raise TransferError(f"file grew past --max-size {max_size} bytes")
                if limiter is not None:
                    limiter.consume(n, cancelled)
                if cancelled.is_set():
                    raise Interrupted
                before, now = now, time.monotonic()
                size = next_size(size, n == size, now - before, PROGRESS_INTERVAL, largest)
                if now >= next_report:
                    if start is not None:
                        self.shared.post(start)
                        start = None
                    shared.post(Progress(slot, self.unreported))
                    self.unreported, next_report = 0, now + PROGRESS_INTERVAL
        except BaseException as exc:
            if isinstance(exc, DiskError):
                raise
            invalid = invalid_response(exc)
            if invalid is not None:
                # Framing garbage: the bytes so far are not worth resuming.
                self._discard(part)
                raise TransferError(invalid) from exc
            if start is not None and part.size > offset \
                    and not isinstance(self.change, PartDropped):
                # Cut short with bytes on disk (and not discarded, as past
                # --max-size): now the .part is worth recording, so that a
                # later run can resume it.
                self.shared.post(start)
            if not isinstance(exc, (urllib3.exceptions.HTTPError, OSError)):
                raise
            self._check_cancel()
            if isinstance(exc, urllib3.exceptions.ReadTimeoutError):
                reason = f"read timed out after {part.size} bytes"
            else:
                reason = f"connection lost after {part.size} bytes"
            if total is not None:
                reason = reason.replace(" bytes", f" of {total} bytes")
            raise TransferError(reason, retryable=True) from exc

    def _discard(self, part: PartFile) -> None:
        """Forget the ``.part``: on disk, for resuming, and in the database."""
        part.discard()
        self.validator = None
        self.change = PartDropped()
