"""Which URL of an entry to ask next: the URL, then its mirrors, in turn.

A round gives one attempt to each URL still standing. A failure that
another attempt could mend (a refused connection, a 5xx, a stall) moves on
to the next URL at once; one that it could not (a 404, a checksum
mismatch) also stands that URL down for the rest of the job. Between
rounds the retry policy's backoff is waited, and ``--retries N`` allows N
rounds after the first, so an entry with one URL is retried exactly as
before, and one with mirrors makes at most (N + 1) × URLs attempts.
"""
from __future__ import annotations

from collections.abc import Sequence

from .errors import TransferError
from .redact import redact_url
from .retry import RetryPolicy

NEXT, NEW_ROUND, GIVE_UP = "next", "new round", "give up"


class Mirrors:
    """The rotation through one entry's URLs (pure: no I/O, no clock)."""

    def __init__(self, urls: Sequence[str]) -> None:
        self.urls = tuple(urls)
        self.round = 1
        self._standing = list(self.urls)
        self._position = 0
        self._reasons: dict[str, str] = {}  # each URL's last failure

    @property
    def current(self) -> str:
        return self._standing[self._position]

    def failed(self, error: TransferError, policy: RetryPolicy) -> str:
        """The current URL failed with ``error``: ``NEXT`` (ask the next URL
        now), ``NEW_ROUND`` (wait, then call ``new_round``) or ``GIVE_UP``."""
        self._reasons[self.current] = error.reason
        if error.retryable:
            self._position += 1
        else:
            del self._standing[self._position]
        if self._position < len(self._standing):
            return NEXT
        if not self._standing or not policy.allows(self.round):
            return GIVE_UP
        return NEW_ROUND

    def new_round(self) -> None:
        self.round += 1
        self._position = 0

    def reason(self, error: TransferError, attempts: int) -> str:
        """Why the entry failed: the last error, or with mirrors, each URL's."""
        tries = f" (after {attempts} attempts)" if attempts > 1 else ""
        if len(self.urls) == 1:
            return error.reason + tries
        each = "; ".join(f"{redact_url(url)}: {self._reasons[url]}"
                         for url in self.urls if url in self._reasons)
        return f"every mirror failed: {each}{tries}"
