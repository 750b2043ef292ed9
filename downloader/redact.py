"""Keeping credentials out of output, reports and the state database."""
from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit



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
