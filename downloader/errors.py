"""The package's exceptions: one base, so callers can catch them all."""
from __future__ import annotations


class DownloaderError(Exception):
    """Base of every exception this package raises on purpose."""


class DestinationError(DownloaderError, OSError):
    """DEST cannot be created or written to."""


class DestinationLocked(DownloaderError):
    """Another run holds DEST."""


class TransferError(DownloaderError):
    """One attempt at one URL failed; ``retryable`` says whether to try again.

    Never escapes the pool: it becomes a failed ``Result``.
    """

    def __init__(self, reason: str, *, retryable: bool = False,
                 http_status: int | None = None,
                 retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable
        self.http_status = http_status
        self.retry_after = retry_after
