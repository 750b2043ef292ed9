#!/usr/bin/env python3
"""How many connections should one file get? ``--split N`` side by side
with aria2c -x8 -s8, against nginx with a
per-connection ``limit_rate``, as CDNs and mirrors do.

    bench/split_sweep.py [--size-mib 128] [--files 2] [--rate 8m] [--runs 3]
                         [--splits 1,2,4,8,16]

The files live in /dev/shm and so do the downloads: what is measured is the
effect of the cap per connection, not the disk. Each run's files are
checked against their SHA-256; the table gives the median wall time, the
ratio to aria2c, and the peak RSS of the client process tree's largest
process (ru_maxrss of the waited-for child, as ``os.wait4`` reports it).
A standalone script (not bench/run.sh's sets) so that it can run on its own.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from servers import start_nginx  # bench/ is this script's folder, so on sys.path

REPO = Path(__file__).resolve().parent.parent
SHM = Path("/dev/shm/dlsplit")
PYTHON = sys.executable  # run this script with the venv that has requests and tqdm

def make_files(count: int, size: int) -> dict[str, str]:
    data = SHM / "data"
    data.mkdir(parents=True, exist_ok=True)
    for p in (SHM, data):
        p.chmod(0o755)
    digests = {}
    for i in range(count):
        path = data / f"f{i}.bin"
        if not path.exists() or path.stat().st_size != size:
            with open(path, "wb") as f:
                for _ in range(size // (1 << 20)):
                    f.write(os.urandom(1 << 20))
        path.chmod(0o644)
        digests[path.name] = sha256(path)
    return digests


def sha256(path: Path) -> str:
    """In blocks: a fork of this process must not carry 128 MiB into the
    client's peak RSS (Linux keeps the parent's high-water mark across exec)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def timed(cmd: list[str]) -> tuple[float, int]:
    """Wall seconds and peak RSS (MiB) of ``cmd``."""
    started = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    took = time.monotonic() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        assert proc.stderr is not None
        raise RuntimeError(f"{cmd[0]} exited {proc.returncode}: {proc.stderr.read()[-2000:]!r}")
    return took, usage.ru_maxrss // 1024


def tools(splits: list[int], urls: list[str], listing: Path, out: Path) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for n in splits:
        # Threads enough for every file to get its N connections at once.
        found[f"downloader --split {n}"] = [
            PYTHON, "-m", "downloader", "-i", str(listing), "-d", str(out), "-q",
            "-j", str(max(8, n * len(urls))), "--split", str(n)]
    # What a user gets without options: -j 8, --split 8, both files at once.
    found["downloader (defaults)"] = [PYTHON, "-m", "downloader", "-i", str(listing), "-d",
                                      str(out), "-q"]
    if shutil.which("aria2c"):
        found["aria2c -x8 -s8"] = ["aria2c", "-x8", "-s8", "-q", "-d", str(out), "-i",
                                   str(listing), "--allow-overwrite=true",
                                   "--auto-file-renaming=false"]
    return found


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size-mib", type=int, default=128)
    ap.add_argument("--files", type=int, default=2)
    ap.add_argument("--rate", default="8m", help="nginx limit_rate per connection")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--splits", default="1,2,4,8,16")
    args = ap.parse_args()
    splits = [int(n) for n in args.splits.split(",")]
    # This checkout's package, whichever is installed.
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO),
                                                             os.environ.get("PYTHONPATH")]))
    digests = make_files(args.files, args.size_mib << 20)
    server = start_nginx(SHM / "data", rate=args.rate)  # the bench sets' nginx
    try:
        urls = [f"{server.base}/{name}" for name in sorted(digests)]
        listing = SHM / "urls.txt"
        listing.write_text("".join(u + "\n" for u in urls))
        out = SHM / "out"
        results: dict[str, list[tuple[float, int]]] = {}
        commands = tools(splits, urls, listing, out)
        for run in range(args.runs):  # interleaved: drift hits every tool alike
            for name, cmd in commands.items():
                shutil.rmtree(out, ignore_errors=True)
                out.mkdir(parents=True)
                took, rss = timed(cmd)
                for file, digest in digests.items():
                    if sha256(out / file) != digest:
                        raise RuntimeError(f"{name}: {file} differs")
                results.setdefault(name, []).append((took, rss))
                print(f"run {run + 1} {name}: {took:.2f} s, {rss} MiB", file=sys.stderr)
        base = statistics.median(t for t, _ in results.get("aria2c -x8 -s8", [(1.0, 0)]))
        print(f"\n{args.files} x {args.size_mib} MiB, nginx limit_rate {args.rate} per "
              f"connection, median of {args.runs}\n")
        print("| client | wall s | vs aria2c | MiB/s | peak RSS MiB |")
        print("| --- | --- | --- | --- | --- |")
        for name, runs in results.items():
            wall = statistics.median(t for t, _ in runs)
            rate = args.files * args.size_mib / wall
            print(f"| {name} | {wall:.2f} | {wall / base:.2f}x | {rate:.0f} | "
                  f"{max(r for _, r in runs)} |")
    finally:
        server.stop()
        shutil.rmtree(SHM / "out", ignore_errors=True)


if __name__ == "__main__":
    main()
