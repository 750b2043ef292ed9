"""Resilience against a misbehaving server: the real FaultServer, the real engine.

Every test checks what a user would: the bytes (or no file) at the final
path, the Result, the requests the server saw, the exit status.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any, Callable

import pytest

from httpserver import make_body
from helpers import fetch, only, requests_for

REPO_ROOT = Path(__file__).resolve().parent.parent
BODY = make_body(40_000, seed=1)


def wait_for(condition: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def part_size(part: Path) -> int:
    try:
        return part.stat().st_size
    except FileNotFoundError:
        return 0


def closed_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- retryable and final HTTP statuses -------------------------------------

@pytest.mark.parametrize("route, retries, status, attempts, error", [
    pytest.param(dict(fail_times=2, fail_status=503), 3, "downloaded", 3, None, id="503x2-then-200"),
    pytest.param(dict(fail_times=5, fail_status=503), 2, "failed", 3, "503", id="503x5-gives-up"),
    pytest.param(dict(fail_times=1, fail_status=500), 1, "downloaded", 2, None, id="500-then-200"),
    pytest.param(dict(status=404), 3, "failed", 1, "404", id="404-not-retried"),
    pytest.param(dict(status=403), 3, "failed", 1, "403", id="403-not-retried"),
])
def test_http_status_matrix(server, tmp_path, route, retries, status, attempts, error):
    url = server.add("/f.bin", BODY, **route)
    result = only(fetch([url], tmp_path / "dl", retries=retries))

    assert (result.status, result.attempts) == (status, attempts)
    assert server.hits("/f.bin") == attempts
    target = tmp_path / "dl" / "f.bin"
    if status == "downloaded":
        assert result.error is None
        assert result.path == target
        assert target.read_bytes() == BODY
    else:
        assert error in result.error
        assert not target.exists()
        assert not (tmp_path / "dl" / "f.bin.part").exists()


@pytest.mark.parametrize("route, args, code, message", [
    pytest.param(dict(fail_times=2, fail_status=503), ["--retries", "3"], 0, None, id="recovers"),
    pytest.param(dict(fail_times=5, fail_status=503), ["--retries", "2"], 1, "503", id="gives-up"),
    pytest.param(dict(status=404), [], 1, "404", id="404"),
])
def test_http_status_exit_codes(server, tmp_path, cli, route, args, code, message):
    url = server.add("/f.bin", BODY, **route)
    proc = cli(url, "-d", "dl", "--retry-wait", "0.01", "-q", *args)

    assert proc.returncode == code, proc.stderr
    assert proc.stdout == ""
    target = tmp_path / "dl" / "f.bin"
    if code == 0:
        assert target.read_bytes() == BODY
        assert proc.stderr == ""  # -q: nothing on full success
    else:
        assert not target.exists()
        assert url in proc.stderr and message in proc.stderr


def test_connection_refused_is_retried_then_fails(tmp_path):
    url = f"http://127.0.0.1:{closed_port()}/f.bin"
    result = only(fetch([url], tmp_path / "dl", retries=2))

    assert result.status == "failed"
    assert result.attempts == 3
    assert "connection" in result.error.lower()
    assert not (tmp_path / "dl" / "f.bin").exists()


# -- Retry-After -----------------------------------------------------------

def test_429_retry_after_is_honoured(server, tmp_path):
    url = server.add("/f.bin", BODY, fail_times=1, fail_status=429, retry_after=1)
    result = only(fetch([url], tmp_path / "dl", retries=3))

    assert (result.status, result.attempts) == ("downloaded", 2)
    assert (tmp_path / "dl" / "f.bin").read_bytes() == BODY
    first, second = requests_for(server, "/f.bin")
    assert second.time - first.time >= 0.9


class LineWatcher:
    """A stand-in for stderr that hands each complete line to ``on_line``:
    the library's ``progress="log"`` output, seen as it is written."""

    def __init__(self, on_line: Callable[[str], None]) -> None:
        self.on_line = on_line
        self.pending = ""

    def write(self, text: str) -> int:
        self.pending += text
        *lines, self.pending = self.pending.split("\n")
        for line in lines:
            self.on_line(line)
        return len(text)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False


def test_retry_after_pauses_the_whole_host(server, tmp_path, monkeypatch):
    """/a's 503 + Retry-After: 1 is sent while /b's first request is held in
    flight; /b's answer (a plain 500, retried after 0.01 s) is let go only
    once the run has announced /a's retry, so the host pause is already on
    when /b asks again: only that pause can hold /b back a whole second."""
    a_gate, b_gate = threading.Event(), threading.Event()
    url_a = server.add("/a", BODY, fail_times=1, fail_status=503, retry_after=1, gate=a_gate)
    url_b = server.add("/b", BODY[::-1], fail_times=1, fail_status=500, gate=b_gate)
    released: dict[str, Any] = {}

    def release_a() -> None:
        try:
            server.wait_held("/b")
        except AssertionError as exc:
            released["error"] = exc
        released["a"] = time.monotonic()  # no earlier than the pause it causes
        a_gate.set()

    def on_line(line: str) -> None:
        if url_a in line and "b" not in released:  # "retry <url_a> in 1.0s: HTTP 503 ..."
            released["b"] = time.monotonic()
            b_gate.set()

    monkeypatch.setattr(sys, "stderr", LineWatcher(on_line))
    helper = threading.Thread(target=release_a)
    helper.start()
    try:
        summary = fetch([url_a, url_b], tmp_path / "dl", workers=2, retries=3, progress="log")
    finally:
        a_gate.set()
        b_gate.set()
        helper.join()

    assert "error" not in released, released["error"]
    assert "b" in released, "the run never announced /a's retry"
    assert [r.status for r in summary] == ["downloaded", "downloaded"]
    assert (tmp_path / "dl" / "a").read_bytes() == BODY
    assert (tmp_path / "dl" / "b").read_bytes() == BODY[::-1]
    a_first, a_retry = requests_for(server, "/a")
    b_first, b_retry = requests_for(server, "/b")
    assert b_first.time < released["a"]  # /b was in flight before the host was paused
    # /b's 500 went out well inside the pause, so its own 0.01 s backoff would
    # have had it back long before the second was up.
    assert released["b"] - released["a"] < 0.9
    assert b_retry.time - released["a"] >= 0.99
    assert a_retry.time - released["a"] >= 0.99


# -- cut transfers and resume within a run ---------------------------------

DROP_AT = 15_000


@pytest.mark.parametrize("validators, if_range", [
    pytest.param(dict(etag='"v1"'), '"v1"', id="etag"),
    pytest.param(dict(last_modified="Wed, 21 Oct 2015 07:28:00 GMT"),
                 "Wed, 21 Oct 2015 07:28:00 GMT", id="last-modified"),
    pytest.param(dict(etag='"v1"', last_modified="Wed, 21 Oct 2015 07:28:00 GMT"), '"v1"',
                 id="etag-preferred"),
])
def test_dropped_connection_resumes_with_range(server, tmp_path, validators, if_range):
    url = server.add("/f.bin", BODY, drop_after=DROP_AT, **validators)
    result = only(fetch([url], tmp_path / "dl", retries=3))

    assert (result.status, result.attempts) == ("downloaded", 2)
    assert (tmp_path / "dl" / "f.bin").read_bytes() == BODY
    assert not (tmp_path / "dl" / "f.bin.part").exists()
    first, second = requests_for(server, "/f.bin")
    assert first.headers.get("Range") is None
    assert second.headers.get("Range") == f"bytes={DROP_AT}-"
    assert second.headers.get("If-Range") == if_range


def test_dropped_connection_without_validator_starts_over(server, tmp_path):
    url = server.add("/f.bin", BODY, drop_after=DROP_AT)
    result = only(fetch([url], tmp_path / "dl", retries=3))

    assert (result.status, result.attempts) == ("downloaded", 2)
    assert (tmp_path / "dl" / "f.bin").read_bytes() == BODY
    second = requests_for(server, "/f.bin")[1]
    assert second.headers.get("Range") is None  # nothing to validate a resume with


def test_changed_file_between_attempts_starts_over(server, tmp_path):
    """The .part holds the old version; If-Range no longer matches, the server
    sends the whole new file, and that is what lands."""
    url = server.add("/f.bin", BODY, etag='"v1"', drop_after=DROP_AT)
    first = only(fetch([url], tmp_path / "dl", retries=0))
    assert first.status == "failed"
    assert (tmp_path / "dl" / "f.bin.part").read_bytes() == BODY[:DROP_AT]

    new_body = make_body(30_000, seed=2)
    server.set_body("/f.bin", new_body, etag='"v2"')
    result = only(fetch([url], tmp_path / "dl"))

    assert result.status == "downloaded"
    assert (tmp_path / "dl" / "f.bin").read_bytes() == new_body
    retry = requests_for(server, "/f.bin")[-1]
    assert retry.headers.get("Range") == f"bytes={DROP_AT}-"
    assert retry.headers.get("If-Range") == '"v1"'


def test_content_length_longer_than_body_fails_without_a_file(server, tmp_path):
    url = server.add("/f.bin", BODY, lie_length=len(BODY) + 1000)
    result = only(fetch([url], tmp_path / "dl", retries=1))

    assert (result.status, result.attempts) == ("failed", 2)
    assert not (tmp_path / "dl" / "f.bin").exists()


# -- timeouts and --max-time ----------------------------------------------

@pytest.mark.parametrize("stall", ["stall", "stall_before_headers"])
def test_silent_server_times_out(server, tmp_path, stall):
    url = server.add("/f.bin", BODY, **{stall: 30})
    started = time.monotonic()
    result = only(fetch([url], tmp_path / "dl", timeout=1, retries=1))

    assert time.monotonic() - started < 5
    assert (result.status, result.attempts) == ("failed", 2)
    assert "timed out" in result.error
    assert not (tmp_path / "dl" / "f.bin").exists()


def test_drip_feed_is_cut_by_max_time(server, tmp_path):
    """Never silent for --timeout, so only --max-time can stop it."""
    url = server.add("/f.bin", BODY[:1000], drip=0.3)
    started = time.monotonic()
    result = only(fetch([url], tmp_path / "dl", timeout=5, max_time=1.5, retries=3))

    assert time.monotonic() - started < 4
    assert result.status == "failed"
    assert "max-time" in result.error
    assert not (tmp_path / "dl" / "f.bin").exists()


# -- --max-size ----------------------------------------------------------------

def test_max_size_below_content_length_fails_before_reading(server, tmp_path):
    url = server.add("/f.bin", BODY)
    result = only(fetch([url], tmp_path / "dl", max_size=len(BODY) - 1, retries=3))

    assert (result.status, result.attempts) == ("failed", 1)
    assert result.bytes == 0
    assert "max-size" in result.error
    assert not (tmp_path / "dl" / "f.bin").exists()
    assert not (tmp_path / "dl" / "f.bin.part").exists()


@pytest.mark.parametrize("framing", ["chunked", "no_length"])
def test_max_size_stops_a_body_of_unknown_length(server, tmp_path, framing):
    url = server.add("/f.bin", BODY, **{framing: True})
    result = only(fetch([url], tmp_path / "dl", max_size="10K", retries=3))

    assert (result.status, result.attempts) == ("failed", 1)
    assert "max-size" in result.error
    assert not (tmp_path / "dl" / "f.bin").exists()
    assert not (tmp_path / "dl" / "f.bin.part").exists()


# -- resume across runs ------------------------------------------------------

SLOW_BODY = make_body(400_000, seed=3)


def start_cli(tmp_path: Path, *args: str) -> subprocess.Popen:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    return subprocess.Popen([sys.executable, "-m", "downloader", *args], cwd=tmp_path, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def kill_mid_transfer(tmp_path: Path, url: str, part: Path) -> bytes:
    """Run the CLI until ``part`` holds some bytes, SIGKILL it; return the .part."""
    proc = start_cli(tmp_path, url, "-d", "dl", "-q")
    try:
        wait_for(lambda: part_size(part) >= 16_384 or proc.poll() is not None, what=".part bytes")
        assert proc.poll() is None, "the download finished before it could be killed"
    finally:
        proc.kill()
        proc.wait(timeout=10)
    return part.read_bytes()


@pytest.mark.parametrize("resume", [True, False], ids=["resume", "no-resume"])
def test_killed_run_is_resumed_by_the_next(server, tmp_path, cli, resume):
    url = server.add("/big.bin", SLOW_BODY, etag='"big-1"', rate=100_000)
    part = tmp_path / "dl" / "big.bin.part"
    kept = kill_mid_transfer(tmp_path, url, part)
    assert kept and SLOW_BODY.startswith(kept)
    assert not (tmp_path / "dl" / "big.bin").exists()

    server.add("/big.bin", SLOW_BODY, etag='"big-1"')  # full speed for the rerun
    proc = cli(url, "-d", "dl", "--retry-wait", "0.01", *([] if resume else ["--no-resume"]))

    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "dl" / "big.bin").read_bytes() == SLOW_BODY
    assert not part.exists()
    rerun = requests_for(server, "/big.bin")[-1]
    if resume:
        assert rerun.headers.get("Range") == f"bytes={len(kept)}-"
        assert rerun.headers.get("If-Range") == '"big-1"'
    else:
        assert rerun.headers.get("Range") is None


def test_part_of_a_content_disposition_name_is_resumed(server, tmp_path, cli):
    """The name came from the server, so only the state database can tie
    report.bin.part to the URL on the next run."""
    cd = 'attachment; filename="report.bin"'
    url = server.add("/get", SLOW_BODY, etag='"r1"', content_disposition=cd, rate=100_000) + "?id=7"
    part = tmp_path / "dl" / "report.bin.part"
    kept = kill_mid_transfer(tmp_path, url, part)

    server.add("/get", SLOW_BODY, etag='"r1"', content_disposition=cd)
    proc = cli(url, "-d", "dl", "--retry-wait", "0.01")

    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "dl" / "report.bin").read_bytes() == SLOW_BODY
    assert sorted(p.name for p in (tmp_path / "dl").iterdir()) == [".downloader", "report.bin"]
    rerun = requests_for(server, "/get")[-1]
    assert rerun.headers.get("Range") == f"bytes={len(kept)}-"
    assert rerun.headers.get("If-Range") == '"r1"'


# -- --if-exists update, the state database, mtimes --------------------------

RFC850_DATE = "Wednesday, 21-Oct-15 07:28:00 GMT"  # valid, but not how a client would format it


@pytest.mark.parametrize("validators, header, value", [
    pytest.param(dict(etag='"abc-1"'), "If-None-Match", '"abc-1"', id="etag"),
    pytest.param(dict(etag='W/"weak-7"'), "If-None-Match", 'W/"weak-7"', id="weak-etag"),
    pytest.param(dict(last_modified=RFC850_DATE), "If-Modified-Since", RFC850_DATE,
                 id="last-modified"),
])
def test_update_gets_304_and_leaves_the_file_alone(server, tmp_path, validators, header, value):
    url = server.add("/f.bin", BODY, **validators)
    assert only(fetch([url], tmp_path / "dl")).status == "downloaded"
    target = tmp_path / "dl" / "f.bin"
    before = target.stat()

    result = only(fetch([url], tmp_path / "dl", if_exists="update"))

    assert (result.status, result.http_status) == ("skipped", 304)
    assert result.bytes == 0
    conditional = requests_for(server, "/f.bin")[-1]
    assert conditional.headers.get(header) == value
    after = target.stat()
    assert (after.st_mtime_ns, after.st_ino) == (before.st_mtime_ns, before.st_ino)
    assert target.read_bytes() == BODY


def test_update_fetches_a_changed_file(server, tmp_path):
    url = server.add("/f.bin", BODY, etag='"v1"')
    fetch([url], tmp_path / "dl")
    new_body = make_body(1234, seed=9)
    server.set_body("/f.bin", new_body, etag='"v2"')

    result = only(fetch([url], tmp_path / "dl", if_exists="update"))

    assert (result.status, result.http_status) == ("downloaded", 200)
    assert (tmp_path / "dl" / "f.bin").read_bytes() == new_body


def test_corrupt_state_database_warns_once_and_loses_nothing(server, tmp_path, cli):
    url_a = server.add("/a.bin", BODY, etag='"a"')
    url_b = server.add("/b.bin", BODY[::-1], etag='"b"')
    assert cli(url_a, "-d", "dl", "-q").returncode == 0
    (tmp_path / "dl" / ".downloader" / "state.db").write_bytes(b"this is not sqlite\0" * 100)

    proc = cli(url_a, url_b, "-d", "dl", "--retry-wait", "0.01", "--progress", "none")

    assert proc.returncode == 0, proc.stderr
    warnings = [line for line in proc.stderr.splitlines() if "state database" in line.lower()]
    assert len(warnings) == 1, proc.stderr
    assert (tmp_path / "dl" / "a.bin").read_bytes() == BODY
    assert (tmp_path / "dl" / "b.bin").read_bytes() == BODY[::-1]
    assert not (tmp_path / "dl" / "a.1.bin").exists()


def test_last_modified_sets_the_file_mtime(server, tmp_path):
    stamp = "Wed, 21 Oct 2015 07:28:00 GMT"
    url = server.add("/f.bin", BODY, last_modified=stamp)
    result = only(fetch([url], tmp_path / "dl"))

    assert result.status == "downloaded"
    mtime = (tmp_path / "dl" / "f.bin").stat().st_mtime
    assert mtime == parsedate_to_datetime(stamp).timestamp()


def test_report_records_retries(server, tmp_path, cli):
    """The JSON report tells the same story as the Result."""
    url = server.add("/f.bin", BODY, fail_times=2, fail_status=503)
    proc = cli(url, "-d", "dl", "--retry-wait", "0.01", "-q", "--report", "-")

    assert proc.returncode == 0, proc.stderr
    (entry,) = json.loads(proc.stdout)["results"]
    assert (entry["status"], entry["attempts"], entry["http_status"]) == ("downloaded", 3, 200)
    assert entry["bytes"] == len(BODY)


# -- regressions found in review -----------------------------------------

def test_max_time_cut_of_a_body_without_length_is_no_file(server, tmp_path):
    """With no Content-Length, the socket the watchdog shuts down looks like
    the end of the body; it must not be taken for one."""
    url = server.add("/f.bin", make_body(2_000_000), no_length=True, rate=200_000)
    result = only(fetch([url], tmp_path / "dl", max_time=1, retries=0))

    assert result.status == "failed"
    assert "max-time" in result.error
    assert not (tmp_path / "dl" / "f.bin").exists()


def test_max_time_bounds_a_host_pause(server, tmp_path):
    """A Retry-After longer than --max-time ends the file now, not later."""
    url = server.add("/f.bin", BODY, fail_times=3, retry_after=30)
    started = time.monotonic()
    result = only(fetch([url], tmp_path / "dl", max_time=2))

    assert time.monotonic() - started < 3
    assert result.status == "failed"
    assert "503" in result.error and "max-time" in result.error


def test_update_refetches_a_local_file_that_fails_its_sha256(server, tmp_path):
    import hashlib

    url = server.add("/f.bin", BODY, etag='"v1"')
    entry = {"url": url, "sha256": hashlib.sha256(BODY).hexdigest()}
    assert only(fetch([entry], tmp_path / "dl")).status == "downloaded"
    (tmp_path / "dl" / "f.bin").write_bytes(b"corrupted")

    result = only(fetch([entry], tmp_path / "dl", if_exists="update"))

    assert result.status == "downloaded"
    assert (tmp_path / "dl" / "f.bin").read_bytes() == BODY
    assert requests_for(server, "/f.bin")[-1].headers.get("If-None-Match") is None


def test_out_through_a_symlink_creates_nothing_outside(server, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    dest = tmp_path / "dl"
    dest.mkdir()
    (dest / "link").symlink_to(outside)
    url = server.add("/f.bin", BODY)

    result = only(fetch([{"url": url, "out": "link/a/b/c.bin"}], dest))

    assert result.status == "failed"
    assert "outside" in result.error
    assert list(outside.iterdir()) == []


def test_resume_with_an_unquoted_etag_and_last_modified(server, tmp_path):
    """Non-compliant but common: ETag without quotes, sent with Last-Modified.
    If-Range carries the ETag, and the 206 is checked against the ETag."""
    url = server.add("/f.bin", BODY, etag="abc123", drop_after=10_000,
                     last_modified="Wed, 01 Jan 2025 00:00:00 GMT")
    result = only(fetch([url], tmp_path / "dl"))

    assert (result.status, result.attempts) == ("downloaded", 2)
    assert (tmp_path / "dl" / "f.bin").read_bytes() == BODY
    retry = requests_for(server, "/f.bin")[-1]
    assert retry.headers.get("Range") == "bytes=10000-"
    assert retry.headers.get("If-Range") == "abc123"
