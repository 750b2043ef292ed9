"""One URL to one verified file: attempts, retries, mirrors, the reply.

Nothing here knows about threads or queues; a ``Transfer`` runs in
whichever worker picked the job, reports through ``post`` and returns a
``Finished`` that says what the state database should record. The body
of a reply is ``receive.Receiving``'s part.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import requests
import urllib3

from .checksums import Checksums, file_checksums, mismatch
from .errors import TransferError
from .events import Finished, Retrying
from .failures import describe, retryable
from .limits import origin
from .mirrors import GIVE_UP, NEXT, Mirrors
from .naming import server_name
from .partfile import DiskError, PartFile
from .plan import Job, expected_checksums
from .redact import redact_text, redact_url
from .results import DOWNLOADED, FAILED, SKIPPED, Result
from .headers import MAX_LENGTH, parse_content_length, parse_content_range, parse_unsatisfied_range
from .resume import (Validator, conditional_headers, range_headers, rest_of_file,
                     same_version, strong_validator)
from .retry import HOST_PAUSE_STATUSES, RETRY_STATUSES, parse_retry_after
from .session import Requester
from .state import Landed, Record, StateChange
from .receive import Receiving
from . import split
from .shared import Interrupted, OutOfTime, Shared, Slot

@dataclass
class _Ask:
    """What one attempt asks the server for."""

    headers: dict[str, str] = field(default_factory=dict)
    offset: int = 0
    """Bytes of the ``.part`` that a 206 would extend."""
    validator: Validator | None = None
    """The validator ``If-Range`` carried."""
    conditional: bool = False
    """An ``--if-exists update`` request: a 304 keeps our file."""
    strict: bool = False
    """The ``.part`` may come from another mirror: a 206 must carry the
    very validator ``If-Range`` sent, not merely none that contradicts it."""


class Transfer(Receiving):
    """Fetch one job, with retries, mirrors, resume and verification."""

    def __init__(self, job: Job, shared: Shared, slot: Slot, requester: Requester) -> None:
        self.job = job
        self.shared = shared
        self.settings = shared.settings
        self.slot = slot
        self.requester = requester
        self.relative = job.relative
        self.url = job.entry.url  # the URL (or mirror) being asked
        self.mirror: str | None = None  # the URL that delivered the file
        self.validator: Validator | None = None  # of the .part this run began
        self.part_from: str | None = None  # the URL whose reply began that .part
        self.sha256: str | None = None  # of the file at the target, once read whole
        self.attempts = 0
        self.received = 0
        self.unreported = 0
        self.http_status: int | None = None
        self.change: StateChange | None = None
        self.stop_run: str | None = None
        self.deadline: float | None = None

    # -- the job as a whole -------------------------------------------------

    def run(self) -> Finished:
        started = time.monotonic()
        if self.settings.max_time is not None:
            self.deadline = started + self.settings.max_time
        self.slot.handle.begin(self.deadline)
        try:
            status, error = self._run()
        except Interrupted:
            status, error = FAILED, self.shared.cancelled.reason
        except OutOfTime:
            status, error = FAILED, f"took longer than --max-time {self.settings.max_time:g}s"
        except Exception as exc:  # a bug of ours: still a result, with what we know
            status, error = FAILED, f"internal error: {describe(exc)}"
        finally:
            self.slot.handle.end()
        entry = self.job.entry
        if error is not None:
            for url in entry.urls:
                error = redact_text(error, url)
        path = self.shared.root / self.relative if self.relative and status != FAILED else None
        result = Result(url=entry.url, path=path, status=status, bytes=self.received,
                        attempts=self.attempts, elapsed=time.monotonic() - started,
                        http_status=self.http_status, error=error,
                        mirror=self.mirror if status == DOWNLOADED else None,
                        sha256=self.sha256 if path is not None else None)
        return Finished(self.slot.number, self.job.index, result, self.job.key,
                        self.change, self.unreported, self.stop_run)

    def _run(self) -> tuple[str, str | None]:
        if self.job.verify_existing and self._existing_matches():
            return SKIPPED, None
        shared = self.shared
        mirrors = Mirrors(self.job.entry.urls)
        while True:
            self.url = mirrors.current
            host = origin(self.url)
            self._check_cancel()
            shared.gates.wait(host, shared.cancelled, self.deadline)
            self._check_cancel()
            self.attempts += 1
            try:
                outcome = self._attempt()
                if outcome[0] == DOWNLOADED:
                    self.mirror = self.url
                return outcome
            except DiskError as exc:  # no retry: the network is not at fault
                # Every other file would fail the same way: stop them now,
                # before another worker takes its next job (and say so once).
                if exc.stops_run and shared.cancelled.stop(
                        f"not downloaded: the run stopped: {exc.reason}"):
                    self.stop_run = exc.reason
                return FAILED, exc.reason
            except TransferError as exc:
                self._check_cancel()
                error = exc
            except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
                self._check_cancel()
                error = TransferError(describe(exc), retryable=retryable(exc))
            except (ValueError, UnicodeError) as exc:  # a reply we cannot parse
                self._check_cancel()
                error = TransferError(f"invalid HTTP response: {describe(exc)}")
            step = mirrors.failed(error, shared.policy)
            if step == GIVE_UP:
                return FAILED, mirrors.reason(error, self.attempts)
            delay = shared.policy.delay(mirrors.round, error.retry_after)
            if error.retry_after is not None and error.http_status in HOST_PAUSE_STATUSES:
                shared.gates.pause(host, delay)
            if step == NEXT:  # the next mirror, at once
                shared.post(Retrying(mirrors.current, f"{redact_url(self.url)}: {error.reason}",
                                     0.0))
                continue
            if self.deadline is not None and time.monotonic() + delay > self.deadline:
                return FAILED, (f"{error.reason} (no retry: waiting {delay:.1f}s would "
                                f"pass --max-time {self.settings.max_time:g}s)")
            shared.post(Retrying(self.job.entry.url, error.reason, delay))
            if shared.cancelled.wait(delay):
                raise Interrupted
            mirrors.new_round()

    def _check_cancel(self) -> None:
        if self.shared.cancelled.is_set():
            raise Interrupted
        if self.deadline is not None and time.monotonic() >= self.deadline:
            raise OutOfTime

    def _expected(self) -> Checksums:
        assert self.relative is not None
        return expected_checksums(self.job.entry, self.settings, self.shared.root,
                                  self.relative)

    def _existing_matches(self) -> bool:
        """The file at the target has every checksum it should have."""
        assert self.relative is not None
        expected = self._expected()
        try:
            actual = file_checksums(self.shared.root / self.relative, expected)
        except OSError:
            return False
        if mismatch(expected, actual) is not None:
            return False
        self.sha256 = actual["sha256"]
        return True

    # -- one attempt --------------------------------------------------------

    def _ask(self) -> _Ask:
        """Resume the ``.part`` if its server-given validator is known, or
        ask conditionally for ``--if-exists update``."""
        if self.relative is None:
            return _Ask()
        final = self.shared.root / self.relative
        validator = self.validator
        earlier = self.job.part
        if validator is None and self.settings.resume and earlier is not None \
                and earlier.path == self.relative:
            validator = strong_validator(earlier.etag, earlier.last_modified)
        if validator:
            offset = PartFile(final, self.shared.root).existing_size()
            if offset:
                # Mirrors rarely share validators: one that began the .part
                # elsewhere must be the one this reply carries.
                strict = bool(self.job.entry.mirrors) and self.part_from != self.url
                return _Ask(range_headers(validator, offset), offset, validator,
                            strict=strict)
        if self.settings.if_exists == "update" and final.is_file() and (
                not self._expected() or self._existing_matches()):
            known = self.job.known
            if known is not None and known.path != self.relative:
                known = None
            return _Ask(conditional_headers(known, final.stat().st_mtime), conditional=True)
        return _Ask()

    def _attempt(self) -> tuple[str, str | None]:
        settings = self.settings
        if self.job.split is not None:  # an earlier attempt or run fetched it in ranges
            resumed = split.resume(self, self.requester)
            if resumed is not None:
                return resumed
        ask = self._ask()
        read_timeout = settings.timeout
        if self.deadline is not None:
            read_timeout = max(0.001, min(read_timeout, self.deadline - time.monotonic()))
        response = self.requester.get(self.url, ask.headers,
                                      (settings.timeout, read_timeout))
        try:
            return self._handle(response, ask)
        except split.RangesRefused:  # the job now says: one stream
            pass
        finally:
            response.close()
        return self._attempt()

    def _handle(self, response: requests.Response, ask: _Ask) -> tuple[str, str | None]:
        status = response.status_code
        self.http_status = status
        headers = response.headers
        if status == 304 and ask.conditional:
            self._keep_existing(response)
            return SKIPPED, None
        if status == 416 and ask.offset:
            if parse_unsatisfied_range(headers.get("Content-Range")) == ask.offset \
                    and same_version(ask.validator, headers, ask.strict):
                # The .part already holds the whole file.
                return self._receive(response, ask.offset, ask.offset, body=False,
                                     begun_with=ask.validator)
            assert self.relative is not None  # a .part was being extended
            self._discard(PartFile(self.shared.root / self.relative, self.shared.root))
            raise TransferError("server refused to resume (HTTP 416)", retryable=True,
                                http_status=416)
        if status in RETRY_STATUSES:
            raise TransferError(f"HTTP {status} {response.reason}", retryable=True,
                                http_status=status,
                                retry_after=parse_retry_after(headers.get("Retry-After")))
        if not 200 <= status < 300:
            raise TransferError(f"HTTP {status} {response.reason}".strip(), http_status=status)

        if self.relative is None:
            name = server_name(self.job.entry.url, headers.get("Content-Disposition"))
            self.relative = self.shared.names.claim(name, self.job.key)
            final = self.shared.root / self.relative
            if self.settings.if_exists == "skip" and final.is_file() and (
                    not self._expected() or self._existing_matches()):
                self._keep_existing(response)
                return SKIPPED, None

        total = parse_content_length(headers.get("Content-Length"),
                                     transfer_encoding=headers.get("Transfer-Encoding"))
        framed = getattr(response.raw, "length_remaining", None)
        if total is None and isinstance(framed, int) and 0 <= framed <= MAX_LENGTH:
            # Refused by our parser ("+5", "1_000") but read as a length by
            # http.client, which stops the body there: a cut must show.
            total = framed
        # A length we do not believe: the body ends with the connection. One
        # we do: a body that ends early is cut (urllib3 1.26 defaults off).
        response.raw.enforce_content_length = total is not None
        offset = 0
        if status == 206:
            part = PartFile(self.shared.root / self.relative, self.shared.root)
            content_range = parse_content_range(headers.get("Content-Range"))
            if content_range is None:
                self._discard(part)
                raise TransferError("invalid HTTP response: bad Content-Range")
            total = rest_of_file(content_range, ask.offset)
            if total is None or not same_version(ask.validator, headers, ask.strict):
                # Not the rest of the file we asked for (or of another
                # version, from a server that ignores If-Range): forget the
                # .part and start over.
                self._discard(part)
                raise TransferError("server sent a different range than asked", retryable=True)
            offset = ask.offset
        max_size = self.settings.max_size
        if max_size is not None and total is not None and total > max_size:
            raise TransferError(f"file is {total} bytes, larger than --max-size {max_size}")
        if status == 200 and total is not None:
            outcome = split.begin(self, self.requester, response, total)
            if outcome is not None:
                return outcome
        return self._receive(response, offset, total)

    # -- the body -----------------------------------------------------------

    def _keep_existing(self, response: requests.Response) -> None:
        """The file at the target is kept: remember it for the next run."""
        assert self.relative is not None
        final = self.shared.root / self.relative
        known = self.job.known
        try:
            size = final.stat().st_size
        except OSError:
            return
        self.change = Landed(Record(
            self.relative,
            response.headers.get("ETag") or (known.etag if known else None),
            response.headers.get("Last-Modified") or (known.last_modified if known else None),
            size, known.sha256 if known else None))
