"""Review of the streaming run (issue 9): exits, hangs and leftovers found
against real processes and the loopback servers."""
from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from downloader import iter_download
from downloader.engine import INPUT_AHEAD
from downloader.runs import Run
from downloader.entries import from_library
from downloader.progress import Reporter
from downloader.settings import Settings
from httpserver import FaultServer, make_body
from test_disk import small_fs  # noqa: F401 - a fixture
from test_streaming import FAST, _env


def _open_stdin_run(tmp_path: Path, lines: list[str], *args: str) -> subprocess.Popen:
    """``downloader -i -`` fed ``lines`` through a pipe left open."""
    proc = subprocess.Popen([sys.executable, "-m", "downloader", "-i", "-", "-d", "d", "-q",
                             "--retries", "0", *args],
                            cwd=tmp_path, env=_env(), stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdin is not None
    proc.stdin.write("\n".join(lines) + "\n")
    proc.stdin.flush()
    return proc


def _signal_keeping_stdin_open(proc: subprocess.Popen, signum: int) -> tuple[str, str]:
    """Signal ``proc`` while its standard input stays open (a producer that
    has not finished), then wait for it to exit."""
    proc.send_signal(signum)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise AssertionError(f"no exit 15 s after signal {signum}") from None
    assert proc.stdout is not None and proc.stderr is not None and proc.stdin is not None
    out, err = proc.stdout.read(), proc.stderr.read()
    proc.stdin.close()
    return out, err


@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)],
                         ids=["SIGINT", "SIGTERM"])
def test_a_signal_with_the_input_pipe_still_open_exits_cleanly(
        server: FaultServer, tmp_path: Path, signum: int, code: int) -> None:
    # The input reader is blocked reading stdin when the run ends: the
    # process must still exit with 130/143, not abort at shutdown.
    gate = threading.Event()
    held = server.add("/held.bin", make_body(50_000, seed=1), gate=gate, gate_after=5_000)
    proc = _open_stdin_run(tmp_path, [held], "--report", "r.json")
    try:
        server.wait_held("/held.bin")
        out, err = _signal_keeping_stdin_open(proc, signum)
    finally:
        gate.set()

    assert proc.returncode == code, err
    assert "Fatal Python error" not in err
    (entry,) = json.loads((tmp_path / "r.json").read_text())["results"]
    assert (entry["url"], entry["error"]) == (held, "interrupted")


def test_a_signal_ends_a_stopped_run_still_reading_its_open_input(
        server: FaultServer, tmp_path: Path) -> None:
    # DEST vanishes under the run: it stops, and reads the rest of the list
    # so that --save-failed names every entry. The list is a pipe whose
    # producer has not finished: Ctrl-C must still end the run (130).
    gate = threading.Event()
    held = server.add("/held.bin", b"h" * 1000, gate=gate)
    later = server.add("/later.bin", b"l")
    proc = _open_stdin_run(tmp_path, [held, later], "-j", "1", "--report", "r.json")
    assert proc.stderr is not None
    try:
        server.wait_held("/held.bin")
        shutil.rmtree(tmp_path / "d")
        gate.set()
        line = proc.stderr.readline()  # the run has stopped
        assert "stopping the run" in line, line
        out, err = _signal_keeping_stdin_open(proc, signal.SIGINT)
    finally:
        gate.set()

    assert proc.returncode == 130, err
    results = {r["url"]: r for r in json.loads((tmp_path / "r.json").read_text())["results"]}
    assert set(results) == {held, later}
    assert "is gone" in results[held]["error"]
    assert "the run stopped" in results[later]["error"]


def test_a_stopped_run_hands_on_the_rest_of_a_long_list_as_it_reads_it(
        server: FaultServer, tmp_path: Path) -> None:
    # After a stop, every entry still to come fails with the reason: each
    # must be handed on as it is read, not held until the list has ended
    # (a list of millions would be held whole).
    gate = threading.Event()
    held = server.add("/held.bin", b"h" * 1000, gate=gate)
    count = 20 * INPUT_AHEAD
    consumed = [0]

    def urls() -> Iterator[str]:
        yield held
        for n in range(count):
            consumed[0] = n + 1
            yield server.url(f"/later{n}.bin")

    dest = tmp_path / "d"
    results = iter_download(urls(), dest, workers=1, **FAST)
    stopped = threading.Thread(target=lambda: (server.wait_held("/held.bin"),
                                               shutil.rmtree(dest), gate.set()))
    stopped.start()
    try:
        seen = 0
        for result in results:
            seen += 1
            assert result.error is not None
            if result.url == held:
                assert "is gone" in result.error
                read_then = consumed[0]
    finally:
        gate.set()
        stopped.join()

    assert seen == count + 1
    assert read_then < count, "the rest was read whole before any of it was handed on"


def test_the_scratch_database_holding_whole_urls_is_owner_readable_only(
        server: FaultServer, tmp_path: Path) -> None:
    # Its 'seen' table keeps each URL as given, password and all (as the
    # --save-failed file does, which is 0600): others must not read it,
    # during the run nor after a run that was killed and left it behind.
    gate = threading.Event()
    held = server.add("/held.bin", b"h" * 1000, gate=gate)
    with_password = held.replace("http://", "http://alice:s3cret@")
    dest = tmp_path / "d"
    results = iter_download([with_password], dest, **FAST)
    try:
        waiting = threading.Thread(target=lambda: list(results))
        waiting.start()
        server.wait_held("/held.bin")
        scratch = dest / ".downloader" / "scratch.db"
        assert b"s3cret" in scratch.read_bytes()
        assert scratch.stat().st_mode & 0o077 == 0, oct(scratch.stat().st_mode)
    finally:
        gate.set()
        waiting.join()


def test_a_report_whose_disk_fills_is_dropped_and_the_run_goes_on(
        server: FaultServer, small_fs: Callable[[str], Path], cli: Callable[..., Any],
        tmp_path: Path) -> None:
    # The report is streamed as the run goes: a full disk where it goes is
    # said once, its temporary file removed, and the downloads go on.
    full = small_fs("16k")
    urls = [server.add(f"/a/rather/long/path/to/file{n}.bin", b"x") for n in range(300)]
    (tmp_path / "list.txt").write_text("\n".join(urls) + "\n")

    proc = cli("-i", "list.txt", "-d", "d", "-q", "--report", full / "r.json")

    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stderr.count(f"cannot write {full / 'r.json'}: No space left on device") == 1
    assert list(full.iterdir()) == []  # no temporary file left behind
    assert all((tmp_path / "d" / f"file{n}.bin").exists() for n in range(300))


class _CtrlCTwice(Reporter):
    """A first Ctrl-C mid-run once ``armed``, and a second while the run
    stops (as an impatient person at a library program's terminal)."""

    def __init__(self) -> None:
        self.armed = threading.Event()
        self.pressed = 0

    def tick(self) -> None:
        if self.armed.is_set() and self.pressed == 0:
            self.pressed = 1
            raise KeyboardInterrupt

    def finished(self, worker: int | None, result: Any, unreported: int = 0) -> None:
        if self.pressed == 1:
            self.pressed = 2
            raise KeyboardInterrupt


def test_a_second_ctrl_c_while_the_run_stops_leaves_no_thread_behind(
        server: FaultServer, tmp_path: Path) -> None:
    gate = threading.Event()
    held = server.add("/held.bin", make_body(50_000, seed=2), gate=gate, gate_after=5_000)
    others = [server.url(f"/o{n}.bin") for n in range(4 * INPUT_AHEAD)]
    reporter = _CtrlCTwice()
    run = Run(from_library([held, *others]), Settings.build(tmp_path / "d", workers=1, **FAST),
              reporter)
    arm = threading.Thread(target=lambda: (server.wait_held("/held.bin"), reporter.armed.set()))
    arm.start()
    before = set(threading.enumerate())
    try:
        with pytest.raises(KeyboardInterrupt):
            for _ in run:
                pass
    finally:
        arm.join()
    assert reporter.pressed == 2
    # The list's reader and the held worker are stopped, not left running
    # in the caller's process (the gate is still closed).
    left = [t for t in set(threading.enumerate()) - before if t.name.startswith("downloader")]
    for thread in left:
        thread.join(10)
    alive = [t.name for t in left if t.is_alive()]
    gate.set()
    assert alive == []
    assert (tmp_path / "d" / "held.bin.part").stat().st_size == 5_000
