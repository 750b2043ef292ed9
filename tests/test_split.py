"""``--split N``: one file in byte ranges over several connections, against
real loopback servers: byte-exact files, If-Range on every range, resuming
per range after SIGKILL, a file that changes mid-split, servers without
ranges, -P, --per-host and the option checks."""
from __future__ import annotations

import hashlib
import json
import re
import signal
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from downloader import split
from downloader.runs import run
from downloader.entries import from_library
from downloader.events import Progress, Started
from downloader.progress import Reporter
from downloader.settings import Settings
from downloader.spans import gaps, merge, pieces, split_validator
from helpers import fetch, only, requests_for
from httpserver import FaultServer, make_body
from test_signals import interrupt, popen, wait_for

SIZE = 4 * 1024 * 1024
BODY = make_body(SIZE, seed=21)
NEW_BODY = make_body(SIZE, seed=22)
SPLIT = {"workers": 4, "split": 4, "min_split_size": "1M"}


def ranges(server: FaultServer, path: str) -> list[tuple[int, str | None]]:
    """(first byte, If-Range) of each request for ``path`` (-1: no Range)."""
    found = []
    for request in requests_for(server, path):
        match = re.fullmatch(r"bytes=(\d+)-\d*", request.headers.get("Range") or "")
        found.append((int(match.group(1)) if match else -1, request.headers.get("If-Range")))
    return found


def split_record(dest: Path) -> list[list[int]] | None:
    """The finished ranges the state database holds for the one split file."""
    db = dest / ".downloader" / "state.db"
    if not db.exists():
        return None
    with sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True) as conn:
        try:
            rows = conn.execute("SELECT done FROM splits").fetchall()
        except sqlite3.OperationalError:  # not created yet
            return None
    return json.loads(rows[0][0]) if rows else None


# -- pure pieces ---------------------------------------------------------------

@pytest.mark.parametrize("spans, merged", [
    ([], ()),
    ([(5, 9), (0, 5)], ((0, 9),)),
    ([(0, 3), (2, 4), (6, 8), (8, 8)], ((0, 4), (6, 8))),
])
def test_merge(spans, merged):
    assert merge(spans) == merged


@pytest.mark.parametrize("total, done, missing", [
    (10, [], [(0, 10)]),
    (10, [(0, 10)], []),
    (10, [(2, 4), (6, 8)], [(0, 2), (4, 6), (8, 10)]),
    (10, [(0, 4), (3, 10)], []),
])
def test_gaps(total, done, missing):
    assert gaps(total, done) == missing


def test_pieces_cover_the_gaps_in_order():
    cut = pieces([(0, 1000), (2000, 2100)], 4, smallest=100)
    assert merge(cut) == ((0, 1000), (2000, 2100))
    assert len(cut) == 5 and all(end - start <= 250 for start, end in cut)
    assert pieces([(0, 1000)], 8, smallest=400) == [(0, 500), (500, 1000)]
    assert pieces([], 4) == []


@pytest.mark.parametrize("headers, validator", [
    ({"ETag": '"a"'}, ("ETag", '"a"')),
    ({"ETag": 'W/"a"'}, None),
    ({"Last-Modified": "Mon, 01 Jan 2024 00:00:00 GMT",
      "Date": "Mon, 01 Jan 2024 00:00:05 GMT"}, ("Last-Modified", "Mon, 01 Jan 2024 00:00:00 GMT")),
    # Changed within the second the reply was sent: Last-Modified is weak.
    ({"Last-Modified": "Mon, 01 Jan 2024 00:00:00 GMT",
      "Date": "Mon, 01 Jan 2024 00:00:00 GMT"}, None),
    ({"Last-Modified": "Mon, 01 Jan 2024 00:00:00 GMT"}, None),
    ({}, None),
])
def test_split_needs_a_strong_validator(headers, validator):
    assert split_validator(headers) == validator


# -- against a server ------------------------------------------------------------

def test_split_download_is_byte_exact_and_every_range_carries_if_range(server, tmp_path):
    url = server.add("/big.bin", BODY, etag='"v1"')
    result = only(fetch([url], tmp_path, **SPLIT))
    assert result.status == "downloaded", result.error
    assert (tmp_path / "big.bin").read_bytes() == BODY
    assert result.sha256 is None  # no digest asked for: the file is not read back
    assert result.bytes == SIZE
    assert result.http_status == 200  # the first reply's: it said Accept-Ranges
    asked = ranges(server, "/big.bin")
    assert asked[0] == (-1, None)  # a plain GET, read for the first range only
    assert len(asked) == 4
    assert sorted(start for start, _ in asked) == [-1, SIZE // 4, SIZE // 2, 3 * SIZE // 4]
    assert all(if_range == '"v1"' for _, if_range in asked[1:])
    assert not (tmp_path / "big.bin.part").exists()
    assert split_record(tmp_path) is None  # landed: nothing left to resume


def test_sha256_is_checked_on_the_assembled_file(server, tmp_path):
    url = server.add("/big.bin", BODY, etag='"v1"')
    good = hashlib.sha256(BODY).hexdigest()
    assert only(fetch([{"url": url, "sha256": good}], tmp_path, **SPLIT)).ok
    wrong = only(fetch([{"url": url, "sha256": "0" * 64, "out": "other.bin"}], tmp_path, **SPLIT))
    assert wrong.status == "failed" and "sha256" in wrong.error
    assert not (tmp_path / "other.bin").exists() and not (tmp_path / "other.bin.part").exists()
    assert len(ranges(server, "/big.bin")) == 8  # both were split


def test_small_files_and_busy_pools_are_not_split(server, tmp_path):
    url = server.add("/big.bin", BODY, etag='"v1"')
    assert only(fetch([url], tmp_path, workers=4, split=4, min_split_size="5M")).ok
    assert only(fetch([url], tmp_path / "one", workers=1, split=4, min_split_size="1M")).ok
    assert ranges(server, "/big.bin") == [(-1, None), (-1, None)]  # one stream each
    assert (tmp_path / "one" / "big.bin").read_bytes() == BODY


def test_a_weak_etag_means_one_stream(server, tmp_path):
    url = server.add("/big.bin", BODY, etag='W/"v1"')
    assert only(fetch([url], tmp_path, **SPLIT)).ok
    assert ranges(server, "/big.bin") == [(-1, None)]
    assert (tmp_path / "big.bin").read_bytes() == BODY


def test_a_range_that_fails_is_retried_on_its_own(server, tmp_path):
    # The first body (read for the first range) is cut after 300 KB.
    url = server.add("/big.bin", BODY, etag='"v1"', drop_after=300_000)
    result = only(fetch([url], tmp_path, **SPLIT))
    assert result.status == "downloaded", result.error
    assert (tmp_path / "big.bin").read_bytes() == BODY
    starts = [start for start, _ in ranges(server, "/big.bin")]
    assert starts.count(-1) == 1  # not started over
    resumed = [start for start in starts if 0 < start < SIZE // 4]
    assert len(resumed) == 1 and resumed[0] <= 300_000  # from where it was cut


def test_a_server_that_offers_no_ranges_is_read_in_one_stream(server, tmp_path):
    url = server.add("/big.bin", BODY, etag='"v1"', ranges=False)  # no Accept-Ranges
    result = only(fetch([url], tmp_path, **SPLIT))
    assert result.status == "downloaded" and result.http_status == 200
    assert ranges(server, "/big.bin") == [(-1, None)]
    assert (tmp_path / "big.bin").read_bytes() == BODY


def test_a_200_to_a_range_falls_back_to_one_stream(server, tmp_path):
    # Says Accept-Ranges, then answers every Range with the whole file.
    url = server.add("/big.bin", BODY, etag='"v1"', ranges=False,
                     headers={"Accept-Ranges": "bytes"})
    result = only(fetch([url], tmp_path, **SPLIT))
    assert result.status == "downloaded", result.error
    assert (result.attempts, result.http_status) == (1, 200)
    assert (tmp_path / "big.bin").read_bytes() == BODY
    asked = ranges(server, "/big.bin")
    assert asked[0] == asked[-1] == (-1, None)  # split, refused, then one stream
    assert all(if_range == '"v1"' for _, if_range in asked[1:-1])
    assert split_record(tmp_path) is None


@pytest.mark.parametrize("ignore_if_range", [False, True], ids=["200", "ignores-If-Range"])
def test_a_file_that_changes_mid_split_starts_over(server, tmp_path, ignore_if_range):
    """The file changes while two ranges are held: honouring If-Range, the
    server answers them with a 200 of the new file; ignoring it, with a 206
    of the new file's bytes (and its new ETag). Either way the download
    starts over and lands the new file, never a mix."""
    gate = threading.Event()
    url = server.add("/big.bin", BODY, etag='"v1"', gate=gate, gate_from=SIZE // 2,
                     ignore_if_range=ignore_if_range)
    outcome: list[Any] = []
    thread = threading.Thread(target=lambda: outcome.append(fetch([url], tmp_path, **SPLIT)))
    thread.start()
    try:
        server.wait_held("/big.bin", 2)
        server.set_body("/big.bin", NEW_BODY, etag='"v2"')
    finally:
        gate.set()
        thread.join(30)
    result = only(outcome[0])
    assert result.status == "downloaded", result.error
    assert result.attempts == 2
    assert (tmp_path / "big.bin").read_bytes() == NEW_BODY
    if_ranges = [if_range for _, if_range in ranges(server, "/big.bin")]
    assert if_ranges.count(None) == 2  # two fresh starts
    assert '"v2"' in if_ranges  # the second time, of the new version


def test_split_against_python_http_server_without_ranges(tmp_path, cli):
    served = tmp_path / "served"
    served.mkdir()
    (served / "big.bin").write_bytes(BODY)
    server = subprocess.Popen([sys.executable, "-u", "-m", "http.server", "0", "--bind",
                               "127.0.0.1", "--directory", str(served)],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert server.stdout is not None
        port = re.search(r"port (\d+)", server.stdout.readline()).group(1)
        done = cli(f"http://127.0.0.1:{port}/big.bin", "-d", "dl", "--split", "4",
                   "--min-split-size", "1M", "-j", "4")
    finally:
        server.terminate()
        server.wait(10)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "dl" / "big.bin").read_bytes() == BODY


def test_split_with_processes(server, tmp_path, cli):
    urls = [server.add("/a.bin", BODY, etag='"a"'), server.add("/b.bin", NEW_BODY, etag='"b"')]
    done = cli(*urls, "-d", "dl", "-P", "2", "-j", "3", "--split", "3",
               "--min-split-size", "1M")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "dl" / "a.bin").read_bytes() == BODY
    assert (tmp_path / "dl" / "b.bin").read_bytes() == NEW_BODY
    for path, tag in (("/a.bin", '"a"'), ("/b.bin", '"b"')):
        asked = ranges(server, path)
        assert len(asked) == 3 and all(if_range == tag for _, if_range in asked[1:])


def test_split_with_processes_and_per_host(tmp_path, cli):
    # Two hosts (two ports), one file each, one per process: each file may
    # borrow one more connection, through the parent's count.
    with FaultServer() as other:
        with FaultServer() as first:
            urls = [first.add("/a.bin", BODY, etag='"a"'),
                    other.add("/b.bin", NEW_BODY, etag='"b"')]
            done = cli(*urls, "-d", "dl", "-P", "2", "-j", "4", "--split", "4",
                       "--per-host", "2", "--min-split-size", "1M")
            assert done.returncode == 0, done.stderr
            assert len(ranges(first, "/a.bin")) == len(ranges(other, "/b.bin")) == 4
    assert (tmp_path / "dl" / "a.bin").read_bytes() == BODY
    assert (tmp_path / "dl" / "b.bin").read_bytes() == NEW_BODY


def test_max_time_applies_to_the_file_as_a_whole(server, tmp_path):
    url = server.add("/big.bin", BODY, etag='"v1"', rate=256 * 1024)  # each range: 4 s
    result = only(fetch([url], tmp_path, max_time=0.5, **SPLIT))
    assert result.status == "failed"
    assert result.error == "took longer than --max-time 0.5s"
    assert len(ranges(server, "/big.bin")) == 4  # it was split
    assert not (tmp_path / "big.bin").exists()


def test_per_host_counts_range_connections(server, tmp_path, monkeypatch):
    # Slow enough that the ranges overlap.
    url = server.add("/big.bin", BODY, etag='"v1"', rate=8 * 1024 * 1024)
    # Ranges in flight at once, seen from the client: the server still
    # counts the first reply for a moment after the client closed it.
    lock, now, most = threading.Lock(), [0], [0]
    original = split.SplitFile._piece

    def counted(self: Any, *args: Any) -> None:
        with lock:
            now[0] += 1
            most[0] = max(most[0], now[0])
        try:
            original(self, *args)
        finally:
            with lock:
                now[0] -= 1

    monkeypatch.setattr(split.SplitFile, "_piece", counted)
    result = only(fetch([url], tmp_path, workers=8, split=4, min_split_size="1M", per_host=2))
    assert result.ok
    assert (tmp_path / "big.bin").read_bytes() == BODY
    assert len(ranges(server, "/big.bin")) == 4  # the owner and its one helper took turns
    assert most[0] == 2


def test_per_host_taken_by_files_leaves_no_room_for_ranges(server, tmp_path):
    # Slow enough that neither ends before the other's first reply.
    urls = [server.add(f"/{name}.bin", BODY, etag=f'"{name}"', rate=8 * 1024 * 1024)
            for name in "ab"]
    summary = fetch(urls, tmp_path, workers=8, split=4, min_split_size="1M", per_host=2)
    assert summary.ok
    assert [len(ranges(server, f"/{name}.bin")) for name in "ab"] == [1, 1]
    assert server.max_in_flight <= 2


class _Recorder(Reporter):
    def __init__(self) -> None:
        self.events: list[Any] = []
        self.ends: list[tuple[int | None, int]] = []

    def handle(self, event: Any) -> None:
        self.events.append(event)

    def finished(self, worker: int | None, result: Any, unreported: int = 0) -> None:
        self.ends.append((worker, unreported))


def test_one_display_line_per_file(server, tmp_path):
    url = server.add("/big.bin", BODY, etag='"v1"')
    recorder = _Recorder()
    summary, interruption = run(from_library([url]), Settings.build(tmp_path, **SPLIT), recorder)
    assert interruption is None and summary.ok
    (started,) = [e for e in recorder.events if isinstance(e, Started)]
    assert (started.total, started.offset) == (SIZE, 0)
    progress = [e for e in recorder.events if isinstance(e, Progress)]
    assert {e.worker for e in progress} == {started.worker}  # every range, one line
    (end,) = recorder.ends
    assert end[0] == started.worker
    assert sum(e.nbytes for e in progress) + end[1] == SIZE
    assert len(ranges(server, "/big.bin")) == 4


# -- interrupted -------------------------------------------------------------------

def _held_split(server: FaultServer, tmp_path: Path, gate: threading.Event,
                *extra: str) -> tuple[subprocess.Popen, str]:
    """A CLI run whose ranges from the middle on are held at ``gate``, once
    the first two ranges are recorded as done."""
    url = server.add("/big.bin", BODY, etag='"v1"', gate=gate, gate_from=SIZE // 2)
    proc = popen(tmp_path, "-m", "downloader", url, "-d", "dl", "-j", "4", "--split", "4",
                 "--min-split-size", "1M", "--progress", "none", *extra)
    server.wait_held("/big.bin", 2)
    wait_for(lambda: split_record(tmp_path / "dl") == [[0, SIZE // 2]], proc,
             "the first half recorded")
    return proc, url


def test_sigkill_then_resume_per_range(server, tmp_path, cli):
    gate = threading.Event()
    proc, url = _held_split(server, tmp_path, gate)
    proc.kill()  # SIGKILL: no cleanup at all
    proc.wait(10)
    part = tmp_path / "dl" / "big.bin.part"
    assert part.stat().st_size == SIZE  # preallocated
    assert part.read_bytes()[: SIZE // 2] == BODY[: SIZE // 2]
    gate.set()
    server.reset_stats()

    done = cli(url, "-d", "dl", "-j", "4", "--split", "4", "--min-split-size", "1M")

    assert done.returncode == 0, done.stderr
    assert (tmp_path / "dl" / "big.bin").read_bytes() == BODY
    asked = ranges(server, "/big.bin")
    assert asked and all(start >= SIZE // 2 and if_range == '"v1"' for start, if_range in asked)
    assert split_record(tmp_path / "dl") is None


def test_ctrl_c_keeps_the_part_and_its_ranges(server, tmp_path):
    gate = threading.Event()
    proc, _ = _held_split(server, tmp_path, gate)
    try:
        _, err, took = interrupt(proc, signal.SIGINT)
    finally:
        gate.set()
    assert proc.returncode == 130, err
    assert took < 5
    assert "interrupted" in err
    assert (tmp_path / "dl" / "big.bin.part").stat().st_size == SIZE
    assert split_record(tmp_path / "dl") == [[0, SIZE // 2]]
    assert not (tmp_path / "dl" / "big.bin").exists()


# -- the options ---------------------------------------------------------------------

@pytest.mark.parametrize("args, message", [
    (["--split", "0"], "--split must be 1-16, got 0"),
    (["--split", "17"], "--split must be 1-16, got 17"),
    (["--split", "many"], "--split: must be a whole number, got 'many'"),
    (["--min-split-size", "0"], "--min-split-size must be positive, got '0'"),
    (["--min-split-size", "big"], "--min-split-size must look like 500K, 20M or 3G"),
])
def test_bad_split_options_are_one_line_usage_errors(cli, args, message):
    done = cli("http://127.0.0.1:9/x", *args)
    assert done.returncode == 2
    assert message in done.stderr
    assert len([line for line in done.stderr.splitlines() if "error" in line]) == 1


@pytest.mark.parametrize("options", [{"split": 0}, {"split": True}, {"split": "4"},
                                     {"min_split_size": None}, {"min_split_size": -1}])
def test_bad_split_keywords_raise_value_error(tmp_path, options):
    with pytest.raises(ValueError):
        Settings.build(tmp_path, **options)


def test_split_keywords(tmp_path):
    settings = Settings.build(tmp_path, split=8, min_split_size="1M")
    assert (settings.split, settings.min_split_size) == (8, 1024 * 1024)
    assert (Settings.build(tmp_path).split, Settings.build(tmp_path).min_split_size) == \
        (8, 20 * 1024 * 1024)

