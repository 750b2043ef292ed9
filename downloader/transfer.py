"""One URL to one verified file: request, ``.part``, verify, rename.

Nothing here knows about threads or queues; a ``Transfer`` runs in
whichever worker picked the job and reports through ``post``.
"""
from __future__ import annotations

import hashlib
import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import formatdate, parsedate_to_datetime
from pathlib import Path

import requests
import urllib3

from .entries import Entry
from .errors import TransferError
from .failures import describe, retryable
from .events import Finished, Progress, Retrying, Started
from .limits import HostGates, RateLimiter
from .naming import PART_SUFFIX, Names, inside, server_name
from .redact import redact_text
from .results import DOWNLOADED, FAILED, SKIPPED, Result
from .retry import HOST_PAUSE_STATUSES, RETRY_STATUSES, RetryPolicy, parse_retry_after
from .session import Requester, SocketHandle
from .settings import Settings
from .state import Record

PROGRESS_INTERVAL = 0.1
# A body this small arrives in one read or two: announcing it to the main
# thread would cost more than it shows.
QUICK_BODY = 256 * 1024
_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)")
_UNSATISFIED_RANGE = re.compile(r"bytes\s+\*/(\d+)")


class Interrupted(Exception):
    """The run is being cancelled (Ctrl-C, SIGTERM)."""


class OutOfTime(Exception):
    """The file used up its ``--max-time``."""


@dataclass
class Job:
    """One entry to fetch, with what the main thread already knows of it."""

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
    verify_existing: bool = False
    """The target exists: keep it if it matches ``sha256=``."""


@dataclass
class Shared:
    """What every worker of one run shares."""

    settings: Settings
    root: Path
    names: Names
    policy: RetryPolicy
    gates: HostGates
    limiter: RateLimiter | None
    cancelled: threading.Event
    post: Callable[[object], None]


class Slot:
    """One worker's place: what the main thread may see and poke."""

    def __init__(self, number: int) -> None:
        self.number = number
        self.handle = SocketHandle()
        self.deadline: float | None = None


def file_sha256(path: Path, hasher=None):
    hasher = hasher or hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            hasher.update(block)
    return hasher


def _strong_validator(etag: str | None,
                      last_modified: str | None) -> tuple[str, str] | None:
    """What ``If-Range`` may carry, as (header, value): a strong ETag, else
    Last-Modified."""
    if etag and not etag.startswith("W/"):
        return "ETag", etag
    if last_modified:
        return "Last-Modified", last_modified
    return None


class Transfer:
    """Fetch one job, with retries, resume and verification."""

    def __init__(self, job: Job, shared: Shared, slot: Slot,
                 requester: Requester) -> None:
        self.job = job
        self.shared = shared
        self.settings = shared.settings
        self.slot = slot
        self.requester = requester
        self.relative = job.relative
        self.validator: tuple[str, str] | None = None  # for resuming within this run
        self.attempts = 0
        self.received = 0
        self.http_status: int | None = None
        self.record: Record | None = None
        self.drop_part = False
        self.had_part = job.part is not None
        self.asked_validator: tuple[str, str] | None = None  # the If-Range sent, by kind
        self.unreported = 0
        self.deadline: float | None = None

    # -- the job as a whole -------------------------------------------------

    def run(self) -> Finished:
        started = time.monotonic()
        if self.settings.max_time is not None:
            self.deadline = started + self.settings.max_time
        self.slot.deadline = self.deadline
        try:
            status, error = self._run()
        except Interrupted:
            status, error = FAILED, "interrupted"
        except OutOfTime:
            status, error = FAILED, f"took longer than --max-time {self.settings.max_time:g}s"
        finally:
            self.slot.deadline = None
            self.slot.handle.sock = None
        entry = self.job.entry
        if error is not None:
            error = redact_text(error, entry.url)
        path = self.shared.root / self.relative if self.relative and status != FAILED else None
        result = Result(url=entry.url, path=path,
                        status=status, bytes=self.received, attempts=self.attempts,
                        elapsed=time.monotonic() - started, http_status=self.http_status,
                        error=error)
        return Finished(self.slot.number, self.job.index, result, self.job.key,
                        self.record if status != FAILED else None, self.drop_part,
                        self.had_part, self.unreported)

    def _run(self) -> tuple[str, str | None]:
        if self.job.verify_existing and self._existing_matches():
            return SKIPPED, None
        shared = self.shared
        while True:
            self._check_cancel()
            shared.gates.wait(self.job.host, shared.cancelled, self.deadline)
            self._check_cancel()
            self.attempts += 1
            try:
                return self._attempt()
            except TransferError as exc:
                self._check_cancel()
                error = exc
            except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
                self._check_cancel()
                error = TransferError(describe(exc), retryable=retryable(exc))
            if not error.retryable or not shared.policy.allows(self.attempts):
                tries = f" (after {self.attempts} attempts)" if self.attempts > 1 else ""
                return FAILED, error.reason + tries
            delay = shared.policy.delay(self.attempts, error.retry_after)
            if error.retry_after is not None and error.http_status in HOST_PAUSE_STATUSES:
                shared.gates.pause(self.job.host, delay)
            if self.deadline is not None and time.monotonic() + delay > self.deadline:
                return FAILED, (f"{error.reason} (no retry: waiting {delay:.1f}s would "
                                f"pass --max-time {self.settings.max_time:g}s)")
            shared.post(Retrying(self.slot.number, self.job.index, self.job.entry.url,
                                 error.reason, delay))
            if shared.cancelled.wait(delay):
                raise Interrupted

    def _check_cancel(self) -> None:
        if self.shared.cancelled.is_set():
            raise Interrupted
        if self.deadline is not None and time.monotonic() >= self.deadline:
            raise OutOfTime

    def _existing_matches(self) -> bool:
        assert self.relative is not None
        try:
            digest = file_sha256(self.shared.root / self.relative).hexdigest()
        except OSError:
            return False
        return digest == self.job.entry.sha256

    # -- one attempt --------------------------------------------------------

    def _request_headers(self) -> tuple[dict[str, str], int, bool]:
        """Range / conditional headers for this attempt: (headers, offset, conditional)."""
        headers: dict[str, str] = {}
        self.asked_validator = None
        if self.relative is None:
            return headers, 0, False
        final = self.shared.root / self.relative
        part = _part_path(final)
        validator = self.validator
        part_record = self.job.part
        if validator is None and self.settings.resume and part_record is not None \
                and part_record.path == self.relative:
            validator = _strong_validator(part_record.etag, part_record.last_modified)
        if validator:
            try:
                offset = part.stat().st_size
            except OSError:
                offset = 0
            if offset:
                headers["Range"] = f"bytes={offset}-"
                headers["If-Range"] = validator[1]
                self.asked_validator = validator
                return headers, offset, False
        if self.settings.if_exists == "update" and final.is_file() and (
                self.job.entry.sha256 is None or self._existing_matches()):
            known = self.job.known if self.job.known and self.job.known.path == self.relative else None
            if known and known.etag:
                headers["If-None-Match"] = known.etag
            if known and known.last_modified:
                headers["If-Modified-Since"] = known.last_modified
            elif not known or not known.etag:
                headers["If-Modified-Since"] = formatdate(final.stat().st_mtime, usegmt=True)
            return headers, 0, True
        return headers, 0, False

    def _attempt(self) -> tuple[str, str | None]:
        settings = self.settings
        self.slot.handle.was_cut = False
        headers, offset, conditional = self._request_headers()
        read_timeout = settings.timeout
        if self.deadline is not None:
            read_timeout = max(0.001, min(read_timeout, self.deadline - time.monotonic()))
        response = self.requester.get(self.job.entry.url, headers,
                                      (settings.timeout, read_timeout))
        try:
            return self._handle(response, offset, conditional)
        finally:
            response.close()

    def _handle(self, response: requests.Response, offset: int,
                conditional: bool) -> tuple[str, str | None]:
        status = response.status_code
        self.http_status = status
        if status == 304 and conditional:
            self._record_existing(response)
            return SKIPPED, None
        if status == 416 and offset:
            return self._range_refused(response, offset)
        if status in RETRY_STATUSES:
            raise TransferError(f"HTTP {status} {response.reason}", retryable=True,
                                http_status=status,
                                retry_after=parse_retry_after(response.headers.get("Retry-After")))
        if not 200 <= status < 300:
            raise TransferError(f"HTTP {status} {response.reason}".strip(), http_status=status)

        if self.relative is None:
            name = server_name(self.job.entry.url, response.headers.get("Content-Disposition"))
            self.relative = self.shared.names.claim(name)
            final = self.shared.root / self.relative
            if self.settings.if_exists == "skip" and final.is_file() and (
                    self.job.entry.sha256 is None or self._existing_matches()):
                self._record_existing(response)
                return SKIPPED, None

        total = _int(response.headers.get("Content-Length"))
        if status == 206:
            match = _CONTENT_RANGE.match(response.headers.get("Content-Range", ""))
            asked = self.asked_validator
            # The same kind of validator as the one If-Range carried.
            current = response.headers.get(asked[0]) if asked else None
            if not match or int(match.group(1)) != offset or match.group(3) == "*" \
                    or int(match.group(2)) + 1 != int(match.group(3)) \
                    or (asked is not None and current is not None and current != asked[1]):
                # Not the rest of the file we asked for (or of another
                # version, from a server that ignores If-Range): forget the
                # .part and start over.
                self._discard_part()
                raise TransferError("server sent a different range than asked", retryable=True)
            total = int(match.group(3))
        else:
            offset = 0
        max_size = self.settings.max_size
        if max_size is not None and total is not None and total > max_size:
            raise TransferError(f"file is {total} bytes, larger than --max-size {max_size}")
        return self._receive(response, offset, total)

    def _range_refused(self, response: requests.Response, offset: int) -> tuple[str, str | None]:
        match = _UNSATISFIED_RANGE.match(response.headers.get("Content-Range", ""))
        if match and int(match.group(1)) == offset:
            # The .part already holds the whole file.
            return self._receive(response, offset, offset, body=False)
        self._discard_part()
        raise TransferError("server refused to resume (HTTP 416)", retryable=True, http_status=416)

    def _receive(self, response: requests.Response, offset: int, total: int | None,
                 body: bool = True) -> tuple[str, str | None]:
        shared = self.shared
        assert self.relative is not None
        final = shared.root / self.relative
        part = _part_path(final)
        self._make_folder(final.parent)
        etag = response.headers.get("ETag")
        last_modified = response.headers.get("Last-Modified")
        record = None
        if body:
            self.validator = _strong_validator(etag, last_modified)
            if offset == 0:
                record = Record(self.relative, etag, last_modified)
        start: Started | None = Started(self.slot.number, self.job.index, final.name, total,
                                        offset, self.job.key, record)
        if total is None or total - offset > QUICK_BODY:
            # Quick bodies are announced only if they turn out slow: a
            # .part of one is not worth resuming in a later run.
            self._announce(start)
            start = None

        self._check_cancel()  # a worker the run gave up on touches no file
        flags = os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC | getattr(os, "O_NOFOLLOW", 0)
        flags |= os.O_APPEND if offset else os.O_TRUNC
        hasher = hashlib.sha256()
        fd = os.open(part, flags, 0o644)
        try:
            if offset:
                file_sha256(part, hasher)
            size = offset
            if body:
                size = self._stream(response, fd, hasher, offset, total, start)
            os.fsync(fd)
        finally:
            os.close(fd)
        if total is not None and size != total:
            raise TransferError(f"connection closed after {size} of {total} bytes",
                                retryable=True)
        if total is None and self.slot.handle.was_cut:
            # With no length to check, a socket we shut down looks like the
            # end of the body: it is not.
            self._check_cancel()
            raise TransferError(f"transfer cut after {size} bytes", retryable=True)
        digest = hasher.hexdigest()
        expected = self.job.entry.sha256
        if expected is not None and digest != expected:
            self._discard_part()
            raise TransferError(f"sha256 mismatch: expected {expected}, got {digest}")
        _set_mtime(part, last_modified)
        os.replace(part, final)
        self.record = Record(self.relative, etag, last_modified, size, digest)
        return DOWNLOADED, None

    def _stream(self, response: requests.Response, fd: int, hasher, offset: int,
                total: int | None, start: Started | None) -> int:
        """Copy the body to ``fd``; ``start`` is posted if the body takes
        long enough to be worth showing."""
        shared, slot = self.shared, self.slot.number
        limiter, cancelled = shared.limiter, shared.cancelled
        max_size = self.settings.max_size
        chunk_size = self.settings.chunk_size
        if limiter is not None:
            chunk_size = max(1024, min(chunk_size, int(limiter.rate) // 10))
        read, write = response.raw.read1, os.write
        size = offset
        next_report = time.monotonic() + PROGRESS_INTERVAL
        try:
            while True:
                chunk = read(chunk_size, decode_content=False)
                if not chunk:
                    break
                n = len(chunk)
                written = write(fd, chunk)
                if written < n:  # a short write: rare, but possible
                    view = memoryview(chunk)
                    while written < n:
                        written += write(fd, view[written:])
                hasher.update(chunk)
                size += n
                self.received += n
                self.unreported += n
                if max_size is not None and size > max_size:
                    self._discard_part()
                    raise TransferError(f"file grew past --max-size {max_size} bytes")
                if limiter is not None:
                    limiter.consume(n, cancelled)
                if cancelled.is_set():
                    raise Interrupted
                now = time.monotonic()
                if now >= next_report:
                    if start is not None:
                        self._announce(start)
                        start = None
                    shared.post(Progress(slot, self.unreported))
                    self.unreported, next_report = 0, now + PROGRESS_INTERVAL
        except BaseException as exc:
            if start is not None and size > offset and not self.drop_part:
                # Cut short with bytes on disk (and not discarded, as past
                # --max-size): now the .part is worth recording, so that a
                # later run can resume it.
                self._announce(start)
            if not isinstance(exc, (urllib3.exceptions.HTTPError, OSError)):
                raise
            self._check_cancel()
            if isinstance(exc, urllib3.exceptions.ReadTimeoutError):
                reason = f"read timed out after {size} bytes"
            else:
                reason = f"connection lost after {size} bytes"
            if total is not None:
                reason = reason.replace(" bytes", f" of {total} bytes")
            raise TransferError(reason, retryable=True) from exc
        return size

    def _announce(self, start: Started) -> None:
        if start.record is not None:
            self.had_part = True
            self.drop_part = False  # a new .part, recorded anew
        self.shared.post(start)

    def _make_folder(self, folder: Path) -> None:
        """Create a target's sub-folder and make sure it is inside DEST.

        DEST itself was made and resolved when the run began; a sub-folder
        is checked for every file, as a symlink could replace it meanwhile.
        """
        if folder == self.shared.root:
            return
        # Checked before (a symlink on the way must not lead mkdir out of
        # DEST) and after (one could appear meanwhile).
        for _ in range(2):
            if not inside(self.shared.root, folder):
                raise TransferError(f"{folder} is outside DEST (through a symlink?)")
            folder.mkdir(parents=True, exist_ok=True)

    def _discard_part(self) -> None:
        self.validator = None
        self.drop_part = True
        if self.relative is not None:
            try:
                _part_path(self.shared.root / self.relative).unlink()
            except OSError:
                pass

    def _record_existing(self, response: requests.Response) -> None:
        """The file at the target is kept: remember it for the next run."""
        assert self.relative is not None
        final = self.shared.root / self.relative
        known = self.job.known
        try:
            size = final.stat().st_size
        except OSError:
            return
        self.record = Record(self.relative,
                             response.headers.get("ETag") or (known.etag if known else None),
                             response.headers.get("Last-Modified")
                             or (known.last_modified if known else None),
                             size, known.sha256 if known else None)


def _part_path(final: Path) -> Path:
    return final.with_name(final.name + PART_SUFFIX)


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _set_mtime(path: Path, last_modified: str | None) -> None:
    if not last_modified:
        return
    try:
        when = parsedate_to_datetime(last_modified).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return
    try:
        os.utime(path, (when, when))
    except OSError:
        pass

