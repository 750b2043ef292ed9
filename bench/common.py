"""What every part of the benchmark driver shares: where things live, units, logging."""

from __future__ import annotations

import contextlib
import fcntl
import os
import sys
from pathlib import Path
from typing import Iterator  # noqa: UP035 (3.9)

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


@contextlib.contextmanager
def holding(*folders: Path) -> Iterator[None]:
    """Hold an exclusive lock on each folder for the whole run, then remove
    the folders if the run left them empty.

    Every checkout's driver defaults to the same BENCH_SHM and BENCH_DISK,
    and each deletes its runs/ and lists/ there when it ends: a second run
    on a shared machine would pull the URL list from under the first one's
    tools. So the second one refuses to start instead.
    """
    opened: list[tuple[Path, int]] = []
    locked: list[Path] = []
    try:
        for folder in folders:
            folder.mkdir(parents=True, exist_ok=True)
            fd = os.open(folder / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
            opened.append((folder, fd))
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise SystemExit(f"bench: {folder} is in use by another benchmark run; wait for it, or set "
                                 "BENCH_SHM and BENCH_DISK to folders of your own") from None
            locked.append(folder)
        yield
    finally:
        for folder in locked:  # never the lock file of the run that holds it
            with contextlib.suppress(OSError):
                (folder / ".lock").unlink()
            with contextlib.suppress(OSError):
                folder.rmdir()  # only if nothing else was left there
        for _, fd in opened:
            os.close(fd)
