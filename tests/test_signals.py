"""Ctrl-C and SIGTERM against a real process: prompt exit, the right status,
``.part`` kept for the next run, the summary and report still written."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import pytest

from httpserver import make_body

REPO_ROOT = Path(__file__).resolve().parent.parent
BODY = make_body(600_000, seed=11)
RATE = 100_000  # bytes/s: the body takes ~6 s, so the signal always lands mid-transfer
PROMPT = 3.0  # seconds from the signal to the exit


def popen(tmp_path: Path, *args: str) -> subprocess.Popen:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    return subprocess.Popen([sys.executable, *args], cwd=tmp_path, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def wait_for(condition: Callable[[], bool], proc: subprocess.Popen, what: str,
             timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if proc.poll() is not None:
            raise AssertionError(f"process ended ({proc.returncode}) before {what}: "
                                 f"{proc.communicate()[1]}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def has_bytes(path: Path) -> Callable[[], bool]:
    return lambda: path.exists() and path.stat().st_size > 0


def interrupt(proc: subprocess.Popen, signum: int) -> tuple[str, str, float]:
    """Send ``signum``; return (stdout, stderr, seconds until the process exited)."""
    sent = time.monotonic()
    proc.send_signal(signum)
    try:
        out, err = proc.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise AssertionError(f"no exit 15 s after signal {signum}") from None
    return out, err, time.monotonic() - sent


@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)],
                         ids=["SIGINT", "SIGTERM"])
def test_signal_keeps_part_and_next_run_resumes(server, tmp_path, cli, signum, code):
    url = server.add("/big.bin", BODY, etag='"big"', rate=RATE)
    part, final = tmp_path / "dl" / "big.bin.part", tmp_path / "dl" / "big.bin"
    proc = popen(tmp_path, "-m", "downloader", url, "-d", "dl", "--report", "report.json",
                 "--progress", "log")
    wait_for(has_bytes(part), proc, ".part bytes")

    out, err, took = interrupt(proc, signum)

    assert proc.returncode == code, err
    assert took < PROMPT
    assert out == ""
    assert not final.exists()
    kept = part.read_bytes()
    assert kept and BODY.startswith(kept)
    assert "1 failed" in err and "interrupted" in err  # the summary, with the reason
    (entry,) = json.loads((tmp_path / "report.json").read_text())["results"]
    assert (entry["url"], entry["status"], entry["error"]) == (url, "failed", "interrupted")

    server.add("/big.bin", BODY, etag='"big"')  # full speed for the rerun
    rerun = cli(url, "-d", "dl", "--retry-wait", "0.01")

    assert rerun.returncode == 0, rerun.stderr
    assert final.read_bytes() == BODY
    assert not part.exists()
    last = server.requests[-1]
    assert last.headers.get("Range") == f"bytes={len(kept)}-"
    assert last.headers.get("If-Range") == '"big"'


@pytest.mark.parametrize("stall", ["stall", "stall_before_headers"])
def test_sigint_while_blocked_on_a_silent_socket(server, tmp_path, stall):
    """A 30 s read timeout must not hold Ctrl-C up: the blocked read is cut."""
    url = server.add("/quiet.bin", BODY, **{stall: 30})
    proc = popen(tmp_path, "-m", "downloader", url, "-d", "dl", "--timeout", "30",
                 "--report", "report.json")
    wait_for(lambda: server.hits("/quiet.bin") > 0, proc, "the request")

    _, err, took = interrupt(proc, signal.SIGINT)

    assert proc.returncode == 130, err
    assert took < PROMPT
    assert not (tmp_path / "dl" / "quiet.bin").exists()
    (entry,) = json.loads((tmp_path / "report.json").read_text())["results"]
    assert (entry["status"], entry["error"]) == ("failed", "interrupted")


LIBRARY_SCRIPT = """
import sys
from downloader import download_all
summary = download_all([sys.argv[1]], "dl", retry_wait=0.01)
print("returned normally")
"""


def test_library_reraises_keyboard_interrupt(server, tmp_path):
    url = server.add("/big.bin", BODY, etag='"big"', rate=RATE)
    part = tmp_path / "dl" / "big.bin.part"
    proc = popen(tmp_path, "-c", LIBRARY_SCRIPT, url)
    wait_for(has_bytes(part), proc, ".part bytes")

    out, err, took = interrupt(proc, signal.SIGINT)

    # An uncaught KeyboardInterrupt ends Python by SIGINT (status 130 in a shell).
    assert proc.returncode == -signal.SIGINT, err
    assert "KeyboardInterrupt" in err
    assert "returned normally" not in out
    assert took < PROMPT
    assert part.stat().st_size > 0 and BODY.startswith(part.read_bytes())
    assert not (tmp_path / "dl" / "big.bin").exists()


SLOW_RECORDING = '''
import time
import downloader.state as state
real_apply = state.StateDB.apply
def apply(self, url, change):
    if isinstance(change, state.PartBegun):
        time.sleep(1.0)  # a main thread preempted while it records a new .part
    return real_apply(self, url, change)
state.StateDB.apply = apply
'''


def test_a_signal_while_a_new_part_is_being_recorded_still_leaves_it_resumable(server, tmp_path):
    """The signal lands while the main thread is in the middle of recording
    the .part's origin: the interrupted transfer's last word records it
    again, so the next run resumes instead of starting over."""
    url = server.add("/big.bin", BODY, etag='"big"', rate=RATE)
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "sitecustomize.py").write_text(SLOW_RECORDING)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), str(hooks)])
    proc = subprocess.Popen([sys.executable, "-m", "downloader", url, "-d", "dl", "-q"],
                            cwd=tmp_path, env=env, text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    part = tmp_path / "dl" / "big.bin.part"
    wait_for(has_bytes(part), proc, "the first bytes")
    _, _, _ = interrupt(proc, signal.SIGTERM)
    assert proc.returncode == 143
    kept = part.stat().st_size

    server.add("/big.bin", BODY, etag='"big"')
    rerun = popen(tmp_path, "-m", "downloader", url, "-d", "dl", "-q")
    rerun.communicate(timeout=30)
    assert rerun.returncode == 0
    assert server.requests[-1].headers.get("Range") == f"bytes={kept}-"
    assert (tmp_path / "dl" / "big.bin").read_bytes() == BODY
