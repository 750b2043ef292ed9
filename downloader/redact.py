"""Keeping credentials out of output, reports and the state database."""
from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

SECRET_HEADERS = frozenset({"authorization", "cookie", "proxy-authorization"})


def redact_url(url: str) -> str:
    """``https://user:pw@host/x`` -> ``https://user:***@host/x``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if "@" not in parts.netloc:
        return url
    userinfo, _, hostport = parts.netloc.rpartition("@")
    user, has_password, _ = userinfo.partition(":")
    netloc = f"{user}:***@{hostport}" if has_password else f"{user}@{hostport}"
    return urlunsplit(parts._replace(netloc=netloc))


def redact_text(text: str, url: str) -> str:
    """Replace ``url``'s credentials inside ``text`` (an error message)."""
    redacted = redact_url(url)
    return text.replace(url, redacted) if redacted != url else text
