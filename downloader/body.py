"""Reading a response body as it arrives, with any urllib3 that requests
accepts.

A download loop wants ``io.BufferedReader.read1`` semantics: each read
returns what has arrived (at most the size asked) without waiting to fill
it, so progress, ``--limit-rate`` and timeouts work on slow bodies.
urllib3 has that as ``HTTPResponse.read1`` from 2.2 on; before, its
``read(size)`` waits for ``size`` bytes.
"""
from __future__ import annotations

import functools
import http.client
import socket
import ssl
from collections.abc import Callable
from typing import Any

from urllib3.exceptions import IncompleteRead, ProtocolError, ReadTimeoutError, SSLError
from urllib3.response import HTTPResponse


def body_reader(raw: HTTPResponse) -> Callable[[int], bytes]:
    """A ``read(size)`` for the body of ``raw`` as sent (not decoded).

    Each call returns between 1 and ``size`` bytes as soon as any have
    arrived, and ``b""`` at the end of the body. Failures are urllib3's:
    ``ReadTimeoutError`` for a read timeout, ``ProtocolError`` for a
    broken connection, broken chunked framing, or a body shorter than its
    Content-Length.
    """
    read1 = getattr(raw, "read1", None)
    if read1 is not None:  # urllib3 >= 2.2
        return functools.partial(read1, decode_content=False)
    return _http_client_reader(raw)


def _http_client_reader(raw: HTTPResponse) -> Callable[[int], bytes]:
    """``read1`` for urllib3 1.21 to 2.1, done as urllib3 2.2 does it.

    ``raw._fp`` is private, but it is the file urllib3 reads every body
    from, in all of these releases: the ``http.client.HTTPResponse``
    (whose ``read1`` handles Content-Length, chunked and close-delimited
    bodies alike), or the stand-in a mocking library gives. urllib3 2.2's
    own ``read1`` calls ``self._fp.read1``. These releases are final, so
    the attribute cannot move under us; newer ones never come here.
    """
    fp: Any = raw._fp
    if fp is None:  # no body at all
        return lambda size: b""
    # urllib3 counts down length_remaining in its own reads only.
    # A length the caller does not trust (enforce_content_length off) is
    # not held against a body that ends early, as urllib3 2.2 does.
    expected: int | None = raw.length_remaining if raw.enforce_content_length else None
    received = 0

    def read(size: int) -> bytes:
        nonlocal received
        # The translation urllib3's own reads do (its _error_catcher), so
        # that callers see one family of errors whichever path ran.
        try:
            data: bytes = fp.read1(size)
        except socket.timeout as exc:  # an OSError: before the next clause
            raise ReadTimeoutError(None, None, "Read timed out.") from exc  # type: ignore[arg-type]
        except ssl.SSLError as exc:
            if "read operation timed out" in str(exc):
                raise ReadTimeoutError(None, None, "Read timed out.") from exc  # type: ignore[arg-type]
            raise SSLError(exc) from exc
        except (http.client.HTTPException, OSError) as exc:
            raise ProtocolError(f"Connection broken: {exc!r}", exc) from exc
        if data:
            received += len(data)
            return data
        fp.close()
        if expected is not None and received < expected:
            # What urllib3 2 does (enforce_content_length): a cut body is
            # an error, not an early end.
            cut = IncompleteRead(received, expected - received)
            raise ProtocolError(f"Connection broken: {cut!r}", cut)
        # The body is over: hand the connection back for the next request,
        # as urllib3 does. http.client's read1 (before Python 3.13) leaves
        # its response open at the end of a sized body, and http.client
        # sends nothing more on a connection whose response is open: hence
        # the close above. A connection the peer closed is noticed and
        # replaced by the pool.
        raw.release_conn()
        return data

    return read
