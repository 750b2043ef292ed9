"""The command line end to end: ``python -m downloader`` as a subprocess
against the real FaultServer, checked as a user would (exit status, bytes
on disk, what stdout and stderr say, the report)."""
from __future__ import annotations

import base64
import fcntl
import hashlib
import json
import os
import pty
import re
import select
import stat
import struct
import subprocess
import sys
import termios
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Callable, Dict, List, Optional

import pytest

import downloader
from httpserver import FaultServer, make_body

REPO_ROOT = Path(__file__).resolve().parents[1]
FAST = ("--retry-wait", "0.01")
ANSI = "\x1b["


# -- helpers ------------------------------------------------------------------

def write_list(path: Path, lines: List[str]) -> str:
    path.write_text("".join(line + "\n" for line in lines))
    return path.name


def files_under(root: Path) -> Dict[str, bytes]:
    """Every regular file below ``root`` except the state folder, by relative path."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*")
            if p.is_file() and ".downloader" not in p.relative_to(root).parts}


def lines_with(text: str, *needles: str) -> List[str]:
    return [line for line in text.splitlines() if all(n in line for n in needles)]


def byte_forms(n: int) -> List[str]:
    """Ways a summary may spell ``n`` bytes: exact, or in KiB (1 decimal or whole)."""
    kib = n / 1024
    return [str(n), f"{kib:.1f} KiB", f"{kib:.1f}K", f"{kib:.0f} KiB", f"{kib:.0f}K"]


def assert_usage_error(proc: subprocess.CompletedProcess) -> str:
    """Exit 2, no traceback, and one message line (argparse may put its usage block above it)."""
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stdout == ""
    lines = proc.stderr.splitlines()
    if lines and lines[0].startswith("usage:"):  # argparse: "usage: ..." + indented continuation
        lines = lines[1:]
        while lines and lines[0].startswith(" "):
            lines = lines[1:]
    assert len(lines) == 1, proc.stderr
    assert "error" in lines[0].lower()
    return lines[0]


def popen_cli(cwd: Path, *args: str, **kwargs) -> subprocess.Popen:
    """Start the CLI without waiting, with the same environment as the ``cli`` fixture."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    return subprocess.Popen([sys.executable, "-m", "downloader", *args], cwd=cwd, env=env,
                            **kwargs)


def run_on_pty(cwd: Path, *args: str, timeout: float = 30.0,
               watch: Optional[Callable[[str], None]] = None):
    """Run the CLI with stderr on a pseudo-terminal; return (exit status, stdout, pty bytes).
    ``watch`` is called with everything drawn so far each time more arrives."""
    master, slave = pty.openpty()
    # A real size, so tqdm's dynamic_ncols has something to measure.
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    try:
        proc = popen_cli(cwd, *args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=slave)
    finally:
        os.close(slave)
    chunks = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.1)
            if not ready:
                if proc.poll() is not None:
                    break
                continue
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: every slave end is closed, the child is gone
                break
            if not data:
                break
            chunks.append(data)
            if watch is not None:
                watch(b"".join(chunks).decode("utf-8", "replace"))
        if proc.poll() is None and time.monotonic() >= deadline:
            proc.kill()  # out of time: the caller's checks of what was drawn say why
        stdout = proc.communicate(timeout=max(1.0, deadline - time.monotonic()))[0]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    return proc.returncode, stdout, b"".join(chunks)


@pytest.fixture
def other_server():
    """A second origin (another port) for cross-origin redirects."""
    with FaultServer() as srv:
        yield srv


# -- downloading a list ---------------------------------------------------------

def test_list_downloads_bytes_summary_on_stderr_stdout_empty(cli, server, tmp_path):
    bodies = {"/a.bin": make_body(1024, 1), "/b.bin": make_body(2048, 2)}
    urls = [server.add(path, body) for path, body in bodies.items()]
    write_list(tmp_path / "urls.txt", ["# two files", "", *urls])

    proc = cli("-i", "urls.txt", "-d", "out", *FAST)

    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ""
    assert files_under(tmp_path / "out") == {"a.bin": bodies["/a.bin"], "b.bin": bodies["/b.bin"]}
    summary = lines_with(proc.stderr, "downloaded")
    assert summary, proc.stderr
    line = summary[-1]
    for count in (r"\b2 downloaded", r"\b0 skipped", r"\b0 failed"):
        assert re.search(count, line), line
    assert any(form in line for form in byte_forms(3072)), line


def test_404_exits_1_names_url_and_reason_others_kept(cli, server, tmp_path):
    good = {"/one.bin": make_body(500, 3), "/two.bin": make_body(700, 4)}
    urls = [server.add(path, body) for path, body in good.items()]
    missing = server.url("/missing.bin")
    write_list(tmp_path / "urls.txt", [urls[0], missing, urls[1]])

    proc = cli("-i", "urls.txt", "-d", "out", *FAST)

    assert proc.returncode == 1
    assert proc.stdout == ""
    assert lines_with(proc.stderr, missing, "404"), proc.stderr
    assert files_under(tmp_path / "out") == {"one.bin": good["/one.bin"], "two.bin": good["/two.bin"]}


BAD_LINES = [  # (line, what the error must also mention)
    ("{base}/x.bin colour=red", "colour"),
    ("{base}/x.bin sha256=abc123", "sha256"),
    ("ftp://127.0.0.1/file.bin", "ftp"),
    ("http:///no-host.bin", "host"),
]


@pytest.mark.parametrize("source", ["file", "stdin"])
def test_bad_list_lines_fail_with_file_and_line(cli, server, tmp_path, source):
    body = make_body(800, 5)
    good = server.add("/good.bin", body)
    lines = ["# header comment", good] + [line.format(base=server.base) for line, _ in BAD_LINES]
    if source == "file":
        name = write_list(tmp_path / "urls.txt", lines)
        proc = cli("-i", name, "-d", "out", "--report", "report.json", *FAST)
    else:
        name = "-"
        proc = cli("-i", "-", "-d", "out", "--report", "report.json", *FAST,
                   input="".join(line + "\n" for line in lines))

    assert proc.returncode == 1
    assert files_under(tmp_path / "out") == {"good.bin": body}
    results = json.loads((tmp_path / "report.json").read_text())["results"]
    assert [r["status"] for r in results] == ["downloaded"] + ["failed"] * len(BAD_LINES)
    for number, (result, (_, topic)) in enumerate(zip(results[1:], BAD_LINES), start=3):
        assert f"{name}:{number}" in result["error"]
        assert topic in result["error"].lower()
        assert lines_with(proc.stderr, f"{name}:{number}"), proc.stderr
    assert server.hits("/x.bin") == 0


def test_arguments_and_several_lists_name_their_origin(cli, server, tmp_path):
    bodies = {f"/f{n}.bin": make_body(300 + n, n) for n in range(3)}
    urls = [server.add(path, body) for path, body in bodies.items()]
    write_list(tmp_path / "first.txt", [urls[1], "ftp://127.0.0.1/a"])
    write_list(tmp_path / "second.txt", ["# only one good", "", f"{urls[2]} bogus=1"])

    proc = cli(urls[0], "gopher://127.0.0.1/b", "-i", "first.txt", "-i", "second.txt",
               "-d", "out", *FAST)

    assert proc.returncode == 1
    for where in ("argument 2", "first.txt:2", "second.txt:3"):
        assert lines_with(proc.stderr, where), (where, proc.stderr)
    assert files_under(tmp_path / "out") == {"f0.bin": bodies["/f0.bin"], "f1.bin": bodies["/f1.bin"]}


def test_list_of_only_comments_downloads_nothing(cli, server, tmp_path):
    server.add("/never.bin", b"x")
    write_list(tmp_path / "urls.txt", ["# nothing here", "", "   # indented comment", "\t"])

    proc = cli("-i", "urls.txt", "-d", "out")

    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ""
    dest = tmp_path / "out"
    assert not dest.exists() or files_under(dest) == {}
    assert server.requests == []


# -- usage errors ---------------------------------------------------------------

USAGE_ERRORS = {
    "no-url-source": [],
    "missing-input-file": ["-i", "nope.txt"],
    "input-is-a-folder": ["-i", "a-folder"],
    "dest-is-a-file": ["-d", "a-file", "{url}"],
    "workers-0": ["-j", "0", "{url}"],
    "workers-300": ["-j", "300", "{url}"],
    "quiet-and-verbose": ["-q", "-v", "{url}"],
    "bad-max-size": ["--max-size", "12Q", "{url}"],
    "missing-ca-bundle": ["--ca-bundle", "no-such.pem", "{url}"],
}


@pytest.mark.parametrize("args", list(USAGE_ERRORS.values()), ids=list(USAGE_ERRORS))
def test_usage_errors_exit_2_with_one_line(cli, server, tmp_path, args):
    url = server.add("/file.bin", b"payload")
    (tmp_path / "a-folder").mkdir()
    (tmp_path / "a-file").write_bytes(b"not a folder")

    proc = cli(*[a.format(url=url) for a in args])

    assert_usage_error(proc)
    assert server.requests == []
    assert (tmp_path / "a-file").read_bytes() == b"not a folder"


def test_unreadable_input_file_is_usage_error(cli, server, tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root reads files whatever their mode")
    listing = tmp_path / "secret.txt"
    listing.write_text(server.add("/file.bin", b"payload") + "\n")
    listing.chmod(0)

    proc = cli("-i", "secret.txt", "-d", "out")

    assert "secret.txt" in assert_usage_error(proc)
    assert server.requests == []


def test_version_and_help(cli):
    version = cli("--version")
    assert version.returncode == 0
    assert downloader.__version__ in version.stdout + version.stderr

    helped = cli("-h")
    assert helped.returncode == 0
    assert "usage" in helped.stdout.lower()
    for option in ("--input", "--dest", "--report", "--save-failed", "--progress"):
        assert option in helped.stdout


# -- the JSON report ---------------------------------------------------------------

# "mirror" came with issue 12 (additive): the URL that delivered the file.
RESULT_KEYS = {"url", "path", "status", "bytes", "attempts", "elapsed", "http_status", "error",
               "mirror"}


def check_report(report: dict, tmp_path: Path, ok_url: str, ok_body: bytes, bad_url: str) -> None:
    assert set(report) == {"version", "started", "finished", "elapsed", "totals", "results"}
    assert report["version"] == 1
    started, finished = (datetime.fromisoformat(report[k]) for k in ("started", "finished"))
    assert started.tzinfo is not None and started <= finished
    assert isinstance(report["elapsed"], (int, float)) and report["elapsed"] >= 0
    assert report["totals"] == {"downloaded": 1, "skipped": 0, "failed": 1, "bytes": len(ok_body)}
    ok, bad = report["results"]
    assert set(ok) == set(bad) == RESULT_KEYS
    assert ok["url"] == ok_url and ok["status"] == "downloaded"
    assert Path(ok["path"]).read_bytes() == ok_body
    assert Path(ok["path"]).resolve() == (tmp_path / "out" / "ok.bin").resolve()
    assert ok["bytes"] == len(ok_body) and ok["attempts"] == 1
    assert ok["http_status"] == 200 and ok["error"] is None and ok["mirror"] == ok_url
    assert isinstance(ok["elapsed"], (int, float)) and ok["elapsed"] >= 0
    assert bad["url"] == bad_url and bad["status"] == "failed" and bad["path"] is None
    assert bad["http_status"] == 404 and "404" in bad["error"] and bad["attempts"] >= 1
    assert bad["mirror"] is None


def test_report_file_has_contract_shape(cli, server, tmp_path):
    body = make_body(1500, 6)
    ok_url, bad_url = server.add("/ok.bin", body), server.url("/nope.bin")

    proc = cli(ok_url, bad_url, "-d", "out", "--report", "report.json", *FAST)

    assert proc.returncode == 1
    assert proc.stdout == ""
    check_report(json.loads((tmp_path / "report.json").read_text()), tmp_path, ok_url, body, bad_url)


def test_report_dash_puts_only_json_on_stdout(cli, server, tmp_path):
    body = make_body(1500, 7)
    ok_url, bad_url = server.add("/ok.bin", body), server.url("/nope.bin")

    proc = cli(ok_url, bad_url, "-d", "out", "--report", "-", *FAST)

    assert proc.returncode == 1
    check_report(json.loads(proc.stdout), tmp_path, ok_url, body, bad_url)
    assert lines_with(proc.stderr, bad_url, "404")  # the human text still goes to stderr


# -- quiet, verbose, progress ------------------------------------------------------

def test_quiet_success_prints_nothing(cli, server, tmp_path):
    body = make_body(900, 8)
    proc = cli("-q", server.add("/q.bin", body), "-d", "out", *FAST)

    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "", "")
    assert files_under(tmp_path / "out") == {"q.bin": body}


def test_quiet_failure_prints_url_and_reason(cli, server, tmp_path):
    good, missing = server.add("/q.bin", b"fine"), server.url("/absent.bin")

    proc = cli("-q", good, missing, "-d", "out", *FAST)

    assert proc.returncode == 1
    assert proc.stdout == ""
    assert lines_with(proc.stderr, missing, "404"), proc.stderr
    assert good not in proc.stderr  # quiet: successes are not mentioned


def test_verbose_prints_a_line_per_finished_file(cli, server, tmp_path):
    urls = [server.add(f"/v{n}.bin", make_body(100 * (n + 1), n)) for n in range(3)]

    proc = cli("-v", *urls, "-d", "out", *FAST)

    assert proc.returncode == 0, proc.stderr
    for n, url in enumerate(urls):
        assert any(url in line or f"v{n}.bin" in line for line in proc.stderr.splitlines()), \
            (url, proc.stderr)
    per_file = [line for line in proc.stderr.splitlines()
                if any(url in line or f"v{n}.bin" in line for n, url in enumerate(urls))]
    assert len(per_file) >= 3


@pytest.mark.parametrize("progress", ["log", "auto", "none"])
def test_progress_on_a_pipe_has_no_terminal_codes(cli, server, tmp_path, progress):
    url = server.add("/p.bin", make_body(4000, 9))
    flaky = server.add("/flaky.bin", b"eventually", fail_times=1)

    proc = cli("--progress", progress, url, flaky, server.url("/gone.bin"), "-d", "out", *FAST)

    assert proc.returncode == 1
    assert proc.stderr.strip()
    assert "\r" not in proc.stderr and ANSI not in proc.stderr


def test_progress_log_status_line_during_slow_download(cli, server, tmp_path):
    body = make_body(30_000, 10)
    url = server.add("/slow.bin", body, rate=5_000)  # ~6 s: past one status interval

    proc = cli("--progress", "log", url, "-d", "out", *FAST)

    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "out" / "slow.bin").read_bytes() == body
    assert "\r" not in proc.stderr and ANSI not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    summary = [i for i, line in enumerate(lines) if re.search(r"\b1 downloaded", line)]
    assert summary, proc.stderr
    assert summary[-1] >= 1, f"no status line before the summary:\n{proc.stderr}"


WORKER_BAR = re.compile(r"#[01] (bar[01]\.bin)\s*:\s*(\d+)%\|")
OVERALL_BYTES = re.compile(r"total:[^\r\n]*\| 0/2 files \[[^\]]*, ([\d.]+) (?:B|KiB), ")


def test_progress_bar_on_a_terminal_redraws_bars_mid_download(server, tmp_path):
    bodies = {f"/bar{n}.bin": make_body(20_000, n) for n in range(2)}
    # Each body trickles for half a second (longer than the client waits
    # before it reports progress), then is held half-way until the test has
    # seen the bars drawn with that progress.
    gate = threading.Event()
    urls = [server.add(path, body, rate=20_000, gate=gate, gate_after=10_000)
            for path, body in bodies.items()]
    seen = {}

    def watch(text: str) -> None:
        percent = dict(WORKER_BAR.findall(text))
        overall = OVERALL_BYTES.findall(text)
        if "text" not in seen and len(percent) == 2 and all(int(p) > 0 for p in percent.values()) \
                and overall and float(overall[-1]) > 0:
            seen["text"] = text
            gate.set()

    try:
        status, stdout, drawn = run_on_pty(tmp_path, "--progress", "bar", "-j", "2", *urls,
                                           "-d", "out", *FAST, timeout=15, watch=watch)
    finally:
        gate.set()

    text = drawn.decode("utf-8", "replace")
    assert "text" in seen, f"no bars with progress while both bodies were half-way:\n{text!r}"
    # Held at 10 000 of 20 000 bytes: what was drawn was mid-download.
    assert all(0 < int(p) <= 50 for _, p in WORKER_BAR.findall(seen["text"])), seen["text"]
    assert status == 0, text
    assert stdout == b""
    assert re.search(r"total: 100%[^\r\n]*2/2 files", text), text
    assert files_under(tmp_path / "out") == {p.lstrip("/"): b for p, b in bodies.items()}


def screen_after(drawn: bytes, columns: int = 120) -> List[str]:
    """The lines a terminal shows after ``drawn``; it knows what tqdm sends:
    text, CR, LF (the pty adds the CR) and cursor up."""
    rows: List[List[str]] = [[]]
    row = column = 0
    for token in re.findall(r"\x1b\[A|[^\x1b]", drawn.decode("utf-8", "replace")):
        if token == "\r":
            column = 0
        elif token == "\n":
            row += 1
            if row == len(rows):
                rows.append([])
        elif token == "\x1b[A":
            row = max(0, row - 1)
        elif column < columns:
            line = rows[row]
            line.extend(" " * (column + 1 - len(line)))
            line[column] = token
            column += 1
    return ["".join(line).rstrip() for line in rows]


def test_progress_bar_messages_get_lines_of_their_own(server, tmp_path):
    # tqdm before 4.21 wrote them over a bar without clearing it.
    urls = [server.add(f"/slow{n}.bin", make_body(200_000, n), rate=400_000) for n in range(2)]
    missing = server.url("/missing.bin")

    status, _, drawn = run_on_pty(tmp_path, "--progress", "bar", "-j", "2", urls[0], missing,
                                  urls[1], "-d", "out", *FAST)

    screen = screen_after(drawn)
    assert status == 1, screen
    assert [line for line in screen if "FAILED" in line] == [
        f"FAILED {missing}: HTTP 404 Not Found"], screen


# A number and the byte unit written after it: "19.5 KiB", "20.0kB/s", "19.5k/".
BYTE_UNIT = re.compile(r"\d ?([kKMGT]i?B|B|[kKMGT](?=[/ \]]))")
SIZED_BAR = re.compile(r"#\d sized\.bin\s*:\s*\d+%\|[^\r\n]*\| [\d.]+ KiB/19\.5 KiB \[[^\]]* KiB/s\]")
CHUNKED_BAR = re.compile(r"#\d chunked\.bin\s*: [\d.]+ KiB \[[^\]]* KiB/s\]")


def test_progress_bars_spell_every_size_and_rate_in_powers_of_1024(server, tmp_path):
    # Sizes and rates alike, on the total bar and the workers' bars: one
    # family (KiB, MiB), as --limit-rate and --max-size take them.
    gate = threading.Event()
    sized = server.add("/sized.bin", make_body(20_000, 1), rate=20_000, gate=gate,
                       gate_after=10_000)
    chunked = server.add("/chunked.bin", make_body(20_000, 2), rate=20_000, gate=gate,
                         gate_after=10_000, chunked=True)
    seen = {}

    def watch(text: str) -> None:
        if "text" not in seen and SIZED_BAR.search(text) and CHUNKED_BAR.search(text):
            seen["text"] = text
            gate.set()

    try:
        status, _, drawn = run_on_pty(tmp_path, "--progress", "bar", "-j", "2", sized, chunked,
                                      "-d", "out", *FAST, timeout=15, watch=watch)
    finally:
        gate.set()

    text = drawn.decode("utf-8", "replace")
    assert "text" in seen, f"no worker bars in KiB while both bodies were half-way:\n{text!r}"
    assert status == 0, text
    units = set(BYTE_UNIT.findall(text))
    assert "KiB" in units and units <= {"B", "KiB", "MiB", "GiB"}, (units, text)


# -- --save-failed ------------------------------------------------------------------

def test_save_failed_lists_failures_and_retries_only_them(cli, server, tmp_path):
    good_body, flaky_body = make_body(600, 11), make_body(700, 12)
    good = server.add("/good.bin", good_body)
    # 404 the first time (a failure that is not retried within the run), fine afterwards.
    flaky = server.add("/flaky.bin", flaky_body, fail_times=1, fail_status=404)
    digest = hashlib.sha256(flaky_body).hexdigest()
    write_list(tmp_path / "urls.txt", [good, f"{flaky} out=kept/f.bin sha256={digest}"])

    first = cli("-i", "urls.txt", "-d", "out", "--save-failed", "failed.txt", *FAST)

    assert first.returncode == 1
    saved = tmp_path / "failed.txt"
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600
    entries = [line.split() for line in saved.read_text().splitlines()
               if line.strip() and not line.lstrip().startswith("#")]
    assert len(entries) == 1
    assert entries[0][0] == flaky
    assert sorted(entries[0][1:]) == sorted(["out=kept/f.bin", f"sha256={digest}"])
    assert good not in [e[0] for e in entries]

    second = cli("-i", "failed.txt", "-d", "out", *FAST)

    assert second.returncode == 0, second.stderr
    assert server.hits("/good.bin") == 1
    assert server.hits("/flaky.bin") == 2
    assert files_under(tmp_path / "out") == {"good.bin": good_body, "kept/f.bin": flaky_body}


# -- the DEST lock ---------------------------------------------------------------------

def test_second_run_on_busy_dest_exits_3(cli, server, tmp_path):
    slow_body, quick_body = make_body(500, 13), make_body(400, 14)
    # The first run's only response is held until the second run has ended,
    # so the first run is mid-download, holding DEST, however slow the machine.
    gate = threading.Event()
    slow = server.add("/slow.bin", slow_body, gate=gate)
    quick = server.add("/quick.bin", quick_body)
    first = popen_cli(tmp_path, slow, "-d", "out", *FAST, stdout=subprocess.PIPE,
                      stderr=subprocess.PIPE, text=True)
    try:
        server.wait_held("/slow.bin", timeout=30)

        # Another spelling of the same folder is the same DEST.
        blocked = cli(quick, "-d", str(tmp_path / "out" / "."), *FAST)

        assert blocked.returncode == 3, blocked.stderr
        assert "Traceback" not in blocked.stderr
        assert len(blocked.stderr.strip().splitlines()) == 1, blocked.stderr
        assert "another run is using" in blocked.stderr
        assert server.hits("/quick.bin") == 0
        assert first.poll() is None  # still waiting for its body: the lock was really held
        gate.set()
        out, err = first.communicate(timeout=30)
    finally:
        gate.set()
        if first.poll() is None:
            first.kill()
            first.communicate()
    assert first.returncode == 0, err

    after = cli(quick, "-d", "out", *FAST)

    assert after.returncode == 0, after.stderr
    assert files_under(tmp_path / "out") == {"slow.bin": slow_body, "quick.bin": quick_body}


# -- out= --------------------------------------------------------------------------------

def test_out_creates_sub_folders(cli, server, tmp_path):
    body = make_body(1234, 15)
    write_list(tmp_path / "urls.txt", [f"{server.add('/src.bin', body)} out=sub/dir/name.bin"])

    proc = cli("-i", "urls.txt", "-d", "out", *FAST)

    assert proc.returncode == 0, proc.stderr
    assert files_under(tmp_path / "out") == {"sub/dir/name.bin": body}


@pytest.mark.parametrize("out", ["../x.bin", "sub/../../x.bin", "{abs}"],
                         ids=["parent", "sub-then-up", "absolute"])
def test_out_leaving_dest_fails_and_writes_nothing_outside(cli, server, tmp_path, out):
    body = make_body(300, 16)
    url = server.add("/evil.bin", body)
    good = server.add("/fine.bin", b"fine")
    (tmp_path / "work").mkdir()
    outside = tmp_path / "work" / "abs.bin"
    write_list(tmp_path / "work" / "urls.txt", [good, f"{url} out={out.format(abs=outside)}"])
    before = sorted(p for p in tmp_path.rglob("*") if "dest" not in p.parts)

    proc = cli("-i", "work/urls.txt", "-d", "work/dest/inner", *FAST)

    assert proc.returncode == 1
    assert lines_with(proc.stderr, "work/urls.txt:2"), proc.stderr
    assert sorted(p for p in tmp_path.rglob("*") if "dest" not in p.parts) == before
    assert files_under(tmp_path / "work" / "dest" / "inner") == {"fine.bin": b"fine"}
    assert server.hits("/evil.bin") == 0


# -- secrets -----------------------------------------------------------------------------

# (The test is not named "...secret..." because its tmp_path, shown in output, would match.)
SECRETS = ("secret", "tok123", "sekret", base64.b64encode(b"user:secret").decode())


def test_credentials_stay_out_of_output_report_and_state(cli, server, tmp_path):
    plain_body, authed_body = make_body(500, 17), make_body(600, 18)
    server.add("/plain.bin", plain_body)
    server.add("/authed.bin", authed_body)
    with_creds = f"http://user:secret@127.0.0.1:{server.port}"
    args = [server.url("/plain.bin"), f"{with_creds}/authed.bin", f"{with_creds}/gone.bin",
            "-H", "Authorization: Bearer tok123", "-H", "Cookie: c=sekret",
            "-v", "--progress", "log", "-d", "out", "--report", "report.json", *FAST]

    proc = cli(*args)

    assert proc.returncode == 1  # /gone.bin is a 404 that names its (redacted) URL
    assert files_under(tmp_path / "out") == {"plain.bin": plain_body, "authed.bin": authed_body}
    plain = [r for r in server.requests if r.path == "/plain.bin"]
    assert plain and plain[0].headers.get("Authorization") == "Bearer tok123"
    assert plain[0].headers.get("Cookie") == "c=sekret"
    authed = [r for r in server.requests if r.path == "/authed.bin"]
    assert authed and authed[0].headers.get("Authorization") == \
        "Basic " + base64.b64encode(b"user:secret").decode()
    assert f"user:***@127.0.0.1:{server.port}/gone.bin" in proc.stderr

    state_files = [p for p in (tmp_path / "out" / ".downloader").rglob("*") if p.is_file()]
    assert state_files
    places = {"stdout": proc.stdout.encode(), "stderr": proc.stderr.encode(),
              "report": (tmp_path / "report.json").read_bytes(),
              **{str(p): p.read_bytes() for p in state_files}}
    for where, data in places.items():
        for secret in SECRETS:
            assert secret.encode() not in data, f"{secret!r} leaked into {where}"


CREDENTIALED_BAD_LINES = {  # a list line that is not a valid entry, with a password in its URL
    "scheme-relative": "//user:secret@127.0.0.1:{port}/x.bin",
    "ftp": "ftp://user:secret@127.0.0.1:{port}/x.bin",
    "unknown-key": "http://user:secret@127.0.0.1:{port}/x.bin colour=red",
    "bad-port": "http://user:secret@127.0.0.1:99999/x.bin",
    "no-host": "http://user:secret@/x.bin",
    "out-leaves-dest": "http://user:secret@127.0.0.1:{port}/x.bin out=../x.bin",
}


@pytest.mark.parametrize("line", list(CREDENTIALED_BAD_LINES.values()),
                         ids=list(CREDENTIALED_BAD_LINES))
def test_bad_line_with_credentials_does_not_show_them(cli, server, tmp_path, line):
    write_list(tmp_path / "urls.txt", [line.format(port=server.port)])

    proc = cli("-i", "urls.txt", "-d", "out", "--report", "report.json", *FAST)

    assert proc.returncode == 1
    assert lines_with(proc.stderr, "urls.txt:1"), proc.stderr
    report = (tmp_path / "report.json").read_text()
    assert json.loads(report)["results"][0]["status"] == "failed"
    for where, text in (("stderr", proc.stderr), ("report", report)):
        assert "secret" not in text, f"password shown in {where}:\n{text}"
    assert server.requests == []


def test_a_bad_line_with_terminal_codes_is_shown_without_them(cli, server, tmp_path):
    # Escape sequences would recolour (or retitle) the user's terminal.
    write_list(tmp_path / "urls.txt", [server.url("/a\x1b[31mred\x07.bin")])

    proc = cli("-i", "urls.txt", "-d", "out", *FAST)

    assert proc.returncode == 1
    assert "\x1b" not in proc.stderr and "\x07" not in proc.stderr, repr(proc.stderr)
    shown = server.url("/a?[31mred?.bin")
    assert lines_with(proc.stderr, "FAILED", shown, "urls.txt:1"), proc.stderr


def test_headers_not_sent_to_another_origin_after_redirect(cli, server, other_server, tmp_path):
    body = make_body(700, 19)
    target = other_server.add("/target.bin", body)
    start = server.add("/start.bin", redirect_to=target)

    proc = cli(start, "-H", "Authorization: Bearer tok123", "-H", "Cookie: c=sekret",
               "-H", "X-Api-Key: k-42", "-d", "out", *FAST)

    assert proc.returncode == 0, proc.stderr
    assert files_under(tmp_path / "out") == {"start.bin": body}
    first = [r for r in server.requests if r.path == "/start.bin"]
    assert first and first[0].headers.get("X-Api-Key") == "k-42"
    assert first[0].headers.get("Authorization") == "Bearer tok123"
    followed = [r for r in other_server.requests if r.path == "/target.bin"]
    assert followed
    for request in followed:
        for name in ("Authorization", "Cookie", "X-Api-Key"):
            assert request.headers.get(name) is None, (name, request.headers.get(name))


def test_a_list_line_that_is_not_utf8_fails_by_number(cli, server, tmp_path):
    good = server.add("/good.bin", b"good")
    (tmp_path / "urls.txt").write_bytes(
        good.encode() + b"\n" + server.url("/caf\xe9.bin").encode("latin-1") + b"\n")

    result = cli("-i", "urls.txt", "-d", "dest", "--report", "report.json")

    assert result.returncode == 1, result.stderr
    assert "urls.txt:2" in result.stderr and "UTF-8" in result.stderr
    assert (tmp_path / "dest" / "good.bin").read_bytes() == b"good"
    report = json.loads((tmp_path / "report.json").read_text())
    assert [r["status"] for r in report["results"]] == ["downloaded", "failed"]


def test_report_into_a_missing_folder_is_a_usage_error(cli, server, tmp_path):
    url = server.add("/f.bin", b"x")
    result = cli(url, "-d", "dest", "--report", "nowhere/report.json")
    assert result.returncode == 2
    assert "--report" in result.stderr and "Traceback" not in result.stderr
    assert server.hits("/f.bin") == 0


def test_stdin_line_that_is_not_utf8_fails_by_number(cli, server, tmp_path):
    good = server.add("/good.bin", b"good")
    data = good.encode() + b"\n" + server.url("/caf\xe9.bin").encode("latin-1") + b"\n"
    proc = subprocess.run([sys.executable, "-m", "downloader", "-i", "-", "-d", "dest"],
                          input=data, capture_output=True, cwd=tmp_path,
                          env={**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent)})
    stderr = proc.stderr.decode()
    assert proc.returncode == 1, stderr
    assert "-:2" in stderr and "UTF-8" in stderr and "Traceback" not in stderr
    assert (tmp_path / "dest" / "good.bin").read_bytes() == b"good"


def test_a_url_that_is_not_utf8_fails_by_argument_and_the_report_stays_valid(cli, tmp_path):
    import os

    url = "http://127.0.0.1:9/" + os.fsdecode(b"\xff")  # as argv hands it to Python
    proc = cli(url, "-d", "d", "--report", "r.json", "--save-failed", "f.txt", "-q")

    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    (result,) = json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))["results"]
    assert result["error"] == "argument 1: URL is not valid UTF-8"
    assert (tmp_path / "f.txt").read_bytes().endswith(b"# http://127.0.0.1:9/\xff\n")
