"""Pure tests of settings validation and size parsing."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from downloader import download_all
from downloader.settings import Settings, parse_size

K, M, G = 1024, 1024**2, 1024**3


@pytest.mark.parametrize("value, expected", [
    ("500K", 500 * K),
    ("20m", 20 * M),
    ("3G", 3 * G),
    ("1.5M", int(1.5 * M)),
    ("1000", 1000),
    (1000, 1000),
    (None, None),
])
def test_parse_size(value: int | str | None, expected: int | None) -> None:
    assert parse_size(value) == expected


@pytest.mark.parametrize("value", [
    "", "abc", "12Q", "1.2.3M", "-5K", -1, True,
])
def test_parse_size_rejects_nonsense(value: Any) -> None:
    with pytest.raises(ValueError):
        parse_size(value)


def test_build_defaults_match_the_contract() -> None:
    settings = Settings.build()
    assert settings.dest == Path("downloads")
    assert (settings.workers, settings.retries, settings.retry_wait) == (8, 3, 1.0)
    assert (settings.timeout, settings.if_exists, settings.resume) == (30.0, "skip", True)
    assert (settings.per_host, settings.max_time, settings.max_size, settings.limit_rate) == (
        None, None, None, None)
    assert settings.user_agent.startswith("downloader/")


@pytest.mark.parametrize("workers", [1, 256, "auto"])
def test_workers_accepted(workers: int | str) -> None:
    assert Settings.build(workers=workers).workers == workers


@pytest.mark.parametrize("kwargs", [
    {"workers": 0},
    {"workers": 257},
    {"workers": "many"},
    {"workers": True},
    {"retries": -1},
    {"timeout": -1},
    {"retry_wait": -1},
    {"if_exists": "replace"},
    {"per_host": 0},
    {"max_size": "huge"},
])
def test_build_rejects_nonsense(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        Settings.build(**kwargs)


@pytest.mark.parametrize("kwargs", [{"workers": 0}, {"if_exists": "never"}])
def test_download_all_raises_value_error_for_nonsense(tmp_path: Path, kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        download_all([], dest=tmp_path / "d", **kwargs)


@pytest.mark.parametrize("if_exists", ["skip", "overwrite", "update"])
def test_if_exists_choices(if_exists: str) -> None:
    assert Settings.build(if_exists=if_exists).if_exists == if_exists


def test_zero_retries_is_allowed() -> None:
    assert Settings.build(retries=0).retries == 0


def test_sizes_and_rates_accept_strings_and_ints() -> None:
    settings = Settings.build(max_size="20m", limit_rate="500K")
    assert (settings.max_size, settings.limit_rate) == (20 * M, 500 * K)
    settings = Settings.build(max_size=12345, limit_rate=1000)
    assert (settings.max_size, settings.limit_rate) == (12345, 1000)


@pytest.mark.parametrize("headers, expected", [
    ({"X-Token": "abc", "Accept": "text/csv"}, (("X-Token", "abc"), ("Accept", "text/csv"))),
    (["X-Token: abc", "Accept:text/csv"], (("X-Token", "abc"), ("Accept", "text/csv"))),
    (("X-Url: http://a.example/b",), (("X-Url", "http://a.example/b"),)),
    (None, ()),
])
def test_headers(headers: Any, expected: tuple[tuple[str, str], ...]) -> None:
    assert Settings.build(headers=headers).headers == expected


@pytest.mark.parametrize("headers", [
    ["No colon here"],
    ["Bad Name: x"],
    ["X-A: one\r\nX-B: two"],
    {"bad name": "v"},
    {"X-A": "a\nb"},
])
def test_bad_headers_are_value_errors(headers: Any) -> None:
    with pytest.raises(ValueError):
        Settings.build(headers=headers)


@pytest.mark.parametrize("kwargs", [
    {"workers": "8"},
    {"retries": "2"},
    {"timeout": "5"},
    {"insecure": "false"},  # a truthy string must not turn verification off
    {"resume": "no"},
    {"no_proxy": 1},
])
def test_library_values_are_values_not_command_line_text(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        Settings.build(**kwargs)


def test_command_line_text_becomes_the_same_values(tmp_path: Path) -> None:
    from downloader.cli import parse_args, settings_from

    args = parse_args(["-j", "4", "-P", "auto", "--retries", "2", "--timeout", "2.5",
                       "--no-resume", "--insecure", "http://127.0.0.1:9/x"])
    settings = settings_from(args)
    assert (settings.workers, settings.processes, settings.retries) == (4, "auto", 2)
    assert (settings.timeout, settings.resume, settings.insecure) == (2.5, False, True)
