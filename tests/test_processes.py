"""``-P N``: worker processes, each with the thread pool. The parent keeps
one plan, one set of names, one per-host budget, one report; a child that
dies loses nothing; Ctrl-C stops them all."""
from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

from downloader import download_all
from httpserver import make_body
from test_signals import interrupt, popen, wait_for

pytestmark = pytest.mark.timeout(90)


def children(pid: int) -> list[int]:
    """The child processes of ``pid`` (Linux /proc)."""
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            found += [int(p) for p in (task / "children").read_text().split()]
        except FileNotFoundError:  # a thread that just ended
            pass
    return found


def test_names_that_collide_across_processes_stay_distinct(server, tmp_path):
    bodies = [make_body(3000 + n, seed=n) for n in range(24)]
    urls = [server.add(f"/dir{n}/index.html", body) for n, body in enumerate(bodies)]

    summary = download_all(urls, tmp_path / "d", processes=2, workers=3)

    assert summary.ok, summary.failed
    paths = [r.path for r in summary.results]
    assert len(set(paths)) == 24
    for result, body in zip(summary.results, bodies):
        assert result.path is not None and result.path.read_bytes() == body
    assert sorted(p.name for p in (tmp_path / "d").iterdir() if p.name != ".downloader") == \
        sorted(["index.html"] + [f"index.{n}.html" for n in range(1, 24)])


def test_repeats_are_fetched_once_across_processes(server, tmp_path):
    url = server.add("/once.bin", b"once")
    others = [server.add(f"/o{n}.bin", b"o") for n in range(6)]

    summary = download_all([url, *others, url, url], tmp_path / "d", processes=2, workers=2)

    assert summary.ok
    assert server.hits("/once.bin") == 1
    assert [r.status for r in summary.results][-2:] == ["skipped", "skipped"]


def test_per_host_cap_is_one_budget_for_all_processes(server, tmp_path):
    urls = [server.add(f"/f{n}.bin", b"x" * 100, delay=0.15) for n in range(12)]

    summary = download_all(urls, tmp_path / "d", processes=2, workers=4, per_host=2)

    assert summary.ok
    assert server.max_in_flight <= 2


def test_the_state_database_has_one_writer_and_a_rerun_does_no_requests(server, tmp_path):
    urls = [server.add(f"/f{n}.bin", make_body(500, seed=n), etag=f'"{n}"') for n in range(10)]
    assert download_all(urls, tmp_path / "d", processes=2, workers=2).ok
    server.reset_stats()

    again = download_all(urls, tmp_path / "d", processes=2, workers=2)

    assert [r.status for r in again] == ["skipped"] * 10
    assert server.requests == []


def test_a_killed_child_loses_no_entry(server, tmp_path):
    """SIGKILL one child mid-transfer: its entries are tried once more in a
    new child; every file ends complete, and the run ends."""
    bodies = [make_body(60_000, seed=n) for n in range(8)]
    urls = [server.add(f"/slow{n}.bin", body, rate=60_000) for n, body in enumerate(bodies)]
    (tmp_path / "list.txt").write_text("\n".join(urls) + "\n")
    proc = popen(tmp_path, "-m", "downloader", "-i", "list.txt", "-d", "dl", "-P", "2",
                 "-j", "2", "-q", "--report", "report.json")
    wait_for(lambda: len(list((tmp_path / "dl").glob("*.part"))) >= 2, proc, "transfers")
    victim = children(proc.pid)[-1]
    os.kill(victim, signal.SIGKILL)

    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["totals"]["downloaded"] == 8, report
    for n, body in enumerate(bodies):
        assert (tmp_path / "dl" / f"slow{n}.bin").read_bytes() == body
    assert not list((tmp_path / "dl").glob("*.part"))


@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_stops_every_child_promptly_and_keeps_parts(server, tmp_path, signum, code):
    urls = [server.add(f"/slow{n}.bin", make_body(600_000, seed=n), etag=f'"{n}"',
                       rate=100_000) for n in range(4)]
    (tmp_path / "list.txt").write_text("\n".join(urls) + "\n")
    proc = popen(tmp_path, "-m", "downloader", "-i", "list.txt", "-d", "dl", "-P", "2",
                 "-j", "2", "-q", "--report", "report.json")
    wait_for(lambda: sum(1 for p in (tmp_path / "dl").glob("*.part")
                         if p.stat().st_size) >= 2, proc, "transfers")
    kids = children(proc.pid)

    _, err, took = interrupt(proc, signum)

    assert proc.returncode == code, err
    assert took < 3.5
    for kid in kids:  # every child is gone with its parent
        assert not Path(f"/proc/{kid}").exists() or \
            Path(f"/proc/{kid}/stat").read_text().split()[2] == "Z"
    report = json.loads((tmp_path / "report.json").read_text())
    assert all(r["status"] == "failed" and r["error"] == "interrupted"
               for r in report["results"])
    assert list((tmp_path / "dl").glob("*.part"))
    assert not [p for p in (tmp_path / "dl").iterdir() if p.suffix == ".bin"]


def test_a_host_pause_holds_every_process(server, tmp_path):
    """A 503 with Retry-After seen by one process pauses the host for all."""
    first = server.add("/busy.bin", b"b", fail_times=1, retry_after=1)
    rest = [server.add(f"/f{n}.bin", b"x", delay=0.3) for n in range(6)]

    started = time.monotonic()
    summary = download_all([first, *rest], tmp_path / "d", processes=2, workers=2,
                           retry_wait=0.01)

    assert summary.ok
    late = [r.time - started for r in server.requests if r.path != "/busy.bin"]
    busy = [r.time - started for r in server.requests if r.path == "/busy.bin"]
    assert len(busy) == 2 and busy[1] - busy[0] >= 0.9
    # Nothing went to the host while it was paused.
    assert not [t for t in late if busy[0] + 0.05 < t < busy[0] + 0.9]


def test_processes_option_is_checked(cli, tmp_path):
    proc = cli("-P", "0", "http://127.0.0.1:9/x")
    assert proc.returncode == 2
    assert "--processes" in proc.stderr
    assert download_all([], tmp_path / "d", processes="auto").ok
    with pytest.raises(ValueError):
        download_all([], tmp_path / "d", processes=0)
