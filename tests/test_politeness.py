"""--per-host and --limit-rate against real loopback servers."""
from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from downloader import download_all
from httpserver import FaultServer, make_body


@pytest.fixture
def other_server() -> Iterator[FaultServer]:
    """A second origin (another port is another host for the limits)."""
    server = FaultServer().start()
    yield server
    server.stop()


def test_per_host_caps_one_host_without_idling_workers(server: FaultServer,
                                                       other_server: FaultServer,
                                                       tmp_path: Path) -> None:
    slow = [server.add(f"/a{i}", b"a" * 100, delay=0.6) for i in range(8)]
    quick = [other_server.add(f"/b{i}", b"b" * 100, delay=0.3) for i in range(2)]
    started = time.monotonic()
    # The first host's jobs come first in the list: with a plain queue, all
    # four workers would pick them up and the second host would wait.
    summary = download_all(slow + quick, tmp_path / "dest", workers=4, per_host=2,
                           retry_wait=0.01)
    assert summary.ok
    assert server.max_in_flight == 2
    assert other_server.max_in_flight == 2
    # The second host's requests went out while the first was still busy.
    first_b = min(r.time for r in other_server.requests)
    first_a_done = min(r.time for r in server.requests) + 0.6
    assert first_b < first_a_done
    assert time.monotonic() - started >= 0.6 * 4  # 8 slow jobs, 2 at a time


def test_per_host_one_means_one_at_a_time(server: FaultServer, tmp_path: Path) -> None:
    urls = [server.add(f"/x{i}", b"x", delay=0.05) for i in range(6)]
    summary = download_all(urls, tmp_path / "dest", workers=6, per_host=1)
    assert summary.ok
    assert server.max_in_flight == 1


@pytest.mark.parametrize("workers", [1, 4])
def test_limit_rate_caps_the_whole_run(server: FaultServer, tmp_path: Path,
                                       workers: int) -> None:
    size, count, rate = 96 * 1024, 4, 256 * 1024
    bodies = {server.add(f"/r{i}", make_body(size, i)): make_body(size, i) for i in range(count)}
    started = time.monotonic()
    summary = download_all(list(bodies), tmp_path / "dest", workers=workers, limit_rate="256K")
    elapsed = time.monotonic() - started
    assert summary.ok
    for result in summary:
        assert result.path.read_bytes() == bodies[result.url]
    # A cap cannot be beaten: 384 KiB at 256 KiB/s, less the 0.2 s burst.
    assert elapsed >= size * count / rate - 0.2 - 0.05


def test_limit_rate_from_the_command_line(server: FaultServer, cli, tmp_path: Path) -> None:
    url = server.add("/big", make_body(200 * 1024))
    started = time.monotonic()
    result = cli(url, "-d", "dest", "--limit-rate", "100K", "-q")
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "dest" / "big").read_bytes() == make_body(200 * 1024)
    assert elapsed >= 2.0 - 0.2 - 0.05


def test_auto_workers_grow_on_a_latency_bound_list(server: FaultServer, tmp_path: Path) -> None:
    urls = [server.add(f"/w{i}", b"w" * 1000, delay=0.25) for i in range(48)]
    summary = download_all(urls, tmp_path / "dest", workers="auto")
    assert summary.ok and len(summary.downloaded) == 48
    # It starts with two workers and doubles while throughput keeps up.
    assert server.max_in_flight >= 4


WORKER_THREAD = re.compile(r"downloader-\d+")  # the pool's names (downloader/pool.py)


def worker_threads(ignore: frozenset[threading.Thread] = frozenset()) -> set[threading.Thread]:
    """The downloader's worker threads alive now (not the test server's
    handlers), less ``ignore`` (stragglers of earlier tests)."""
    return {t for t in threading.enumerate() if WORKER_THREAD.fullmatch(t.name)} - ignore


def test_thread_count_stays_within_workers(server: FaultServer, tmp_path: Path) -> None:
    # The first four responses are held until the watcher has counted the
    # workers while all four are busy, so it is sure to see the peak.
    gate = threading.Event()
    urls = [server.add(f"/t{i}", b"t" * 1000, gate=gate if i < 4 else None) for i in range(40)]
    earlier = frozenset(worker_threads())
    seen: list[int] = []
    at_peak: list[int] = []
    stop = threading.Event()

    def watch() -> None:
        try:
            for i in range(4):
                server.wait_held(f"/t{i}")
            at_peak.append(len(worker_threads(earlier)))
        finally:
            gate.set()
        while not stop.wait(0.005):
            seen.append(len(worker_threads(earlier)))

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        summary = download_all(urls, tmp_path / "dest", workers=4)
    finally:
        stop.set()
        gate.set()
        watcher.join()
    assert summary.ok
    assert at_peak == [4]
    assert max(seen, default=0) <= 4
    assert worker_threads(earlier) == set()  # the run joined its workers before returning
