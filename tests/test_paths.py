"""Paths through resume, cookies and proxies that no other test runs.

The real FaultServer and the real engine (or the CLI); each test checks
the bytes on disk, the Result or exit status, and what the server saw.
"""
from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from httpserver import FaultServer, make_body
from helpers import fetch, only, requests_for
from proxyserver import proxy_env

BODY = make_body(40_000, seed=11)
NEW_BODY = make_body(30_000, seed=12)
DROP_AT = 15_000
DATE_1 = "Wed, 21 Oct 2015 07:28:00 GMT"
DATE_2 = "Thu, 22 Oct 2015 07:28:00 GMT"


def in_dest(dest: Path) -> list[str]:
    """Names in DEST outside its state folder."""
    return sorted(p.name for p in dest.iterdir() if p.name != ".downloader")


def state_rows(dest: Path) -> dict[str, list[tuple]]:
    with sqlite3.connect(dest / ".downloader" / "state.db") as db:
        return {table: db.execute(f"SELECT url, path FROM {table}").fetchall()
                for table in ("files", "parts")}


def cut_first_run(server: FaultServer, dest: Path, **validators: Any) -> str:
    """A first run cut at DROP_AT with no retry: it leaves f.bin.part, and the
    state database records it with the validators the server sent."""
    url = server.add("/f.bin", BODY, drop_after=DROP_AT, **validators)
    assert only(fetch([url], dest, retries=0)).status == "failed"
    assert (dest / "f.bin.part").read_bytes() == BODY[:DROP_AT]
    assert state_rows(dest)["parts"] == [(url, "f.bin")]
    return url


# -- 416 on resume -------------------------------------------------------------

def test_416_for_a_part_that_already_holds_the_whole_file(server, tmp_path):
    """A run killed after the last byte but before the rename leaves a
    complete .part: the rerun asks for the bytes after it, the server says
    416 with ``Content-Range: bytes */N``, and the .part becomes the file."""
    dest = tmp_path / "dl"
    url = cut_first_run(server, dest, etag='"v1"')
    (dest / "f.bin.part").write_bytes(BODY)  # the killed run got every byte

    result = only(fetch([url], dest, retries=0))

    assert (result.status, result.attempts, result.bytes) == ("downloaded", 1, 0)
    assert (dest / "f.bin").read_bytes() == BODY
    assert in_dest(dest) == ["f.bin"]
    rerun = requests_for(server, "/f.bin")[-1]
    assert rerun.headers.get("Range") == f"bytes={len(BODY)}-"
    assert rerun.headers.get("If-Range") == '"v1"'
    assert state_rows(dest) == {"files": [(url, "f.bin")], "parts": []}


def test_416_for_a_part_longer_than_the_file_starts_over(server, tmp_path):
    """``bytes */N`` with N shorter than the .part: the .part is not this
    file, so it is dropped and the file fetched whole."""
    dest = tmp_path / "dl"
    url = cut_first_run(server, dest, etag='"v1"')
    (dest / "f.bin.part").write_bytes(BODY + b"trailing junk")

    result = only(fetch([url], dest, retries=1))

    assert (result.status, result.attempts) == ("downloaded", 2)
    assert (dest / "f.bin").read_bytes() == BODY
    assert in_dest(dest) == ["f.bin"]
    refused, whole = requests_for(server, "/f.bin")[-2:]
    assert refused.headers.get("Range") == f"bytes={len(BODY) + 13}-"
    assert whole.headers.get("Range") is None


# -- 206 that is not the range asked for --------------------------------------

def test_206_with_another_range_discards_the_part_and_starts_over(server, tmp_path):
    """The server answers ``Range: bytes=15000-`` with ``bytes 7500-…``:
    appending that would corrupt the file, so the .part goes and the next
    attempt fetches the whole file."""
    url = server.add("/f.bin", BODY, etag='"v1"', drop_after=DROP_AT, wrong_range=True)
    result = only(fetch([url], tmp_path / "dl", retries=3))

    assert (result.status, result.attempts) == ("downloaded", 3)
    assert (tmp_path / "dl" / "f.bin").read_bytes() == BODY
    assert in_dest(tmp_path / "dl") == ["f.bin"]
    cut, resumed, whole = requests_for(server, "/f.bin")
    assert resumed.headers.get("Range") == f"bytes={DROP_AT}-"
    assert whole.headers.get("Range") is None


# -- a server that ignores If-Range ------------------------------------------

@pytest.mark.parametrize("old, new, if_range", [
    pytest.param(dict(etag='"v1"'), dict(etag='"v2"'), '"v1"', id="etag"),
    pytest.param(dict(last_modified=DATE_1), dict(last_modified=DATE_2), DATE_1,
                 id="last-modified"),
])
def test_server_ignoring_if_range_never_grows_an_old_part(server, tmp_path, old, new, if_range):
    """The file changed since the .part began, and the server sends the
    asked-for range of the *new* file regardless of If-Range. Its
    validator shows the change: the .part is dropped, the new file fetched
    whole."""
    dest = tmp_path / "dl"
    url = cut_first_run(server, dest, **old)
    server.add("/f.bin", NEW_BODY, ignore_if_range=True, **new)

    result = only(fetch([url], dest, retries=2))

    assert (result.status, result.attempts) == ("downloaded", 2)
    assert (dest / "f.bin").read_bytes() == NEW_BODY
    assert in_dest(dest) == ["f.bin"]
    resumed, whole = requests_for(server, "/f.bin")[-2:]
    assert resumed.headers.get("Range") == f"bytes={DROP_AT}-"
    assert resumed.headers.get("If-Range") == if_range
    assert whole.headers.get("Range") is None


def test_server_ignoring_if_range_416_for_a_changed_file_of_the_same_length(server, tmp_path):
    """The .part is complete for the old version; the file changed (same
    length, new ETag) and the server answers the Range with 416 instead of
    sending the new file. The 416's ETag shows the change: the old .part
    must not become the file."""
    dest = tmp_path / "dl"
    url = cut_first_run(server, dest, etag='"v1"')
    (dest / "f.bin.part").write_bytes(BODY)
    changed = make_body(len(BODY), seed=13)
    server.add("/f.bin", changed, etag='"v2"', ignore_if_range=True)

    result = only(fetch([url], dest, retries=2))

    assert result.status == "downloaded"
    assert (dest / "f.bin").read_bytes() == changed
    assert in_dest(dest) == ["f.bin"]


# -- cookies -------------------------------------------------------------------

COOKIE_SECRET = "s3cr3t-c00kie-9f2a"


def test_a_cookie_set_by_the_server_is_sent_back_and_never_shown(server, tmp_path, cli):
    """One worker, one Session: the cookie /login sets is sent with /data
    (which refuses requests without it), and its value appears in no
    output, report or state database."""
    login = server.add("/login", b"welcome\n",
                       headers={"Set-Cookie": f"session={COOKIE_SECRET}; Path=/"})
    data = server.add("/data.bin", BODY, require_cookie=f"session={COOKIE_SECRET}")

    proc = cli("-j", "1", login, data, "-d", "dl", "-v", "--retries", "0",
               "--report", "report.json")

    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "dl" / "data.bin").read_bytes() == BODY
    first, second = server.requests
    assert first.path == "/login" and first.headers.get("Cookie") is None
    assert second.path == "/data.bin" and second.headers.get("Cookie") == f"session={COOKIE_SECRET}"
    assert COOKIE_SECRET not in proc.stderr + proc.stdout
    assert COOKIE_SECRET not in (tmp_path / "report.json").read_text()
    for stored in (tmp_path / "dl" / ".downloader").iterdir():  # state.db and its -wal
        assert COOKIE_SECRET.encode() not in stored.read_bytes(), stored.name


# -- HTTP_PROXY ------------------------------------------------------------------

def test_http_proxy_from_the_environment_is_used(server, proxy, tmp_path, cli):
    """requests bypasses a proxy for 127.0.0.1 only when NO_PROXY names it."""
    url = server.add("/f.bin", BODY)
    proc = cli(url, "-d", "dl", "--retries", "0", env=proxy_env(proxy.base))

    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "dl" / "f.bin").read_bytes() == BODY
    assert proxy.urls() == [url]
    assert [r.path for r in server.requests] == ["/f.bin"]


def test_no_proxy_naming_the_host_bypasses_the_proxy(server, proxy, tmp_path, cli):
    url = server.add("/f.bin", BODY)
    proc = cli(url, "-d", "dl", "--retries", "0", env=proxy_env(proxy.base, no_proxy="127.0.0.1"))

    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "dl" / "f.bin").read_bytes() == BODY
    assert proxy.urls() == []


def test_proxy_password_is_sent_to_the_proxy_and_never_shown(server, proxy, tmp_path, cli):
    secret = "pr0xy-pa55"
    url = server.add("/f.bin", BODY)
    with_credentials = proxy.base.replace("http://", f"http://user:{secret}@")
    proc = cli(url, "-d", "dl", "-v", "--retries", "0", "--report", "report.json",
               env=proxy_env(with_credentials))

    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "dl" / "f.bin").read_bytes() == BODY
    [(_, headers)] = proxy.seen
    assert headers.get("Proxy-Authorization", "").startswith("Basic ")
    assert "Proxy-Authorization" not in server.requests[0].headers  # not passed on
    assert secret not in proc.stderr + proc.stdout
    assert secret not in json.dumps(json.loads((tmp_path / "report.json").read_text()))
