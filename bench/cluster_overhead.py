"""What a shard costs, and what --per-host means on a cluster.

    .venv/bin/python bench/cluster_overhead.py [--shards 200]

On a 2-worker Dask LocalCluster (processes), against bench/tiny_server.py:

- time per 1-URL shard, and per empty shard (its one file already in
  DEST, its marker removed: the engine starts, finds nothing to fetch, and
  writes the marker), next to the same shards run in this process with no
  executor, and next to one plain run of the same URLs;
- the bytes a shard costs on the wire: the pickled task (function and
  entries) for 1 and 10,000 entries, and the pickled summary that comes back;
- the most requests one host saw at once with --per-host 2 and 4 shards on
  2 workers (a counting server that holds each request 50 ms).
"""
from __future__ import annotations

import argparse
import pickle
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import cloudpickle
from distributed import Client, LocalCluster

from downloader import Entry, download_all
from downloader.shards import Shard, ShardSummary, ShardTask, run_shard, shard_id
from downloader.settings import Settings

BENCH = Path(__file__).resolve().parent


def tiny_server() -> tuple[subprocess.Popen[bytes], int]:
    proc = subprocess.Popen([sys.executable, str(BENCH / "tiny_server.py"), "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert proc.stdout is not None
    return proc, int(proc.stdout.readline().split()[1])


class Counting(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    lock = threading.Lock()
    now = peak = 0

    def do_GET(self) -> None:  # noqa: N802
        cls = type(self)
        with cls.lock:
            cls.now += 1
            cls.peak = max(cls.peak, cls.now)
        time.sleep(0.05)
        with cls.lock:
            cls.now -= 1
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: object) -> None:
        pass


def timed(label: str, call: object) -> float:
    started = time.perf_counter()
    call()  # type: ignore[operator]
    took = time.perf_counter() - started
    print(f"{label}: {took:.3f} s", flush=True)
    return took


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--shards", type=int, default=200)
    args = parser.parse_args()
    n = args.shards
    proc, port = tiny_server()
    work = Path(tempfile.mkdtemp(prefix="cluster-overhead-"))
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                           dashboard_address=None, host="127.0.0.1")
    client = Client(cluster)
    executor = client.get_executor(pure=False)
    try:
        urls = [f"http://127.0.0.1:{port}/t/f{i:06d}.bin" for i in range(n)]
        client.run(lambda: __import__("downloader.engine"))  # warm the workers' imports
        plain = timed(f"one plain run of {n} URLs", lambda: download_all(urls, work / "plain"))
        inline = timed(f"{n} 1-URL shards in this process",
                       lambda: download_all(urls, work / "inline", shard_size=1))
        dask = timed(f"{n} 1-URL shards on 2 Dask workers",
                     lambda: download_all(urls, work / "dask", shard_size=1, executor=executor))
        shutil.rmtree(work / "dask" / ".downloader" / "shards")
        empty = timed(f"{n} empty shards on 2 Dask workers (files there, markers gone)",
                      lambda: download_all(urls, work / "dask", shard_size=1, executor=executor))
        stored = timed(f"{n} finished shards (markers there: no task at all)",
                       lambda: download_all(urls, work / "dask", shard_size=1, executor=executor))
        print(f"per 1-URL shard, in this process: {(inline - plain) / n * 1000:.1f} ms more than "
              f"in one run; on the cluster (2 workers): {dask / n * 1000:.1f} ms of wall per "
              f"shard, {2 * dask / n * 1000:.1f} ms of a worker's time")
        print(f"per empty shard on the cluster: {empty / n * 1000:.1f} ms of wall, "
              f"{2 * empty / n * 1000:.1f} ms of a worker's time; per finished shard: "
              f"{stored / n * 1000:.2f} ms")

        settings = Settings.build(work / "x")
        for count in (1, 10_000):
            entries = tuple(Entry(f"https://images.example.org/2026/12/{i:08d}.jpg")
                            for i in range(count))
            task = ShardTask(Shard(shard_id(entries), entries), "0" * 16, settings)
            size = len(cloudpickle.dumps((run_shard, task)))
            print(f"task of {count} entries: {size:,} bytes pickled "
                  f"({size / count:.0f} bytes an entry)")
        summary = ShardSummary("0" * 16, 10_000, 10_000, 0, 123_456_789, 12.3,
                               worker="host:123")
        print(f"summary of a shard without failures: {len(pickle.dumps(summary))} bytes pickled")

        server = ThreadingHTTPServer(("127.0.0.1", 0), Counting)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        polite = [f"http://127.0.0.1:{server.server_address[1]}/p{i}.bin" for i in range(80)]
        download_all(polite, work / "polite", shard_size=20, executor=executor, per_host=2,
                     workers=8)
        print(f"--per-host 2, 4 shards on 2 workers: at most {Counting.peak} requests "
              "in flight to the host")
        server.shutdown()
    finally:
        client.close()
        cluster.close()
        proc.terminate()
        proc.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
