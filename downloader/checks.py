"""The checks behind ``Settings``: each takes a library value (or what the
command line made of its text) and returns the setting, or raises
ValueError saying what is wrong ("must be ..., got ..."); the setting's
name is added by ``Settings.build``. Pure functions, no I/O.
"""
from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Union

from . import __version__
from .checksums import ChecksumList

DEFAULT_USER_AGENT: str = f"downloader/{__version__}"
MAX_SPLIT = 16  # aria2's cap on connections per server (-x)
_SIZE = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*([kmg]?)(?:i?b)?\s*", re.IGNORECASE)
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")

HeadersLike = Union[Mapping[str, str], Iterable[str], None]


# Each raises ValueError with what is wrong ("must be ..., got ..."); the
# setting's name is added by Settings.build.

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


def size(value: Any) -> int | None:
    try:
        return parse_size(value)
    except ValueError as exc:
        raise ValueError(str(exc).partition(" ")[2]) from None  # drop "size"


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or not math.isfinite(value):
        raise ValueError(f"must be a number, got {value!r}")
    return float(value)


def _whole(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"must be a whole number, got {value!r}")
    return value


def boolean(value: Any) -> bool:
    if not isinstance(value, bool):  # "false" would be true
        raise ValueError(f"must be True or False, got {value!r}")
    return value


# -- the command line's text -> a value for the check above --------------------

def number_text(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"must be a number, got {text!r}") from None


def whole_text(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"must be a whole number, got {text!r}") from None


def count_or_auto_text(text: str) -> int | str:
    return text if text == "auto" else whole_text(text)


def _count_up_to(value: Any, maximum: int, also: str = "") -> int:
    """``value`` if it is a whole number in 1..maximum; ``also`` names what
    else the setting takes, for the message."""
    try:
        count = _whole(value)
    except ValueError:
        count = 0
    if not 1 <= count <= maximum:
        raise ValueError(f"must be 1-{maximum}{also}, got {value!r}")
    return count


def count_or_auto(maximum: int) -> Callable[[Any], int | str]:
    """A check for 1..maximum or "auto" (``-j``, ``-P``)."""
    def check(value: Any) -> int | str:
        if value == "auto":
            return "auto"
        return _count_up_to(value, maximum, " or 'auto'")
    return check


def positive_count(value: Any) -> int | None:
    if value is None:
        return None
    count = _whole(value)
    if count < 1:
        raise ValueError(f"must be a positive whole number, got {value!r}")
    return count


def split_count(value: Any) -> int:
    return _count_up_to(value, MAX_SPLIT)


def min_split_size(value: Any) -> int:
    if value is None:
        raise ValueError("must be a size such as 20M, got None")
    checked = size(value)
    assert checked is not None
    return checked


def retry_count(value: Any) -> int:
    count = _whole(value)
    if count < 0:
        raise ValueError(f"must be a non-negative whole number, got {value!r}")
    return count


def seconds(value: Any) -> float:
    seconds = _number(value)
    if seconds <= 0:
        raise ValueError(f"must be a positive number of seconds, got {value!r}")
    return seconds


def optional_seconds(value: Any) -> float | None:
    return None if value is None else seconds(value)


def wait_seconds(value: Any) -> float:
    seconds = _number(value)
    if seconds < 0:
        raise ValueError(f"must be a non-negative number of seconds, got {value!r}")
    return seconds


def choice(choices: tuple[str, ...]) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if value not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}, got {value!r}")
        return str(value)
    return check


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
            raise ValueError(f"has an invalid header name {name!r}")
        value = str(value).strip()
        check_header_value(name, value)
        result.append((name, value))
    return tuple(result)


def check_header_value(name: str, value: str) -> None:
    if any(c in value for c in "\r\n\0"):
        raise ValueError(f"has a line break in the value of {name}")
    try:
        value.encode("latin-1")
    except UnicodeEncodeError:
        raise ValueError(f"has characters HTTP cannot carry in the value of {name} "
                         "(only Latin-1)") from None


def _split_header(header: str) -> tuple[str, str]:
    name, sep, value = str(header).partition(":")
    if not sep:
        raise ValueError(f"must look like 'Name: value', got {header!r}")
    return name, value


def user_agent(value: Any) -> str:
    if not value:
        return DEFAULT_USER_AGENT
    check_header_value("User-Agent", str(value))
    return str(value)


def optional_text(value: Any) -> str | None:
    return None if value is None else str(value)


def checksum_list(value: Any) -> ChecksumList | None:
    if value is not None and not isinstance(value, ChecksumList):
        raise TypeError(f"must be a ChecksumList, got {type(value).__name__}")
    return value
