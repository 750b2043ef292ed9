"""A `--cluster` run whose worker is killed mid-shard, and what it cost.

    .venv/bin/python bench/cluster_kill.py

A 2-worker LocalCluster and the tests' fault server (600 files, a tenth of
them called report.csv by the server, and one 4 MB file held half-sent).
`downloader --cluster` runs; once the held file's shard has finished its
other files, the worker process holding it gets SIGKILL. The script then
prints the merged report's totals and shards, and, from the server's own
log, how many requests each URL cost: what the kill lost and what it made
us fetch twice.
"""
from __future__ import annotations

import collections
import hashlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil
from distributed import Client, LocalCluster

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from helpers import shard_state_rows  # noqa: E402
from httpserver import FaultServer, make_body  # noqa: E402


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="cluster-kill-"))
    server, held = FaultServer().start(), FaultServer().start()
    release = threading.Event()
    bodies = {}
    urls = []
    for n in range(600):
        body = make_body(1000 + n, seed=n)
        cd = 'attachment; filename="report.csv"' if n % 10 == 0 else None
        urls.append(server.add(f"/f{n}.bin", body, content_disposition=cd))
        bodies[urls[-1]] = body
    big = make_body(4_000_000, seed=99)
    urls.insert(250, held.add("/big.iso", big, etag='"v1"', gate=release, gate_after=2_000_000))
    bodies[urls[250]] = big
    (work / "list.txt").write_text("\n".join(urls) + "\n")
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                           dashboard_address=None, host="127.0.0.1")
    client = Client(cluster)
    dest = work / "dl"
    try:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        proc = subprocess.Popen(
            [sys.executable, "-m", "downloader", "-i", "list.txt", "-d", "dl", "--cluster",
             cluster.scheduler_address, "--shard-size", "100", "-j", "8", "-q",
             "--report", "report.json"], cwd=work, env=env)
        held.wait_held("/big.iso", timeout=60)
        deadline = time.monotonic() + 60
        while (99, 1) not in shard_state_rows(dest) and time.monotonic() < deadline:
            time.sleep(0.05)
        victim = next(pid for pid in client.run(os.getpid).values()
                      for c in psutil.Process(pid).net_connections(kind="tcp")
                      if c.raddr and c.raddr.port == held.port)
        before = len(list(dest.rglob("*")))
        os.kill(victim, signal.SIGKILL)
        print(f"killed worker process {victim} mid-shard: big.iso held at 2,000,000 of "
              f"4,000,000 bytes; {before} paths under DEST at that moment")
        release.set()
        print(f"downloader exited {proc.wait(timeout=300)}")

        report = json.loads((work / "report.json").read_text())
        print("merged report totals:", report["totals"])
        print("failures in the report:", report["results"])
        for s in report["shards"]:
            print(f"  shard {s['id']}: {s['downloaded']} downloaded, {s['skipped']} skipped, "
                  f"{s['failed']} failed, ran on {s['worker']}")
        counts = collections.Counter(r.path for r in server.requests)
        per_url = collections.Counter(counts["/" + u.split("/", 3)[3]] for u in urls
                                      if u.startswith(server.base))
        print(f"requests per URL on the main server: {dict(per_url)} (requests: URLs)")
        print("big.iso requests:", [r.headers.get("Range") or "whole" for r in held.requests])
        files = [p for p in dest.rglob("*") if p.is_file() and ".downloader" not in p.parts]
        got = collections.Counter(hashlib.sha256(p.read_bytes()).hexdigest() for p in files)
        want = collections.Counter(hashlib.sha256(b).hexdigest() for b in bodies.values())
        print(f"files in DEST: {len(files)} for {len(urls)} URLs; every body exactly once: "
              f"{got == want}; .part left: {sum(p.name.endswith('.part') for p in files)}")
    finally:
        client.close()
        cluster.close()
        server.stop()
        held.stop()


if __name__ == "__main__":
    main()
