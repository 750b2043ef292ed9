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
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from http.cookiejar import Cookie, LoadError, MozillaCookieJar
from typing import Any

FORMAT = "a Netscape cookies.txt"
# The header MozillaCookieJar demands. curl and the add-ons write it;
# wget writes "# HTTP cookie file." and aria2 none at all.
_HEADER = "# Netscape HTTP Cookie File\n"
# How curl and the add-ons mark an HttpOnly cookie's line (Python 3.9 read
# it as a comment).
_HTTPONLY = "#HttpOnly_"
_FIELDS = 7


@dataclass(frozen=True)
class CookieFile:
    """The cookies of one file, loaded once for the whole run; their values
    never show in a ``repr``."""

    path: str
    cookies: tuple[Cookie, ...] = field(repr=False, compare=False)


def load_cookie_file(value: Any) -> CookieFile | None:
    """A path -> its cookies; ``ValueError`` says what is wrong with the file
    (by line number: a line's text may be a secret)."""
    if value is None:
        return None
    path = os.fspath(value)
    if not isinstance(path, str):
        raise ValueError(f"must be a file name, got {value!r}")
    try:
        with open(path, encoding="utf-8-sig") as f:  # -sig: as some Windows tools save it
            lines = [_without_httponly(line) for line in f]
    except OSError as exc:
        raise ValueError(f"{path}: cannot read it: {exc.strerror or exc}") from None
    except UnicodeError:
        raise ValueError(f"{path}: is not UTF-8 text; expected {FORMAT}") from None
    problem = find_problem(lines)
    if problem is not None:
        raise ValueError(f"{path}: {problem}")
    jar = MozillaCookieJar()
    try:
        # What MozillaCookieJar.load(path) runs once it has opened the file,
        # given the lines checked above under the header it insists on (the
        # file's own header, if any, is then a comment). Expired cookies are
        # dropped below, once expiry 0 is understood.
        jar._really_load(io.StringIO(_HEADER + "".join(lines)),  # type: ignore[attr-defined]
                         path, True, True)
    except LoadError:  # its text quotes the line
        raise ValueError(f"{path}: is not {FORMAT}") from None
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
    """Why MozillaCookieJar would refuse these lines (with ``#HttpOnly_``
    taken off), naming the first bad one by number; None when it will read
    them."""
    for number, line in enumerate(lines, start=1):
        if line.endswith("\n"):
            line = line[:-1]
        if line.strip().startswith(("#", "$")) or not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) != _FIELDS:
            if line.lstrip().startswith(("[", "{")):
                return f"is JSON, not {FORMAT}: export the cookies in the Netscape format"
            return (f"line {number}: is not a Netscape cookies.txt line: {len(fields)} "
                    f"tab-separated fields, not {_FIELDS} "
                    "(domain, subdomains, path, secure, expiry, name, value)")
        domain, subdomains, _, _, expires, name, value = fields
        if (subdomains == "TRUE") != domain.startswith("."):
            return (f"line {number}: the subdomains field is {subdomains!r} but the domain "
                    f"{domain!r} {'starts' if domain.startswith('.') else 'does not start'} "
                    "with a dot")
        if expires:
            try:
                int(float(expires))
            except (ValueError, OverflowError):
                return f"line {number}: the expiry is not a number of seconds"
        try:
            (name + value).encode("latin-1")
        except UnicodeEncodeError:
            return f"line {number}: the cookie has characters HTTP cannot carry (only Latin-1)"
    return None


def _without_httponly(line: str) -> str:
    return line[len(_HTTPONLY):] if line.startswith(_HTTPONLY) else line
