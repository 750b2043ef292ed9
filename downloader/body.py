"""Reading a response body into the caller's buffer, with any urllib3 that
requests accepts.

The bytes go straight from the socket's buffer into one buffer the
transfer reuses: no new ``bytes`` object per chunk, and over TLS the loop
that gathers many 16 KiB records into one chunk runs in C. Measured
(bench/bytepath.py): urllib3 2's ``read1(1 MiB)`` over TLS returns one
record per call but pays for a 1 MiB object each time; filling a reused
256 KiB buffer takes a third less CPU per GiB.

A filling read waits for its whole buffer, which a slow body must not make
the display (or the disk) wait for: ``readinto1`` returns what has arrived,
and ``next_size`` picks the next read, filling and growing only while the
body comes faster than it is read.
"""
from __future__ import annotations

import http.client
import socket
import ssl
import threading
from collections.abc import Callable
from typing import Any, Protocol

from urllib3.exceptions import IncompleteRead, ProtocolError, ReadTimeoutError, SSLError
from urllib3.response import HTTPResponse

# The first read of a body, and the smallest: a slow server's first bytes
# reach the disk (and the display) without waiting for a big buffer to fill.
FIRST_SIZE = 16 * 1024


class BodyReader(Protocol):
    """Reads the body as sent (not decoded). Failures are urllib3's:
    ``ReadTimeoutError`` for a read timeout, ``ProtocolError`` for a broken
    connection, broken chunked framing, or a body shorter than its
    (enforced) Content-Length."""

    def readinto(self, buffer: memoryview) -> int:
        """Fill ``buffer`` with the next bytes; fewer only at the end of the
        body; 0 once it is over."""
        ...

    def readinto1(self, buffer: memoryview) -> int:
        """Put what has arrived (at least a byte, at most ``len(buffer)``)
        into ``buffer``; 0 once the body is over."""
        ...


def next_size(size: int, filled: bool, seconds: float, interval: float, largest: int) -> int:
    """The size of the next read, after one of ``size`` bytes (``filled``:
    it got them all) took ``seconds``. A read of FIRST_SIZE (or of
    ``largest``, if smaller) is a ``readinto1``; a larger one fills.

    Doubled, up to ``largest``, while reads fill fast; back to the first
    size as soon as one takes longer than ``interval``."""
    first = min(FIRST_SIZE, largest)
    if seconds > interval:
        return first
    if filled and seconds < interval / 4:
        return min(largest, size * 2)
    return size


_local = threading.local()


def thread_buffer(size: int) -> memoryview:
    """A buffer of at least ``size`` bytes, this thread's own: made once
    per worker, not once per file (a small file would pay more for a
    fresh 256 KiB than for its body)."""
    buffer: bytearray | None = getattr(_local, "buffer", None)
    if buffer is None or len(buffer) < size:
        buffer = _local.buffer = bytearray(size)
    return memoryview(buffer)[:size]


def body_reader(raw: HTTPResponse) -> BodyReader:
    """A reader of the body of ``raw``, a response nothing has read from."""
    fp: Any = getattr(raw, "_fp", None)
    if fp is None or not (hasattr(fp, "readinto") and hasattr(fp, "read1")):
        return _Copying(raw)
    return _Direct(raw, fp)


class _Copying:
    """For a response without the usual file underneath (never seen with
    requests): urllib3's own reads, copied."""

    def __init__(self, raw: HTTPResponse) -> None:
        self._raw = raw

    def readinto(self, buffer: memoryview) -> int:
        return self._copy(self._raw.read(len(buffer), decode_content=False), buffer)

    def readinto1(self, buffer: memoryview) -> int:
        read1 = getattr(self._raw, "read1", None)  # urllib3 >= 2.2
        if read1 is None:
            return self.readinto(buffer)
        return self._copy(read1(len(buffer), decode_content=False), buffer)

    @staticmethod
    def _copy(data: bytes, buffer: memoryview) -> int:
        buffer[:len(data)] = data
        return len(data)


class _Direct:
    """Reads from the file urllib3 reads every body from.

    ``raw._fp`` is private, but in every urllib3 from 1.21 to 2.x it is the
    ``http.client.HTTPResponse`` (whose ``readinto`` and ``read1`` handle
    Content-Length, chunked and close-delimited bodies alike), or the stand-in a mocking
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
        return self._counted(self._read(self._fp.readinto, buffer))

    def readinto1(self, buffer: memoryview) -> int:
        if self._over:
            return 0
        data: bytes = self._read(self._fp.read1, len(buffer))
        buffer[:len(data)] = data
        return self._counted(len(data))

    @staticmethod
    def _read(read: Callable[[Any], Any], argument: Any) -> Any:
        # The translation urllib3's own reads do (its _error_catcher), so
        # that callers see one family of errors whichever urllib3 runs.
        try:
            return read(argument)
        except socket.timeout as exc:  # an OSError: before the next clause
            raise ReadTimeoutError(None, None, "Read timed out.") from exc  # type: ignore[arg-type]
        except ssl.SSLError as exc:
            if "read operation timed out" in str(exc):
                raise ReadTimeoutError(None, None, "Read timed out.") from exc  # type: ignore[arg-type]
            raise SSLError(exc) from exc
        except (http.client.HTTPException, OSError) as exc:
            raise ProtocolError(f"Connection broken: {exc!r}", exc) from exc

    def _counted(self, n: int) -> int:
        if n:
            self._received += n
        else:
            self._end()
        return n

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
