"""Every knob of a run, defined once, validated once, in one frozen value.

Each field of ``Settings`` carries its default, its docstring, the check
that validates it and how it looks on the command line. ``download_all``'s
keywords, the CLI's options and ``Settings.build`` are all made from that
one list; nothing else reads options, globals or the environment.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from . import checks
from .checks import (  # noqa: F401 - HeadersLike and parse_size are part of this API
    DEFAULT_USER_AGENT, HeadersLike, count_or_auto_text, number_text, parse_size, whole_text)
from .checksums import ChecksumList
from .cookies import CookieFile, load_cookie_file
from .credentials import Credentials, parse_proxy, parse_user

IF_EXISTS = ("skip", "overwrite", "update")
PROGRESS = ("auto", "bar", "log", "none")
MAX_WORKERS = 256
MAX_PROCESSES = 64


class SettingError(ValueError):
    """A setting's value makes no sense; ``name`` is the setting."""

    def __init__(self, name: str, problem: str, conflict: str | None = None) -> None:
        super().__init__(f"{name} {problem}")
        self.name = name
        self.problem = problem
        self.conflict = conflict
        """The setting ``name`` contradicts, when that is the problem."""


# -- the settings -------------------------------------------------------------

@dataclass(frozen=True)
class Flag:
    """How a setting looks on the command line."""

    names: tuple[str, ...]
    help: str
    metavar: str | None = None
    action: str | None = None
    """An argparse action for switches and lists (store_true, append, ...)."""
    choices: tuple[str, ...] | None = None
    text: Callable[[str], Any] | None = None
    """Turns the option's text into a value for the setting's check."""


def _setting(default: Any, check: Callable[[Any], Any], flag: Flag | None = None,
             **kwargs: Any) -> Any:
    return field(default=default, metadata={"check": check, "flag": flag}, **kwargs)


@dataclass(frozen=True)
class Settings:
    """How a run behaves. Build with ``Settings.build``, which validates."""

    dest: Path = _setting(Path("downloads"), Path, Flag(
        ("-d", "--dest"), "folder to download into (default: downloads)", "DIR"))
    """Folder to download into (created if missing)."""
    workers: int | str = _setting(8, checks.count_or_auto(MAX_WORKERS), Flag(
        ("-j", "--workers"), f"worker threads, 1-{MAX_WORKERS}, or 'auto' (default: 8)", "N",
        text=count_or_auto_text))
    """Worker threads, 1-256, or "auto" to grow the pool while it pays."""
    processes: int | str = _setting(1, checks.count_or_auto(MAX_PROCESSES), Flag(
        ("-P", "--processes"), "worker processes, each running -j threads, or 'auto' "
        "(the usable CPUs) (default: 1)", "N",
        text=count_or_auto_text))
    """Worker processes on this machine, each running ``workers`` threads, or
    "auto" for one per usable CPU."""
    per_host: int | None = _setting(None, checks.positive_count, Flag(
        ("--per-host",), "at most N requests in flight to one host", "N", text=whole_text))
    """At most this many requests in flight to one (scheme, host, port)."""
    retries: int = _setting(3, checks.retry_count, Flag(
        ("--retries",), "extra attempts after a retryable failure (default: 3)", "N",
        text=whole_text))
    """Extra attempts after a retryable failure."""
    retry_wait: float = _setting(1.0, checks.wait_seconds, Flag(
        ("--retry-wait",), "first retry waits about this long, doubling after (default: 1)",
        "SECONDS", text=number_text))
    """First backoff in seconds; each later one doubles (jitter +-50 %)."""
    timeout: float = _setting(30.0, checks.seconds, Flag(
        ("--timeout",), "connect timeout and longest silence while reading (default: 30)",
        "SECONDS", text=number_text))
    """Connect timeout, and the longest silence while reading."""
    max_time: float | None = _setting(None, checks.optional_seconds, Flag(
        ("--max-time",), "the longest one file may take, all attempts together", "SECONDS",
        text=number_text))
    """The longest one file may take, all attempts together."""
    if_exists: str = _setting("skip", checks.choice(IF_EXISTS), Flag(
        ("--if-exists",), "a target that exists: keep it, fetch again, or fetch if newer "
        "(default: skip)", choices=IF_EXISTS))
    """What to do with a target that exists: skip, overwrite or update."""
    resume: bool = _setting(True, checks.boolean, Flag(
        ("--no-resume",), "start .part leftovers from zero", action="store_false"))
    """Resume ``.part`` leftovers (when the server confirms they are current)."""
    max_size: int | None = _setting(None, checks.size, Flag(
        ("--max-size",), "refuse files larger than SIZE (500K, 20M, 3G)", "SIZE"))
    """Refuse any file larger than this many bytes (or ``20M``-style text)."""
    limit_rate: int | None = _setting(None, checks.size, Flag(
        ("--limit-rate",), "cap the total rate (500K, 10M bytes/s)", "RATE"))
    """Cap on the whole run's download rate, bytes per second."""
    split: int = _setting(8, checks.split_count, Flag(
        ("--split",), f"fetch one big file over up to N connections at once, in byte ranges, "
        f"1-{checks.MAX_SPLIT} (default: 8)", "N", text=whole_text))
    """Connections one file may use at once (byte ranges, when the server
    allows them and no other entry waits for a worker); 1 fetches every
    file in one stream."""
    min_split_size: int = _setting(20 * 1024**2, checks.min_split_size, Flag(
        ("--min-split-size",), "split only files of at least SIZE (default: 20M)", "SIZE"))
    """The smallest file ``split`` applies to, in bytes (or ``20M``-style text)."""
    headers: tuple[tuple[str, str], ...] = _setting((), checks.parse_headers, Flag(
        ("-H", "--header"), "extra request header; repeatable", "'Name: value'",
        action="append"))
    """Extra request headers: a mapping, or ``'Name: value'`` strings."""
    checksums: ChecksumList | None = _setting(None, checks.checksum_list)
    """Checksums by file name (``--checksums FILE``): every file they name
    is verified before it is put in place (not a library keyword)."""
    record_sha256: bool = _setting(False, checks.boolean)
    """Compute every download's SHA-256 as it is written, even with no
    checksum to match (``--write-checksums``; not a library keyword): it
    costs more CPU per byte than the rest of the byte path."""
    user_agent: str = _setting(DEFAULT_USER_AGENT, checks.user_agent, Flag(
        ("-U", "--user-agent"), f"User-Agent to send (default: {DEFAULT_USER_AGENT})",
        "STRING"))
    """The User-Agent sent."""
    ca_bundle: str | None = _setting(None, checks.optional_text, Flag(
        ("--ca-bundle",), "trust the CA certificates in FILE", "FILE"))
    """A PEM file of trusted CAs for HTTPS, instead of the default store."""
    insecure: bool = _setting(False, checks.boolean, Flag(
        ("--insecure",), "do not verify HTTPS certificates", action="store_true"))
    """Skip HTTPS certificate verification."""
    load_cookies: CookieFile | None = _setting(None, load_cookie_file, Flag(
        ("--load-cookies",), "send the cookies in FILE (a Netscape cookies.txt) to the sites "
        "they belong to", "FILE"))
    """A Netscape ``cookies.txt``, given as its path and held as its cookies
    (loaded once); each cookie goes only to its domain and path."""
    user: Credentials | None = _setting(None, parse_user, Flag(
        ("--user",), "HTTP Basic authentication for the URLs' hosts (not sent on to another "
        "host after a redirect); asks for the password when it is left out",
        "USER[:PASSWORD]"))
    """``"USER:PASSWORD"`` or ``(user, password)``: Basic authentication,
    never sent on to another (scheme, host, port) after a redirect."""
    proxy: str | None = _setting(None, parse_proxy, Flag(
        ("--proxy",), "send every request through this proxy, whatever HTTP(S)_PROXY and "
        "NO_PROXY say", "URL"), repr=False)
    """Every request goes through this proxy; the proxy variables are ignored."""
    no_proxy: bool = _setting(False, checks.boolean, Flag(
        ("--no-proxy",), "use no proxy, whatever HTTP(S)_PROXY says", action="store_true"))
    """Use no proxy: ignore HTTP_PROXY, HTTPS_PROXY, ALL_PROXY (and the
    system's settings)."""
    chunk_size: int = _setting(256 * 1024, checks.positive_count, repr=False)
    """Bytes asked of the socket per read while streaming (not an option)."""

    def process_count(self) -> int:
        """``processes`` as a number: "auto" is the CPUs this process may use."""
        if isinstance(self.processes, int):
            return self.processes
        try:
            return max(1, len(os.sched_getaffinity(0)))
        except AttributeError:  # not on Linux
            return os.cpu_count() or 1

    @classmethod
    def build(cls, dest: str | Path = "downloads", **options: Any) -> Settings:
        """Validate every option; ``SettingError`` (a ``ValueError``) names
        the first bad one, ``TypeError`` an unknown one."""
        known = {f.name: f for f in fields(cls)}
        for name in options:
            if name not in known or name == "dest":
                raise TypeError(f"unexpected keyword argument {name!r}")
        values: dict[str, Any] = {}
        for name, spec in known.items():
            value = dest if name == "dest" else options.get(name, spec.default)
            try:
                values[name] = spec.metadata["check"](value)
            except ValueError as exc:
                raise SettingError(name, str(exc)) from None
        for name, other in (("ca_bundle", "insecure"), ("proxy", "no_proxy")):
            if values[name] is not None and values[other]:
                raise SettingError(name, f"and {other} contradict each other", conflict=other)
        return cls(**values)


def public_settings() -> list[Any]:
    """The fields a caller may set (``download_all``'s keywords, the CLI's
    options), in order."""
    return [f for f in fields(Settings) if f.metadata["flag"] is not None]
