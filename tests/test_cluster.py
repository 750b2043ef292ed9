"""Shards on a Dask cluster: a 2-worker LocalCluster of processes, its
scheduler reached over TCP as ``--cluster`` reaches a real one."""
from __future__ import annotations

import json
import os
import signal
import threading
from typing import Any, Iterator

import pytest

distributed = pytest.importorskip("distributed")
psutil = pytest.importorskip("psutil")  # distributed's own dependency

from downloader import download_all  # noqa: E402
from helpers import shard_state_rows  # noqa: E402
from httpserver import FaultServer, make_body  # noqa: E402
from test_shards import files_under, path_of  # noqa: E402

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    # local_directory: the workers' scratch space, not the current folder.
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       dashboard_address=None, host="127.0.0.1",
                                       local_directory=str(tmp_path_factory.mktemp("dask")))
    dask_client = distributed.Client(cluster)
    try:
        yield dask_client
    finally:
        dask_client.close()
        cluster.close()


def test_a_cluster_downloads_thousands_byte_exact_and_a_rerun_sends_nothing(
        server, client, tmp_path, cli):
    bodies = [make_body(64 + n % 500, seed=n) for n in range(2000)]
    urls = []
    for n, body in enumerate(bodies):
        # Every tenth file is called report.csv by its server: names that
        # collide across shards and machines.
        disposition = 'attachment; filename="report.csv"' if n % 10 == 0 else None
        urls.append(server.add(f"/f{n}.bin", body, content_disposition=disposition))
    (tmp_path / "list.txt").write_text("\n".join(urls) + "\n")
    address = client.scheduler.address

    done = cli("-i", "list.txt", "-d", "dl", "--cluster", address, "--shard-size", "250",
               "-q", "--report", "report.json")

    assert done.returncode == 0, done.stderr
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["totals"] == {"downloaded": 2000, "skipped": 0, "failed": 0,
                                "bytes": sum(map(len, bodies))}
    assert len(report["shards"]) == 8
    assert len({s["worker"] for s in report["shards"]}) == 2  # both workers took shards
    got = files_under(tmp_path / "dl")
    assert len(got) == 2000 and sorted(got.values()) == sorted(bodies)
    assert {f"report.{n}.csv" for n in range(1, 200)} | {"report.csv"} <= set(got)
    assert sorted(r.path for r in server.requests) == sorted(map(path_of, urls))

    server.reset_stats()
    again = cli("-i", "list.txt", "-d", "dl", "--cluster", address, "--shard-size", "250",
                "--report", "again.json", "--progress", "log", "-v")
    assert again.returncode == 0, again.stderr
    assert server.requests == []
    assert json.loads((tmp_path / "again.json").read_text())["totals"] == report["totals"]
    assert again.stderr.count("(stored, no request)") == 8


def _holder(client: Any, port: int) -> int:
    """The worker process with a connection open to ``port``."""
    for pid in client.run(os.getpid).values():
        for conn in psutil.Process(pid).net_connections(kind="tcp"):
            if conn.raddr and conn.raddr.port == port:
                return int(pid)
    raise AssertionError(f"no worker is connected to port {port}")


def test_a_worker_killed_mid_shard_loses_nothing_and_fetches_nothing_twice(
        server, client, tmp_path):
    """SIGKILL the worker process in the middle of a file: Dask runs its
    shard again elsewhere, which skips the files already done (no request),
    resumes the cut one under the same name, and fetches the rest."""
    bodies = [make_body(100 + n, seed=n) for n in range(300)]
    urls = [server.add(f"/d{n}/index.html", body) for n, body in enumerate(bodies)]
    gated = FaultServer().start()
    try:
        release = threading.Event()
        # Large enough to be announced (and recorded) before its body ends.
        big = make_body(1_000_000, seed=7)
        urls.insert(130, gated.add("/big/index.html", big, etag='"v1"', gate=release,
                                   gate_after=300_000))
        bodies.insert(130, big)
        dest = tmp_path / "dl"
        outcome: dict[str, Any] = {}

        def run() -> None:
            outcome["summary"] = download_all(urls, dest, executor=client.get_executor(),
                                              shard_size=50, retry_wait=0.01, timeout=20)

        driver = threading.Thread(target=run)
        driver.start()
        gated.wait_held("/big/index.html", timeout=30)
        # The other 49 files of its shard are in, and the .part is recorded.
        _wait(lambda: (49, 1) in shard_state_rows(dest), "the shard's records")
        os.kill(_holder(client, gated.port), signal.SIGKILL)
        release.set()
        driver.join(timeout=90)
        assert not driver.is_alive()

        summary = outcome["summary"]
        # The retried shard finds the files its first attempt finished
        # (and counts them skipped); none is fetched again.
        assert summary.ok and summary.counts["downloaded"] + summary.counts["skipped"] == 301
        got = files_under(dest)
        assert len(got) == 301 and sorted(got.values()) == sorted(bodies)  # each once
        counts = {path_of(u): 0 for u in urls if u.startswith(server.url("/"))}
        for r in server.requests:
            counts[r.path] += 1
        assert set(counts.values()) == {1}, {p: c for p, c in counts.items() if c != 1}
        big_requests = gated.requests
        assert len(big_requests) == 2  # cut by the kill, then resumed
        resumed = big_requests[1].headers.get("Range")
        assert resumed and resumed.startswith("bytes=") and resumed != "bytes=0-", resumed
        worked = {s.worker for s in summary.shards}
        assert len(worked) >= 2
    finally:
        gated.stop()


def _wait(condition: Any, what: str, timeout: float = 20.0) -> None:
    event = threading.Event()
    for _ in range(int(timeout / 0.02)):
        if condition():
            return
        event.wait(0.02)
    raise AssertionError(f"timed out waiting for {what}")
