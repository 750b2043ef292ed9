"""What every part of the benchmark driver shares: where things live, units, logging."""

from __future__ import annotations

import os
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent

# Everything big lives in RAM: disk speed is not what is being measured, and
# tmpfs makes every tool's write cost the same memory copy.
SHM = Path(os.environ.get("BENCH_SHM", "/dev/shm/dlbench"))
# Except for the sets whose point is the disk: their download folders go here
# (a real file system, checked at start; never tmpfs).
DISK = Path(os.environ.get("BENCH_DISK", "/var/tmp/dlbench"))
PY = sys.executable  # the project venv's python (run.sh starts us with it)
VENV_BIN = Path(PY).parent
CONCURRENCY = 16
TIME = "/usr/bin/time"  # GNU time, for -v
KiB, MiB = 1024, 1024 * 1024


def human_size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:g} {unit}" if n == int(n) else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)
