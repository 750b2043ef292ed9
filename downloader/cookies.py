"""``--load-cookies``: a Netscape ``cookies.txt`` (what wget, curl, aria2 and
browser add-ons write), read with the standard library's ``MozillaCookieJar``.

Read as curl and wget read it: a cookie that lasts the browser session
(expiry empty, or 0 as curl and the add-ons write it) is used; one that has
expired is dropped. Which cookie goes to which request is the cookie jar's
policy (domain, path, ``secure``), the same as for cookies a server sets.
"""
from __future__ import annotations

import io
import os
import re
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from http.cookiejar import Cookie, LoadError, MozillaCookieJar
from typing import IO, Any

FORMAT = "a Netscape cookies.txt (first line '# Netscape HTTP Cookie File')"
# What MozillaCookieJar demands of a file's first line.
_MAGIC = re.compile("#( Netscape)? HTTP Cookie File")
# How curl and browser add-ons mark an HttpOnly cookie's line.
_HTTPONLY = "#HttpOnly_"
_FIELDS = 7


@dataclass(frozen=True)
class CookieFile:
    """The cookies of one file, loaded once for the whole run; their values
    never show in a ``repr``."""

    path: str
    cookies: tuple[Cookie, ...] = field(repr=False, compare=False)


class _CookiesTxt(MozillaCookieJar):
    def _really_load(self, f: IO[str], filename: str, ignore_discard: bool,
                     ignore_expires: bool) -> None:
        if sys.version_info < (3, 10):  # it took "#HttpOnly_" lines for comments
            f = io.StringIO("".join(_without_httponly(line) for line in f))
        super()._really_load(f, filename, ignore_discard, ignore_expires)  # type: ignore[misc]


def load_cookie_file(value: Any) -> CookieFile | None:
    """A path -> its cookies; ``ValueError`` says what is wrong with the file
    (by line number: a line's text may be a secret)."""
    if value is None:
        return None
    path = os.fspath(value)
    if not isinstance(path, str):
        raise ValueError(f"must be a file name, got {value!r}")
    try:
        # Opened as MozillaCookieJar.load opens it, so both read the same text.
        with open(path) as f:
            problem = find_problem(f)
    except OSError as exc:
        raise ValueError(f"{path}: cannot read it: {exc.strerror or exc}") from None
    except UnicodeError:
        raise ValueError(f"{path}: is not a text file; expected {FORMAT}") from None
    if problem is not None:
        raise ValueError(f"{path}: {problem}")
    jar = _CookiesTxt()
    try:
        # Expired cookies are dropped below, once expiry 0 is understood.
        jar.load(path, ignore_discard=True, ignore_expires=True)
    except OSError as exc:  # LoadError is one too; its text quotes the line
        reason = "not a valid cookies file" if isinstance(exc, LoadError) else \
            f"cannot read it: {exc.strerror or exc}"
        raise ValueError(f"{path}: {reason}") from None
    return CookieFile(path, tuple(_usable(jar)))


def _usable(cookies: Iterable[Cookie]) -> Iterable[Cookie]:
    """The cookies to send, as http.cookiejar understands them."""
    now = int(time.time())
    for cookie in cookies:
        if cookie.expires == 0:  # curl's and the add-ons' "session cookie"
            cookie.expires = None
            cookie.discard = True
        host = cookie.domain.lstrip(".")
        if host and "." not in host:
            # http.cookiejar knows a dotless host such as "localhost" as
            # "localhost.local" (RFC 2965), and files it so when that host
            # sets a cookie; one from a file must be filed the same way to
            # be sent back.
            cookie.domain += ".local"
        if not cookie.is_expired(now):
            yield cookie


def find_problem(lines: Iterable[str]) -> str | None:
    """Why MozillaCookieJar would refuse these lines, naming the first bad
    one by number; None when it will read them."""
    lines = iter(lines)
    if not _MAGIC.match(next(lines, "")):
        return f"is not {FORMAT}"
    for number, line in enumerate(lines, start=2):
        line = _without_httponly(line)
        if line.endswith("\n"):
            line = line[:-1]
        if line.strip().startswith(("#", "$")) or not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) != _FIELDS:
            return (f"line {number}: has {len(fields)} tab-separated fields, not {_FIELDS} "
                    "(domain, subdomains, path, secure, expiry, name, value)")
        domain, subdomains, _, _, expires, _, _ = fields
        if (subdomains == "TRUE") != domain.startswith("."):
            return (f"line {number}: the subdomains field is {subdomains!r} but the domain "
                    f"{domain!r} {'starts' if domain.startswith('.') else 'does not start'} "
                    "with a dot")
        if expires:
            try:
                int(float(expires))
            except (ValueError, OverflowError):
                return f"line {number}: the expiry is not a number of seconds"
    return None


def _without_httponly(line: str) -> str:
    return line[len(_HTTPONLY):] if line.startswith(_HTTPONLY) else line
