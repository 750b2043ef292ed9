"""The local disk failing under a run: full, read-only, or gone.

A full disk is full for every file: the run says so once, stops, spends no
retries meant for the network and reports what it never tried.
"""
from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import threading
import time
from pathlib import Path
from typing import Callable, Iterator

import pytest

from downloader.partfile import WRITEBACK_STEP, PartFile, disk_error
from httpserver import FaultServer, make_body

MIB = 1024 * 1024


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Callable[[str], Path]]:
    """Mount a tmpfs of the given size (root only; skipped elsewhere)."""
    mounted: list[Path] = []

    def mount(size: str) -> Path:
        point = tmp_path / f"fs{len(mounted)}"
        point.mkdir()
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs",
                               str(point)], capture_output=True)
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
        mounted.append(point)
        return point

    yield mount
    for point in mounted:
        subprocess.run(["umount", "-l", str(point)], capture_output=True)


def when_requested(server: FaultServer, path: str, action: Callable[[], None]) -> threading.Thread:
    """Run ``action`` once the server has seen a request for ``path``."""

    def watch() -> None:
        deadline = time.monotonic() + 30
        while server.hits(path) == 0 and time.monotonic() < deadline:
            time.sleep(0.005)
        action()

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def test_full_disk_stops_the_run_and_lists_what_it_never_tried(server, small_fs, cli, tmp_path):
    dest = small_fs("2m")
    urls = [server.add(f"/big{n}.bin", make_body(MIB, seed=n)) for n in range(3)]
    urls += [server.add(f"/small{n}.txt", b"x" * 100) for n in range(10)]
    (tmp_path / "list.txt").write_text("\n".join(urls) + "\n")

    proc = cli("-i", "list.txt", "-d", dest, "-j", "1", "--retry-wait", "0.01",
               "--save-failed", "failed.txt", "--report", "report.json")

    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.count("stopping the run: no space left on device (DEST") == 1
    report = json.loads((tmp_path / "report.json").read_text())
    by_url = {r["url"]: r for r in report["results"]}
    full = by_url[urls[1]]
    assert full["status"] == "failed"
    assert full["error"] == f"no space left on device (DEST {dest})"
    assert full["attempts"] == 1  # no retry: the network is not at fault
    assert (dest / "big0.bin").read_bytes() == make_body(MIB, seed=0)
    assert not (dest / "big1.bin").exists() and not (dest / "big1.bin.part").exists()
    never = [by_url[u] for u in urls[2:]]
    assert all(r["status"] == "failed" and "the run stopped" in r["error"]
               and "no space left on device" in r["error"] for r in never)
    # Nothing past the full disk was even asked for.
    assert [server.hits(f"/big{n}.bin") for n in range(3)] == [1, 1, 0]
    assert all(server.hits(f"/small{n}.txt") == 0 for n in range(10))
    failed = (tmp_path / "failed.txt").read_text().split()
    assert set(urls[1:]) <= set(failed) and urls[0] not in failed


def test_dest_turning_read_only_mid_run_stops_it(server, tmp_path):
    from downloader import Entry, download_all

    # DEST's own files (lock, database) stay open for writing all run, and a
    # file system with writers cannot be remounted read-only: the files go
    # to a folder of DEST that is a mount of its own.
    dest = tmp_path / "dest"
    (dest / "files").mkdir(parents=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs",
                              str(dest / "files")], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    try:
        first = server.add("/first.bin", b"a" * 1000)
        held = server.add("/held.bin", b"b" * 1000, delay=1.5)
        rest = [server.add(f"/later{n}.bin", b"c" * 10) for n in range(3)]
        watcher = when_requested(server, "/held.bin", lambda: subprocess.run(
            ["mount", "-o", "remount,ro", str(dest / "files")], check=True))
        entries = [Entry(u, out=f"files/{u.rsplit('/', 1)[1]}") for u in [first, held, *rest]]

        summary = download_all(entries, dest, workers=1, retry_wait=0.01)
        watcher.join()

        first_result, held_result, *later = summary.results
        assert first_result.status == "downloaded"
        assert held_result.error == f"read-only file system (DEST {dest.resolve()})"
        assert held_result.attempts == 1
        assert all(r.status == "failed" and "the run stopped" in r.error for r in later)
        assert all(server.hits(f"/later{n}.bin") == 0 for n in range(3))
        assert sorted(p.name for p in (dest / "files").iterdir()) == ["first.bin"]
    finally:
        subprocess.run(["umount", "-l", str(dest / "files")], capture_output=True)


def test_dest_deleted_mid_run_stops_it_and_is_not_recreated(server, tmp_path):
    from downloader import download_all

    dest = tmp_path / "dest"
    held = server.add("/held.bin", b"b" * 1000, delay=1.5)
    rest = [server.add(f"/later{n}.bin", b"c" * 10) for n in range(3)]
    watcher = when_requested(server, "/held.bin", lambda: shutil.rmtree(dest))

    summary = download_all([held, *rest], dest, workers=1, retry_wait=0.01)
    watcher.join()

    held_result, *later = summary.results
    assert held_result.error == f"DEST {dest.resolve()} is gone"
    assert all("the run stopped" in r.error for r in later)
    assert not dest.exists()


@pytest.mark.parametrize("code, words, stops", [
    (errno.ENOSPC, "no space left on device (DEST /d)", True),
    (errno.EDQUOT, "disk quota exceeded (DEST /d)", True),
    (errno.EROFS, "read-only file system (DEST /d)", True),
    (errno.EMFILE, "cannot write x.part: too many open files (DEST /d)", False),
])
def test_disk_errors_say_what_happened(tmp_path, monkeypatch, code, words, stops):
    root = Path("/d")
    monkeypatch.setattr(Path, "is_dir", lambda self: True)
    monkeypatch.setattr("os.access", lambda path, mode: True)
    error = disk_error(OSError(code, __import__("os").strerror(code)), root, "write x.part")
    assert (error.reason, error.stops_run) == (words, stops)
    assert not error.retryable


def test_a_full_disk_keeps_what_an_earlier_run_left_to_resume(server, small_fs, tmp_path):
    """Resuming a .part when the disk fills: the earlier run's bytes stay,
    and once there is room the next run resumes from them."""
    from downloader import download_all

    dest = small_fs("4m")
    body = make_body(3 * MIB, seed=9)
    url = server.add("/big.bin", body, etag='"big"', drop_after=MIB)
    first = download_all([url], dest, retries=0)
    assert first.results[0].status == "failed"
    assert (dest / "big.bin.part").stat().st_size == MIB
    filler = dest / "filler"
    filler.write_bytes(b"\0" * (int(2.5 * MIB)))  # leaves too little for the rest

    second = download_all([url], dest, retries=0)
    assert "no space left on device" in second.results[0].error
    assert (dest / "big.bin.part").stat().st_size == MIB  # kept, cut back to what was good

    filler.unlink()
    server.reset_stats()
    third = download_all([url], dest)
    assert third.ok, third.failed
    assert server.requests[0].headers.get("Range") == f"bytes={MIB}-"
    assert (dest / "big.bin").read_bytes() == body


def test_a_full_disk_is_announced_once_however_many_workers_hit_it(server, small_fs, cli):
    dest = small_fs("2m")
    urls = [server.add(f"/f{n}.bin", make_body(MIB // 2, seed=n), rate=4 * MIB)
            for n in range(12)]
    proc = cli(*urls, "-d", dest, "-j", "8", "-q")

    assert proc.returncode == 1
    assert proc.stderr.count("stopping the run") == 1, proc.stderr


@pytest.mark.skipif(not hasattr(os, "POSIX_FADV_DONTNEED"), reason="no posix_fadvise here")
def test_a_big_file_has_its_writeback_started_as_it_streams(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # So that the final fsync overlaps the download instead of following it.
    advised: list[tuple[int, int, int]] = []
    monkeypatch.setattr(os, "posix_fadvise",
                        lambda fd, offset, length, advice: advised.append((offset, length, advice)),
                        raising=False)
    part = PartFile(tmp_path / "big.bin", tmp_path)
    part.open(0)
    chunk = memoryview(bytes(1 << 20))
    for _ in range(2 * (WRITEBACK_STEP >> 20) + 1):
        part.write(chunk)
    part.sync()
    part.close()
    assert advised == [(0, WRITEBACK_STEP, os.POSIX_FADV_DONTNEED),
                       (WRITEBACK_STEP, WRITEBACK_STEP, os.POSIX_FADV_DONTNEED)]
    assert part.size == 2 * WRITEBACK_STEP + (1 << 20)


def test_a_small_file_is_only_synced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    advised: list[int] = []
    monkeypatch.setattr(os, "posix_fadvise", lambda *args: advised.append(1), raising=False)
    part = PartFile(tmp_path / "small.bin", tmp_path)
    part.open(0)
    part.write(memoryview(bytes(16 << 10)))
    part.sync()
    part.close()
    assert advised == []
