"""The byte path, stage by stage: CPU per GiB to receive, copy, hash, write
and sync a body, over plain HTTP and over TLS, with the ways of reading a
urllib3 body that downloader has used or could use.

    .venv/bin/python bench/bytepath.py [--size MIB] [--streams N]

Starts the bench sets' nginx twice (HTTP, and HTTPS with a certificate
made for the run: servers.py), serves one pseudo-random file
from /dev/shm and reads it with requests. CPU is this process's
(``time.process_time``): nginx's is not counted. A stage's cost is the
difference between two loops that differ by that stage alone. The
``fsync`` rows write to BENCH_DISK (default /var/tmp, which must not be
tmpfs) and are wall time: syncing costs little CPU but waits for the disk.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from downloader import body  # noqa: E402
from downloader.partfile import writeback  # noqa: E402
from servers import make_certificate, start_nginx  # noqa: E402 (bench/ is on sys.path)

GIB = 1 << 30
Sink = Callable[[memoryview], None]


def nothing(view: memoryview) -> None:
    pass


def read_new_bytes(raw: object, size: int, sink: Sink) -> int:
    """The old path: a new bytes object per chunk (urllib3 2.2+'s read1)."""
    total = 0
    read1 = raw.read1  # type: ignore[attr-defined]
    while chunk := read1(size, decode_content=False):
        sink(memoryview(chunk))
        total += len(chunk)
    return total


def read_reused(raw: object, size: int, sink: Sink) -> int:
    """The new path: downloader.body's reader, into one buffer."""
    reader = body.body_reader(raw)  # type: ignore[arg-type]
    buffer = memoryview(bytearray(size))
    total = 0
    while n := reader.readinto(buffer):
        sink(buffer[:n])
        total += n
    return total


def one(session: requests.Session, url: str, method: Callable[..., int], size: int,
        sink: Sink) -> float:
    """CPU seconds this thread spent on one whole body."""
    # Per request: a REQUESTS_CA_BUNDLE in the environment beats session.verify.
    response = session.get(url, stream=True, timeout=30, verify=session.verify)
    response.raise_for_status()
    start = time.thread_time()
    method(response.raw, size, sink)
    used = time.thread_time() - start
    response.close()
    return used


def cpu_per_gib(base: str, cert: str, method: Callable[..., int], size: int, sink: Sink,
                file_size: int) -> float:
    with requests.Session() as session:
        session.verify = cert
        one(session, base + "/f.bin", method, size, sink)  # connect, warm up
        used = one(session, base + "/f.bin", method, size, sink)
    return used * GIB / file_size


def streams_mib_s(base: str, cert: str, method: Callable[..., int], size: int,
                  streams: int, file_size: int) -> float:
    """Throughput of ``streams`` threads reading at once, in one process."""
    def run() -> None:
        with requests.Session() as session:
            session.verify = cert
            one(session, base + "/f.bin", method, size, nothing)
    threads = [threading.Thread(target=run) for _ in range(streams)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return streams * file_size / (1 << 20) / (time.perf_counter() - start)


def hash_sink() -> Sink:
    hasher = hashlib.sha256()
    return hasher.update


def write_sink(fd: int) -> Sink:
    def sink(view: memoryview) -> None:
        os.write(fd, view)
    return sink


def disk_write(base: str, cert: str, disk: Path, size: int, streaming_writeback: bool,
               file_size: int) -> tuple[float, float]:
    """(wall seconds of the whole download and sync, of the final fsync alone)."""
    path = disk / "f.part"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    written = 0
    started = 0

    def sink(view: memoryview) -> None:
        nonlocal written, started
        os.write(fd, view)
        written += len(view)
        if streaming_writeback:
            started = writeback(fd, started, written)

    with requests.Session() as session:
        session.verify = cert
        start = time.perf_counter()
        one(session, base + "/f.bin", read_reused, size, sink)
        before_sync = time.perf_counter()
        os.fsync(fd)
        end = time.perf_counter()
    os.close(fd)
    path.unlink()
    return end - start, end - before_sync


def dd_floor(source: Path, disk: Path) -> float:
    start = time.perf_counter()
    subprocess.run(["dd", f"if={source}", f"of={disk / 'dd.bin'}", "bs=1M", "conv=fsync"],
                   check=True, capture_output=True)
    used = time.perf_counter() - start
    (disk / "dd.bin").unlink()
    return used


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256, help="file size in MiB")
    parser.add_argument("--streams", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=5, help="medians of this many")
    args = parser.parse_args()
    file_size = args.size << 20
    shm = Path(tempfile.mkdtemp(prefix="bytepath-", dir="/dev/shm"))
    disk = Path(tempfile.mkdtemp(prefix="bytepath-",
                                 dir=os.environ.get("BENCH_DISK", "/var/tmp")))
    shm.chmod(0o755)  # nginx's worker runs as an unprivileged user
    (shm / "data").mkdir(mode=0o755)
    with open(shm / "data" / "f.bin", "wb") as f:
        block = os.urandom(1 << 20)
        for n in range(args.size):
            f.write(hashlib.sha256(n.to_bytes(4, "big")).digest() + block[32:])
    # The bench sets' nginx, once over HTTP and once over HTTPS.
    ca = make_certificate(shm / "tls")
    servers = {"http": start_nginx(shm / "data"), "https": start_nginx(shm / "data", tls=ca.parent)}
    bases = {scheme: server.base for scheme, server in servers.items()}
    cert = str(ca)
    rows: list[tuple[str, ...]] = []
    methods = [("read1(1 MiB), new bytes", read_new_bytes, 1 << 20),
               ("read1(256 KiB), new bytes", read_new_bytes, 256 << 10),
               ("read1(16 KiB), new bytes", read_new_bytes, 16 << 10),
               ("readinto 64 KiB buffer", read_reused, 64 << 10),
               ("readinto 256 KiB buffer", read_reused, 256 << 10),
               ("readinto 1 MiB buffer", read_reused, 1 << 20)]
    try:
        for scheme, base in bases.items():
            def cpu(method: Callable[..., int], size: int, sink: Sink = nothing) -> float:
                return cpu_per_gib(base, cert, method, size, sink, file_size)
            # The methods take turns, round after round: the machine's load
            # changes, and each gets its share of the quiet moments.
            cpus: dict[str, list[float]] = {name: [] for name, _, _ in methods}
            rates: dict[str, list[float]] = {name: [] for name, _, _ in methods}
            stages: dict[str, list[float]] = {"hash": [], "write": []}
            for _ in range(args.rounds):
                for name, method, size in methods:
                    cpus[name].append(cpu(method, size))
                    rates[name].append(streams_mib_s(base, cert, method, size, args.streams,
                                                     file_size))
                recv = cpu(read_reused, 256 << 10)
                stages["hash"].append(cpu(read_reused, 256 << 10, hash_sink()) - recv)
                fd = os.open(shm / "w.bin", os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
                stages["write"].append(cpu(read_reused, 256 << 10, write_sink(fd)) - recv)
                os.close(fd)
                os.unlink(shm / "w.bin")
            for name, _, _ in methods:
                rows.append((scheme, f"recv: {name}", f"{statistics.median(cpus[name]):.3f}",
                             f"{statistics.median(rates[name]):.0f}"))
            rows.append((scheme, "+ hash (SHA-256)", f"{statistics.median(stages['hash']):.3f}", ""))
            rows.append((scheme, "+ write (tmpfs)", f"{statistics.median(stages['write']):.3f}", ""))
        hashed = bytes(256 << 10)
        start = time.process_time()
        hasher = hashlib.sha256()
        for _ in range(GIB // len(hashed)):
            hasher.update(hashed)
        rows.append(("-", "hash alone (SHA-256, 256 KiB updates)",
                     f"{time.process_time() - start:.3f}", ""))
        floors: list[float] = []
        disk_runs: dict[bool, list[tuple[float, float]]] = {False: [], True: []}
        for _ in range(args.rounds):
            floors.append(dd_floor(shm / "data" / "f.bin", disk))
            for streaming in (False, True):
                disk_runs[streaming].append(
                    disk_write(bases["http"], cert, disk, 256 << 10, streaming, file_size))
        for label, streaming in [("fsync at the end only", False),
                                 ("writeback while streaming", True)]:
            whole = statistics.median(run[0] for run in disk_runs[streaming])
            sync = statistics.median(run[1] for run in disk_runs[streaming])
            rows.append(("http", f"ext4: {label}: whole / final fsync (wall s)",
                         f"{whole:.2f} / {sync:.2f}",
                         f"dd conv=fsync {statistics.median(floors):.2f} s"))
    finally:
        for server in servers.values():
            server.stop()
        shutil.rmtree(shm, ignore_errors=True)
        shutil.rmtree(disk, ignore_errors=True)
    print(f"| scheme | stage | CPU s/GiB (1 stream, median of {args.rounds}) | MiB/s ({args.streams} streams) |")
    print("| --- | --- | --- | --- |")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
