"""``--user`` and ``--proxy``: the run's credentials and proxy, checked once,
and never shown."""
from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from requests.auth import HTTPBasicAuth

from .redact import redact_url

PROXY_SCHEMES = ("http", "https", "socks4", "socks4a", "socks5", "socks5h")


@dataclass(frozen=True)
class Credentials:
    """A user name and password for HTTP Basic authentication."""

    user: str
    password: str = field(repr=False)

    def basic_auth(self) -> HTTPBasicAuth:
        # UTF-8, as browsers and curl send them; requests would use Latin-1
        # for text, and fail on anything else.
        return HTTPBasicAuth(self.user.encode(), self.password.encode())


def split_user(value: str) -> tuple[str, str | None]:
    """``USER:PASSWORD`` -> (user, password); ``USER`` -> (user, None). The
    first colon ends the user name, as in curl: Basic auth cannot carry a
    colon in one."""
    user, colon, password = value.partition(":")
    return user, password if colon else None


def parse_user(value: Any) -> Credentials | None:
    """``"USER:PASSWORD"`` or ``(user, password)`` -> ``Credentials``. The
    value is never quoted back: it holds a password."""
    if value is None:
        return None
    if isinstance(value, Credentials):
        return value
    if isinstance(value, str):
        user, password = split_user(value)
    elif isinstance(value, Sequence) and len(value) == 2 and all(
            isinstance(part, str) for part in value):
        user, password = value
    else:
        raise ValueError("must be 'USER:PASSWORD' or a (user, password) pair")
    if not user:
        raise ValueError("must name a user before the ':'")
    if password is None:
        raise ValueError(f"gives no password for {user!r}: use 'USER:PASSWORD'")
    if any(c in user + password for c in "\r\n\0"):
        raise ValueError("has a line break or NUL in it")
    return Credentials(user, password)


def parse_proxy(value: Any) -> str | None:
    """A proxy URL; ``HOST:PORT`` means ``http://HOST:PORT``, as in curl.
    Messages show its password as ``***``."""
    if value is None:
        return None
    url = str(value).strip()
    if "://" not in url:
        url = "http://" + url
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 -- raises ValueError for a port that is not a number
    except ValueError:
        parts = None
    if parts is None or not parts.hostname:
        raise ValueError(f"must be a URL like http://HOST:PORT, got {redact_url(url)!r}")
    scheme = parts.scheme.lower()
    if scheme not in PROXY_SCHEMES:
        raise ValueError(f"must be an {', '.join(PROXY_SCHEMES[:-1])} or {PROXY_SCHEMES[-1]} "
                         f"URL, got {redact_url(url)!r}")
    if scheme.startswith("socks") and importlib.util.find_spec("socks") is None:
        raise ValueError("is a SOCKS proxy, which needs PySocks: "
                         "pip install 'requests[socks]'")
    return url
