"""What landing many small files durably costs on a real disk: one fsync
per file (as each worker did), against batches that start every file's
writeback, fsync them, rename them and sync their folder once.

    .venv/bin/python bench/landing.py [--files N] [--size KIB] [--batch N] [--threads N]

Writes under BENCH_DISK (default /var/tmp; must not be tmpfs). Wall time.
"""
from __future__ import annotations

import argparse
import ctypes
import os
import shutil
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from downloader.partfile import writeback


def write(path: Path, data: bytes) -> int:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.write(fd, data)
    return fd


def one_by_one(folder: Path, names: list[str], data: bytes) -> None:
    for name in names:
        fd = write(folder / (name + ".part"), data)
        os.fsync(fd)
        os.close(fd)
        os.replace(folder / (name + ".part"), folder / name)


def sync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    os.fsync(fd)
    os.close(fd)


def batched(sync: Callable[[list[int]], None], batch: int) -> Callable[[Path, list[str], bytes], None]:
    def run(folder: Path, names: list[str], data: bytes) -> None:
        for start in range(0, len(names), batch):
            group = names[start:start + batch]
            fds = [write(folder / (name + ".part"), data) for name in group]
            sync(fds)
            for fd in fds:
                os.close(fd)
            for name in group:
                os.replace(folder / (name + ".part"), folder / name)
            sync_folder(folder)
    return run


def start_then_fsync(fds: list[int]) -> None:
    for fd in fds:
        writeback(fd, 0, os.fstat(fd).st_size)
    for fd in fds:
        os.fsync(fd)


def fsync_each(fds: list[int]) -> None:
    for fd in fds:
        os.fsync(fd)


_libc = ctypes.CDLL(None, use_errno=True)


def syncfs(fds: list[int]) -> None:
    if _libc.syncfs(fds[0]) != 0:
        raise OSError(ctypes.get_errno(), "syncfs")


def timed(method: Callable[[Path, list[str], bytes], None], root: Path, files: int,
          data: bytes, threads: int) -> float:
    folder = Path(tempfile.mkdtemp(dir=root))
    shares = [[f"f{n}" for n in range(files) if n % threads == t] for t in range(threads)]
    workers = [threading.Thread(target=method, args=(folder, share, data)) for share in shares]
    os.sync()
    start = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    used = time.perf_counter() - start
    shutil.rmtree(folder)
    return used


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--size", type=int, default=16, help="KiB per file")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--runs", type=int, default=5,
                        help="rounds; the methods take turns in each (median shown)")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="landing-", dir=os.environ.get("BENCH_DISK", "/var/tmp")))
    data = os.urandom(args.size * 1024)
    try:
        methods = [
            ("no sync at all (the peers)", batched(lambda fds: None, args.batch)),
            ("fsync + rename per file", one_by_one),
            (f"batch of {args.batch}: fsync each, rename, fsync folder",
             batched(fsync_each, args.batch)),
            (f"batch of {args.batch}: start writeback, fsync each, rename, fsync folder",
             batched(start_then_fsync, args.batch)),
            (f"batch of {args.batch}: syncfs, rename, fsync folder", batched(syncfs, args.batch))]
        times: dict[str, list[float]] = {label: [] for label, _ in methods}
        for _ in range(args.runs):  # in turns: the machine's load changes
            for label, method in methods:
                times[label].append(timed(method, root, args.files, data, args.threads))
        print(f"| {args.files} × {args.size} KiB, {args.threads} threads | wall s (median) | all |")
        print("| --- | --- | --- |")
        for label, values in times.items():
            print(f"| {label} | {statistics.median(values):.2f} | "
                  + " ".join(f"{v:.2f}" for v in values) + " |")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
