"""Turning requests, urllib3 and OS exceptions into one-line reasons, and
telling which of them are worth another attempt."""
from __future__ import annotations

import http.client
import re
from collections.abc import Iterator

import requests
import urllib3

from .session import InvalidRedirect

INVALID = "invalid HTTP response: "
_TOO_MANY_HEADERS = re.compile(r"got more than (\d+) headers")
_LINE_TOO_LONG = re.compile(r"when reading (.+)")
# How http.client reports a chunk-size line it cannot read; the line itself
# is quoted, empty when the connection ended there.
_BAD_CHUNK_SIZE = re.compile(r"invalid literal for int\(\) with base 16: b(['\"])(.+)\1")
# C0, DEL and C1: a server's text must not drive the terminal.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def describe(exc: BaseException) -> str:
    """A one-line reason for a requests/urllib3/OS exception."""
    invalid = invalid_response(exc)
    if invalid is not None:
        return invalid
    if isinstance(exc, InvalidRedirect):
        return str(exc)
    if isinstance(exc, requests.exceptions.SSLError):
        text = str(exc)
        match = re.search(r"certificate verify failed: ([^()'\"]+)", text)
        if match:
            return f"TLS certificate verify failed: {match.group(1).strip()}"
        return "TLS error: " + _innermost(exc)
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return "connect timed out"
    if isinstance(exc, (requests.exceptions.ReadTimeout, urllib3.exceptions.ReadTimeoutError)):
        return "read timed out"
    if isinstance(exc, requests.exceptions.TooManyRedirects):
        return "too many redirects"
    if isinstance(exc, requests.exceptions.ProxyError):
        return f"connection to the proxy failed: {_innermost(exc)}"
    if isinstance(exc, requests.exceptions.ConnectionError):
        inner = _innermost(exc)
        if "NameResolution" in repr(exc) or "getaddrinfo" in inner or "Name or service" in inner:
            return "cannot resolve host"
        return f"connection failed: {inner}"
    return _innermost(exc)


def invalid_response(exc: BaseException) -> str | None:
    """The reason, beginning ``invalid HTTP response:``, when ``exc`` shows
    that the server's reply is not HTTP (in its head or in the framing of
    its body); None for anything else, such as a connection that ended.

    Such a reply is not retried: a server that sent garbage once will
    send it again, and a network does not garble bytes TCP delivers.
    """
    for link in _chain(exc):
        if isinstance(link, http.client.RemoteDisconnected):
            return None  # closed before replying: a dropped connection
        if isinstance(link, http.client.LineTooLong):
            match = _LINE_TOO_LONG.search(str(link))
            what = match.group(1) if match else "line"
            return f"{INVALID}{what if what.endswith('line') else what + ' line'} too long"
        if isinstance(link, http.client.BadStatusLine):
            return INVALID + "bad status line"
        if isinstance(link, http.client.UnknownProtocol):
            return INVALID + "unsupported HTTP version"
        if isinstance(link, urllib3.exceptions.InvalidChunkLength):
            return INVALID + "bad chunk size" if link.length else None
        if isinstance(link, urllib3.exceptions.InvalidHeader):
            if "content-length" in str(link).lower():
                return INVALID + "conflicting Content-Length values"
            return INVALID + "bad header"
        text = str(link)
        if isinstance(link, urllib3.exceptions.ProtocolError) and "chunk size line" in text:
            return INVALID + "chunk size line too long"
        if isinstance(link, ValueError) and _BAD_CHUNK_SIZE.fullmatch(text):
            return INVALID + "bad chunk size"
        if type(link) is http.client.HTTPException:
            match = _TOO_MANY_HEADERS.fullmatch(text)
            if match:
                return f"{INVALID}more than {match.group(1)} header lines"
    return None


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and what it wraps, outermost first: its cause or (unless
    suppressed) context, else an exception it carries as last argument
    (requests) or as ``reason`` (urllib3)."""
    seen = set()
    link: BaseException | None = exc
    while link is not None and id(link) not in seen:
        seen.add(id(link))
        yield link
        nested = link.__cause__
        if nested is None and not link.__suppress_context__:
            nested = link.__context__
        if nested is None and link.args and isinstance(link.args[-1], BaseException):
            nested = link.args[-1]
        reason = getattr(link, "reason", None)
        if nested is None and isinstance(reason, BaseException):
            nested = reason
        link = nested


def _innermost(exc: BaseException) -> str:
    for link in _chain(exc):
        if isinstance(link, OSError) and link.strerror:
            return link.strerror.lower()
        exc = link
    lines = str(exc).splitlines()
    text = lines[0] if lines else type(exc).__name__
    text = re.sub(r"<[^>]*object at 0x[0-9a-f]+>:?\s*", "", text).strip()
    return _CONTROL.sub("?", text)


def retryable(exc: BaseException) -> bool:
    """Connection errors and timeouts are; TLS, redirect loops, bad URLs
    and replies that are not HTTP are not."""
    if isinstance(exc, (requests.exceptions.SSLError, requests.exceptions.TooManyRedirects,
                        requests.exceptions.InvalidURL, requests.exceptions.InvalidHeader,
                        requests.exceptions.MissingSchema, requests.exceptions.InvalidSchema)):
        return False
    if invalid_response(exc) is not None:
        return False
    if isinstance(exc, (requests.exceptions.ConnectionError, requests.exceptions.Timeout,
                        urllib3.exceptions.HTTPError)):
        return True
    return False
