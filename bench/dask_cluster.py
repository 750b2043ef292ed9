"""A 2-worker Dask LocalCluster for the `downloader-cluster` tool: prints
`LISTENING tcp://HOST:PORT`, then serves until stdin closes or SIGTERM.

Started once per bench run (bench.py), so that the tool's timed runs pay
for connecting to a cluster, as they would on a real one, not for
starting it."""
from __future__ import annotations

import argparse
import signal
import sys

from distributed import LocalCluster


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    cluster = LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True,
                           dashboard_address=None, host="127.0.0.1")
    signal.signal(signal.SIGTERM, lambda *_: sys.stdin.close())
    print(f"LISTENING {cluster.scheduler_address}", flush=True)
    try:
        sys.stdin.read()
    except (ValueError, OSError):
        pass
    finally:
        cluster.close()


if __name__ == "__main__":
    main()
