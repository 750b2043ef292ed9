"""Mirrors: several URLs of one file on a list line, tried in turn, against
real loopback servers (one per mirror, plus a port nobody listens on)."""
from __future__ import annotations

import hashlib
import json
import socket
from pathlib import Path
from typing import Any, Iterator

import pytest

from downloader import Entry, download_all
from downloader.entries import parse_line
from downloader.errors import TransferError
from downloader.mirrors import GIVE_UP, NEW_ROUND, NEXT, Mirrors
from downloader.retry import RetryPolicy
from httpserver import FaultServer, make_body

FAST: dict[str, Any] = {"retry_wait": 0.01, "timeout": 5}
BODY = make_body(60_000, 21)
OTHER = make_body(60_000, 22)


@pytest.fixture
def second() -> Iterator[FaultServer]:
    """Another server: a mirror on another origin."""
    with FaultServer() as srv:
        yield srv


@pytest.fixture
def refused() -> str:
    """A URL on a loopback port with nothing listening: connection refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/file.bin"


# -- the list line --------------------------------------------------------------

A, B, C = "http://a.example/f.iso", "https://b.example/pub/f.iso", "http://c.example/f.iso"


@pytest.mark.parametrize("line, mirrors", [
    (f"{A} {B} {C}", (B, C)),
    (f"{A}\t{B}  out=f.iso", (B,)),
    (f"{A} {B} {A} {B}", (B,)),  # repeats add nothing
    (f"{A} HTTPS://b.example/x", ("HTTPS://b.example/x",)),
])
def test_extra_urls_before_the_options_are_mirrors(line: str, mirrors: tuple[str, ...]) -> None:
    item = parse_line(line, "urls.txt:1")
    assert item is not None and item.entry is not None, item
    assert item.entry.url == A and item.entry.mirrors == mirrors


@pytest.mark.parametrize("line, error", [
    (f"{A} out=f.iso {B}", "mirror URLs go before the key=value options"),
    (f"{A} {B} ftp://c.example/f.iso", "mirror 2: unsupported scheme 'ftp'"),
    (f"{A} http:///nohost", "mirror 1: URL has no host"),
])
def test_bad_mirrors_name_the_line(line: str, error: str) -> None:
    item = parse_line(line, "urls.txt:7")
    assert item is not None and item.entry is None
    assert item.error is not None and item.error.startswith(f"urls.txt:7: {error}"), item.error


# -- the rotation, pure -------------------------------------------------------------

def test_one_attempt_per_mirror_per_round() -> None:
    mirrors = Mirrors([A, B, C])
    policy = RetryPolicy(retries=1)
    flaky, gone = TransferError("HTTP 503", retryable=True), TransferError("HTTP 404")
    asked = [mirrors.current]
    assert mirrors.failed(flaky, policy) == NEXT
    asked.append(mirrors.current)
    assert mirrors.failed(gone, policy) == NEXT  # B stands down for good
    asked.append(mirrors.current)
    assert mirrors.failed(flaky, policy) == NEW_ROUND
    mirrors.new_round()
    asked.append(mirrors.current)
    assert mirrors.failed(flaky, policy) == NEXT
    asked.append(mirrors.current)
    assert mirrors.failed(flaky, policy) == GIVE_UP  # --retries 1: two rounds
    assert asked == [A, B, C, A, C]
    assert mirrors.reason(flaky, 5) == (f"every mirror failed: {A}: HTTP 503; {B}: HTTP 404; "
                                        f"{C}: HTTP 503 (after 5 attempts)")


def test_a_single_url_is_retried_as_before() -> None:
    mirrors = Mirrors([A])
    policy = RetryPolicy(retries=2)
    flaky = TransferError("HTTP 503", retryable=True)
    assert mirrors.failed(flaky, policy) == NEW_ROUND
    mirrors.new_round()
    assert mirrors.failed(flaky, policy) == NEW_ROUND
    mirrors.new_round()
    assert mirrors.failed(flaky, policy) == GIVE_UP
    assert mirrors.reason(flaky, 3) == "HTTP 503 (after 3 attempts)"
    assert Mirrors([A]).failed(TransferError("HTTP 404"), policy) == GIVE_UP


# -- against servers ---------------------------------------------------------------

def test_a_refused_mirror_passes_to_the_next(server: FaultServer, refused: str,
                                             tmp_path: Path) -> None:
    good = server.add("/file.bin", BODY)
    summary = download_all([{"url": refused, "mirrors": [good]}], tmp_path / "dest",
                           retries=0, **FAST)
    result = summary.results[0]
    assert result.status == "downloaded", result.error
    assert result.url == refused and result.mirror == good
    assert result.attempts == 2
    assert (tmp_path / "dest" / "file.bin").read_bytes() == BODY


@pytest.mark.parametrize("fault", [
    {"fail_times": 99, "fail_status": 503},
    {"status": 404},
    {"stall": 60.0},  # headers, then silence past --timeout (stop() ends it)
    {"body": OTHER},  # the wrong file: fails its checksum
])
def test_a_failing_mirror_passes_to_the_next(server: FaultServer, second: FaultServer,
                                             tmp_path: Path, fault: dict[str, Any]) -> None:
    first = server.add("/file.bin", **{"body": BODY, **fault})
    good = second.add("/file.bin", BODY)
    entry = Entry(first, mirrors=(good,), sha1=hashlib.sha1(BODY).hexdigest())
    result = download_all([entry], tmp_path / "dest", retries=0,
                          **{**FAST, "timeout": 1.0}).results[0]
    assert result.status == "downloaded" and result.mirror == good, result.error
    assert (tmp_path / "dest" / "file.bin").read_bytes() == BODY
    assert server.hits("/file.bin") == 1 and second.hits("/file.bin") == 1


def test_every_mirror_failing_names_each(cli: Any, server: FaultServer, refused: str,
                                         tmp_path: Path) -> None:
    gone = server.add("/gone.bin", status=404)
    secret = gone.replace("http://", "http://user:hunter2@")
    (tmp_path / "urls.txt").write_text(f"{refused} {secret} out=f.bin md5={'0' * 32}\n")

    proc = cli("-i", "urls.txt", "-d", "dest", "--retries", "1", "--retry-wait", "0.01",
               "--progress", "none", "--report", "report.json", "--save-failed", "failed.txt")

    assert proc.returncode == 1
    shown = gone.replace("http://", "http://user:***@")
    error = (f"every mirror failed: {refused}: connection failed: connection "
             f"refused; {shown}: HTTP 404 Not Found (after 3 attempts)")
    result = json.loads((tmp_path / "report.json").read_text())["results"][0]
    assert result["error"] == error and result["mirror"] is None
    assert server.hits("/gone.bin") == 1  # a 404 is not asked again; the refusal is
    assert "hunter2" not in proc.stderr + (tmp_path / "report.json").read_text()
    # --save-failed writes the line back whole, mirrors and all, for -i next time.
    saved = [line for line in (tmp_path / "failed.txt").read_text().splitlines()
             if not line.startswith("#")]
    assert saved == [f"{refused} {secret} out=f.bin md5={'0' * 32}"]
    assert not (tmp_path / "dest" / "f.bin").exists()


def test_a_part_is_resumed_from_a_mirror_with_the_same_validator(
        server: FaultServer, second: FaultServer, tmp_path: Path) -> None:
    first = server.add("/file.bin", BODY, etag='"v7"', drop_after=20_000)
    other = second.add("/file.bin", BODY, etag='"v7"')
    result = download_all([Entry(first, mirrors=(other,))], tmp_path / "dest",
                          **FAST).results[0]
    assert result.status == "downloaded" and result.mirror == other
    asked = second.requests[0].headers
    assert (asked.get("Range"), asked.get("If-Range")) == ("bytes=20000-", '"v7"')
    assert result.bytes == len(BODY)  # 20000 from the first, the rest from the mirror
    assert (tmp_path / "dest" / "file.bin").read_bytes() == BODY


def test_a_mirror_with_another_validator_starts_over(
        server: FaultServer, second: FaultServer, tmp_path: Path) -> None:
    first = server.add("/file.bin", BODY, etag='"v7"', drop_after=20_000)
    other = second.add("/file.bin", BODY, etag='"mirror-own-tag"')
    result = download_all([Entry(first, mirrors=(other,))], tmp_path / "dest",
                          **FAST).results[0]
    assert result.status == "downloaded" and result.mirror == other
    assert result.bytes == 20_000 + len(BODY)  # If-Range did not match: the whole file
    assert (tmp_path / "dest" / "file.bin").read_bytes() == BODY


def test_a_mirror_that_ignores_if_range_never_grows_a_part_it_cannot_vouch_for(
        server: FaultServer, second: FaultServer, tmp_path: Path) -> None:
    # The mirror has another version, sends no validator and honours Range
    # whatever If-Range says: its bytes must not be spliced onto the .part.
    first = server.add("/file.bin", BODY, etag='"v7"', drop_after=20_000)
    other = second.add("/file.bin", OTHER, ignore_if_range=True)
    result = download_all([Entry(first, mirrors=(other,))], tmp_path / "dest",
                          **FAST).results[0]
    assert second.requests[0].headers.get("Range") == "bytes=20000-"
    assert result.status == "downloaded"
    # Its 206 was refused, the .part dropped, and the next round fetched
    # the first URL's file whole; never a mix of the two.
    assert result.mirror == first
    assert (tmp_path / "dest" / "file.bin").read_bytes() == BODY


def test_the_first_url_is_the_entry(server: FaultServer, second: FaultServer,
                                    tmp_path: Path) -> None:
    url = server.add("/a/file.bin", BODY)
    other = second.add("/mirror/copy.bin", BODY)
    entries = [{"url": url, "mirrors": [other]}, {"url": url}, Entry(url, mirrors=(other,))]
    results = download_all(entries, tmp_path / "dest", **FAST).results
    assert [r.status for r in results] == ["downloaded", "skipped", "skipped"]
    assert results[0].mirror == url  # the first URL answered: mirrors not asked
    assert second.hits("/mirror/copy.bin") == 0
    # Named from the first URL, whichever mirror delivers.
    assert results[0].path == (tmp_path / "dest" / "file.bin").resolve()


def test_mirrors_must_be_a_list_of_strings(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="mirrors"):
        download_all([{"url": A, "mirrors": B}], tmp_path / "dest")
    with pytest.raises(TypeError, match="mirrors"):
        download_all([Entry(A, mirrors=(B, 7))], tmp_path / "dest")  # type: ignore[arg-type]
