"""Turning requests, urllib3 and OS exceptions into one-line reasons, and
telling which of them are worth another attempt."""
from __future__ import annotations

import re

import requests
import urllib3


def describe(exc: BaseException) -> str:
    """A one-line reason for a requests/urllib3/OS exception."""
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
    if isinstance(exc, requests.exceptions.ConnectionError):
        inner = _innermost(exc)
        if "NameResolution" in repr(exc) or "getaddrinfo" in inner or "Name or service" in inner:
            return "cannot resolve host"
        return f"connection failed: {inner}"
    return _innermost(exc)


def _innermost(exc: BaseException) -> str:
    seen = set()
    while id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.strerror:
            return exc.strerror.lower()
        nested = exc.__cause__ or exc.__context__
        if nested is None and exc.args and isinstance(exc.args[-1], BaseException):
            nested = exc.args[-1]
        reason = getattr(exc, "reason", None)
        if nested is None and isinstance(reason, BaseException):
            nested = reason
        if nested is None:
            break
        exc = nested
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return re.sub(r"<[^>]*object at 0x[0-9a-f]+>:?\s*", "", text).strip()


def retryable(exc: BaseException) -> bool:
    """Connection errors and timeouts are; TLS, redirect loops and bad URLs are not."""
    if isinstance(exc, (requests.exceptions.SSLError, requests.exceptions.TooManyRedirects,
                        requests.exceptions.InvalidURL, requests.exceptions.InvalidHeader,
                        requests.exceptions.MissingSchema, requests.exceptions.InvalidSchema)):
        return False
    if isinstance(exc, (requests.exceptions.ConnectionError, requests.exceptions.Timeout,
                        urllib3.exceptions.HTTPError)):
        return True
    return False
