"""Keeping credentials out of output, reports and the state database."""
from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

from .naming import CONTROL, SURROGATES

_UNPRINTABLE = re.compile(f"[{CONTROL}{SURROGATES}]")


def shown_url(url: str) -> str:
    """A URL as printed for a person: credentials masked, and control
    characters as ``?`` — a bad list line or CSV cell is shown as it was
    given, and its escape sequences must not drive the terminal, nor its
    line breaks split one message into two. So are lone surrogates (bytes
    of argv that were not UTF-8), which no stream can encode."""
    return _UNPRINTABLE.sub("?", redact_url(url))


def redact_url(url: str) -> str:
    """``https://user:pw@host/x`` -> ``https://user:***@host/x``.

    A URL that does not parse (``user:pa/ss@host`` reads as host ``user``
    with port ``pa``) is masked from its first ``:`` to its last ``@``:
    the text may well be a password with an unescaped ``/``, ``?`` or ``#``.
    """
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        parts = None
    if parts is not None and "@" in parts.netloc:
        userinfo, _, hostport = parts.netloc.rpartition("@")
        user, has_password, _ = userinfo.partition(":")
        netloc = f"{user}:***@{hostport}" if has_password else f"{user}@{hostport}"
        return urlunsplit(parts._replace(netloc=netloc))
    if parts is not None:
        return url
    scheme, sep, rest = url.partition("://")
    if sep and "@" in rest:
        userinfo, _, after = rest.rpartition("@")
        user, has_password, _ = userinfo.partition(":")
        if has_password:
            return f"{scheme}://{user}:***@{after}"
    return url


def redact_text(text: str, url: str) -> str:
    """Replace ``url``'s credentials inside ``text`` (an error message)."""
    redacted = redact_url(url)
    return text.replace(url, redacted) if redacted != url else text
