"""Reading a response body into the caller's buffer, with any urllib3 that
requests accepts.

The bytes go straight from the socket's buffer into one buffer the
transfer reuses: no new ``bytes`` object per chunk, and over TLS the loop
that gathers many 16 KiB records into one chunk runs in C. Measured
(bench/bytepath.py): urllib3 2's ``read1(1 MiB)`` over TLS returns one
record per call but pays for a 1 MiB object each time; the reuse reader
takes a third of its CPU per GiB.

A read fills the buffer unless the body ends first, so a slow body gets
small buffers: ``next_size`` sizes each read from how long the last took.
"""
from __future__ import annotations

import http.client
import socket
import ssl
from typing import Any, Protocol

from urllib3.exceptions import IncompleteRead, ProtocolError, ReadTimeoutError, SSLError
from urllib3.response import HTTPResponse

# The first read of a body, and the smallest: a slow server's first bytes
# reach the disk (and the display) without waiting for a big buffer to fill.
FIRST_SIZE = 16 * 1024


class BodyReader(Protocol):
    def readinto(self, buffer: memoryview) -> int:
        """Fill ``buffer`` with the next bytes of the body, as sent (not
        decoded); fewer only at its end; 0 once it is over. Failures are
        urllib3's: ``ReadTimeoutError`` for a read timeout,
        ``ProtocolError`` for a broken connection, broken chunked framing,
        or a body shorter than its (enforced) Content-Length."""
        ...


def next_size(size: int, seconds: float, interval: float, largest: int) -> int:
    """The size of the next read, after one of ``size`` bytes took
    ``seconds``: about ``interval`` or less per read, never more than
    ``largest`` nor less than FIRST_SIZE (or ``largest``, if smaller)."""
    if seconds > interval:
        return max(min(FIRST_SIZE, largest), size // 2)
    if seconds < interval / 4:
        return min(largest, size * 2)
    return size


def body_reader(raw: HTTPResponse) -> BodyReader:
    """A reader of the body of ``raw``, a response nothing has read from."""
    fp: Any = getattr(raw, "_fp", None)
    if fp is None or not hasattr(fp, "readinto"):
        return _Copying(raw)
    return _Direct(raw, fp)


class _Copying:
    """For a response without the usual file underneath (never seen with
    requests): urllib3's own reads, copied."""

    def __init__(self, raw: HTTPResponse) -> None:
        self._raw = raw

    def readinto(self, buffer: memoryview) -> int:
        data = self._raw.read(len(buffer), decode_content=False)
        buffer[:len(data)] = data
        return len(data)


class _Direct:
    """Reads from the file urllib3 reads every body from.

    ``raw._fp`` is private, but in every urllib3 from 1.21 to 2.x it is the
    ``http.client.HTTPResponse`` (whose ``readinto`` handles Content-Length,
    chunked and close-delimited bodies alike), or the stand-in a mocking
    library gives; urllib3's own reads go through it, and nothing has read
    from it yet when requests hands over a streamed response. The suite
    runs on the oldest urllib3 and the newest (.ci/run), through this path.
    """

    def __init__(self, raw: HTTPResponse, fp: Any) -> None:
        self._raw = raw
        self._fp = fp
        # urllib3 counts down length_remaining in its own reads only.
        # A length the caller does not trust (enforce_content_length off)
        # is not held against a body that ends early, as urllib3 2 does.
        self._expected: int | None = \
            raw.length_remaining if raw.enforce_content_length else None
        self._received = 0
        self._over = False

    def readinto(self, buffer: memoryview) -> int:
        if self._over:
            return 0
        # The translation urllib3's own reads do (its _error_catcher), so
        # that callers see one family of errors whichever urllib3 runs.
        try:
            n: int = self._fp.readinto(buffer)
        except socket.timeout as exc:  # an OSError: before the next clause
            raise ReadTimeoutError(None, None, "Read timed out.") from exc  # type: ignore[arg-type]
        except ssl.SSLError as exc:
            if "read operation timed out" in str(exc):
                raise ReadTimeoutError(None, None, "Read timed out.") from exc  # type: ignore[arg-type]
            raise SSLError(exc) from exc
        except (http.client.HTTPException, OSError) as exc:
            raise ProtocolError(f"Connection broken: {exc!r}", exc) from exc
        if n:
            self._received += n
            return n
        self._end()
        return 0

    def _end(self) -> None:
        self._over = True
        self._fp.close()
        expected, received = self._expected, self._received
        if expected is not None and received < expected:
            # What urllib3 2 does (enforce_content_length): a cut body is
            # an error, not an early end.
            cut = IncompleteRead(received, expected - received)
            raise ProtocolError(f"Connection broken: {cut!r}", cut)
        # The body is over: hand the connection back for the next request,
        # as urllib3 does. http.client leaves its response open at the end
        # of a sized body (before Python 3.13), and sends nothing more on a
        # connection whose response is open: hence the close above. A
        # connection the peer closed is noticed and replaced by the pool.
        self._raw.release_conn()
