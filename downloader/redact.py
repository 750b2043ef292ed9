"""Keeping credentials out of output, reports and the state database."""
from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

SECRET_HEADERS = frozenset({"authorization", "cookie", "proxy-authorization"})


def redact_url(url: str) -> str:
    """``https://user:pw@host/x`` -> ``https://user:***@host/x``.

    A password holding an unescaped ``/``, ``?`` or ``#`` hides the ``@``
    from URL parsers; it is masked too, erring on the side of secrecy
    (``http://host:80/a@b`` shows as ``http://host:***@b``).
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        parts = None
    if parts is not None and "@" in parts.netloc:
        userinfo, _, hostport = parts.netloc.rpartition("@")
        user, has_password, _ = userinfo.partition(":")
        netloc = f"{user}:***@{hostport}" if has_password else f"{user}@{hostport}"
        return urlunsplit(parts._replace(netloc=netloc))
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
