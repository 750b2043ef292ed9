"""Every knob of a run, validated once, in one frozen value.

The command line and ``download_all`` both build a ``Settings``; nothing
else reads options, globals or the environment.
"""
from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Union

from . import __version__

IF_EXISTS = ("skip", "overwrite", "update")
PROGRESS = ("auto", "bar", "log", "none")
MAX_WORKERS = 256
_SIZE = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*([kmg]?)(?:i?b)?\s*", re.IGNORECASE)
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")

HeadersLike = Union[Mapping[str, str], Iterable[str], None]


def parse_size(value: int | str | None, what: str = "size") -> int | None:
    """``500K`` -> 512000 (powers of 1024); ints pass through; None stays."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError(f"{what} must be a number of bytes, got {value!r}")
    if isinstance(value, (int, float)):
        number = float(value)
    else:
        match = _SIZE.fullmatch(str(value))
        if not match:
            raise ValueError(f"{what} must look like 500K, 20M or 3G, got {value!r}")
        scale = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}[match.group(2).lower()]
        number = float(match.group(1)) * scale
    if not math.isfinite(number) or number <= 0:
        raise ValueError(f"{what} must be positive, got {value!r}")
    return max(1, int(number))


def parse_headers(headers: HeadersLike) -> tuple[tuple[str, str], ...]:
    """A mapping or ``'Name: value'`` strings -> validated pairs."""
    if headers is None:
        return ()
    if isinstance(headers, str):
        headers = [headers]
    pairs = headers.items() if isinstance(headers, Mapping) else (
        _split_header(h) for h in headers)
    result = []
    for name, value in pairs:
        name = str(name).strip()
        if not _TOKEN.fullmatch(name):
            raise ValueError(f"invalid header name {name!r}")
        value = str(value).strip()
        _check_header_value(name, value)
        result.append((name, value))
    return tuple(result)


def _check_header_value(name: str, value: str) -> None:
    if any(c in value for c in "\r\n\0"):
        raise ValueError(f"header {name} has a line break in its value")
    try:
        value.encode("latin-1")
    except UnicodeEncodeError:
        raise ValueError(f"header {name} has characters HTTP cannot carry "
                         "(only Latin-1)") from None


def _split_header(header: str) -> tuple[str, str]:
    name, sep, value = str(header).partition(":")
    if not sep:
        raise ValueError(f"header must look like 'Name: value', got {header!r}")
    return name, value


def _positive(value: float | None, what: str, allow_none: bool = False) -> float | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{what} must be a number, got {value!r}")
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{what} must be positive, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class Settings:
    """How a run behaves. Build with ``Settings.build``, which validates."""

    dest: Path = Path("downloads")
    """Folder to download into (created if missing)."""
    workers: int | str = 8
    """Worker threads, 1-256, or "auto" to grow the pool while it pays."""
    per_host: int | None = None
    """At most this many requests in flight to one (scheme, host, port)."""
    retries: int = 3
    """Extra attempts after a retryable failure."""
    retry_wait: float = 1.0
    """First backoff in seconds; each later one doubles (jitter +-50 %)."""
    timeout: float = 30.0
    """Connect timeout, and the longest silence while reading."""
    max_time: float | None = None
    """The longest one file may take, all attempts together."""
    if_exists: str = "skip"
    """What to do with a target that exists: skip, overwrite or update."""
    resume: bool = True
    """Resume ``.part`` leftovers (when the server confirms they are current)."""
    max_size: int | None = None
    """Refuse any file larger than this many bytes."""
    limit_rate: int | None = None
    """Cap on the whole run's download rate, bytes per second."""
    headers: tuple[tuple[str, str], ...] = ()
    """Extra request headers, in order."""
    user_agent: str = f"downloader/{__version__}"
    """The User-Agent sent."""
    ca_bundle: str | None = None
    """A PEM file of trusted CAs for HTTPS, instead of the default store."""
    insecure: bool = False
    """Skip HTTPS certificate verification."""
    chunk_size: int = field(default=256 * 1024, repr=False)
    """Bytes asked of the socket per read while streaming."""

    @classmethod
    def build(cls, dest: str | Path = "downloads", *, workers: int | str = 8,
              per_host: int | None = None, retries: int = 3, retry_wait: float = 1.0,
              timeout: float = 30.0, max_time: float | None = None,
              if_exists: str = "skip", resume: bool = True,
              max_size: int | str | None = None, limit_rate: int | str | None = None,
              headers: HeadersLike = None, user_agent: str | None = None,
              ca_bundle: str | None = None, insecure: bool = False) -> Settings:
        """Validate every argument; ``ValueError`` names the first bad one."""
        if workers != "auto":
            if isinstance(workers, bool) or not isinstance(workers, int) or not 1 <= workers <= MAX_WORKERS:
                raise ValueError(f"workers must be 1-{MAX_WORKERS} or 'auto', got {workers!r}")
        if per_host is not None and (isinstance(per_host, bool) or not isinstance(per_host, int)
                                     or per_host < 1):
            raise ValueError(f"per_host must be a positive integer, got {per_host!r}")
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise ValueError(f"retries must be a non-negative integer, got {retries!r}")
        if isinstance(retry_wait, bool) or not isinstance(retry_wait, (int, float)) \
                or not math.isfinite(retry_wait) or retry_wait < 0:
            raise ValueError(f"retry_wait must be a non-negative number, got {retry_wait!r}")
        if if_exists not in IF_EXISTS:
            raise ValueError(f"if_exists must be one of {', '.join(IF_EXISTS)}, got {if_exists!r}")
        if ca_bundle is not None and insecure:
            raise ValueError("ca_bundle and insecure contradict each other")
        if user_agent:
            _check_header_value("User-Agent", user_agent)
        return cls(
            dest=Path(dest),
            workers=workers,
            per_host=per_host,
            retries=retries,
            retry_wait=float(retry_wait),
            timeout=_positive(timeout, "timeout"),
            max_time=_positive(max_time, "max_time", allow_none=True),
            if_exists=if_exists,
            resume=bool(resume),
            max_size=parse_size(max_size, "max_size"),
            limit_rate=parse_size(limit_rate, "limit_rate"),
            headers=parse_headers(headers),
            user_agent=user_agent or f"downloader/{__version__}",
            ca_bundle=ca_bundle,
            insecure=bool(insecure),
        )
