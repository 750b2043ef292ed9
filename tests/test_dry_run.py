"""``--dry-run``: the plan on stdout, a line per entry; no request, no file,
not even DEST or its state folder."""
from __future__ import annotations

import hashlib
import sqlite3
import subprocess
import threading
import time
from pathlib import Path

import pytest

from httpserver import make_body
from test_cli import FAST, assert_usage_error, popen_cli, write_list


def snapshot(root: Path) -> dict[str, tuple[int, int, str]]:
    """Every file and folder under ``root``: size, mtime and content hash."""
    seen = {}
    for path in sorted(root.rglob("*")):
        stat = path.stat()
        digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "dir"
        seen[path.relative_to(root).as_posix()] = (stat.st_size, stat.st_mtime_ns, digest)
    return seen


def plan(stdout: str) -> list[list[str]]:
    return [line.split("\t") for line in stdout.splitlines()]


def test_each_entry_is_shown_with_its_target_and_nothing_is_fetched_or_made(cli, server, tmp_path):
    a = server.add("/a.csv", b"a")
    img = server.add("/img", b"img").replace("http://", "http://user:secret@")
    write_list(tmp_path / "urls.txt", [
        a,
        f"{img}?id=7 out=images/seven.png",
        server.url("/dl?id=3"),
        a,
        f"{server.url('/x')} out=same.bin",
        f"{server.url('/y')} out=same.bin",
        "ftp://example.org/f",
    ])
    before = snapshot(tmp_path)

    proc = cli("--dry-run", "-i", "urls.txt", "-d", "new/dest", *FAST)

    assert proc.returncode == 1, proc.stderr  # a line is bad
    shown_img = server.url("/img").replace("http://", "http://user:***@")
    assert plan(proc.stdout) == [
        ["urls.txt:1", "fetch", a, "(name from the server)"],
        ["urls.txt:2", "fetch", f"{shown_img}?id=7", "images/seven.png"],
        ["urls.txt:3", "fetch", server.url("/dl?id=3"), "(name from the server)"],
        ["urls.txt:4", "repeat", a, "(same as urls.txt:1)"],
        ["urls.txt:5", "fetch", server.url("/x"), "same.bin"],
        ["urls.txt:6", "fetch", server.url("/y"), "same.1.bin"],
        ["urls.txt:7", "error", "ftp://example.org/f",
         "unsupported scheme 'ftp' (only http and https)"],
    ]
    assert "secret" not in proc.stdout + proc.stderr
    assert proc.stderr == ("dry run: 5 to fetch, 0 to skip, 1 repeated, 1 bad; "
                           "nothing was downloaded\n")
    assert server.requests == []
    assert snapshot(tmp_path) == before  # no DEST, no folder above it


def test_a_valid_list_exits_0_and_quiet_keeps_only_the_plan(cli, server, tmp_path):
    url = server.add("/a.bin", b"a")

    proc = cli("--dry-run", "-q", url, "-d", "out")

    assert proc.returncode == 0, proc.stderr
    assert plan(proc.stdout) == [["argument 1", "fetch", url, "(name from the server)"]]
    assert proc.stderr == ""
    assert not (tmp_path / "out").exists()


def test_a_dataset_is_planned_row_by_row(cli, server, tmp_path):
    url = server.add("/a.jpg", b"a")
    (tmp_path / "data.csv").write_text(f'url,caption,file\n{url},"two\nlines",cats/a.jpg\n'
                                       "not-a-url,x,b.jpg\n")

    proc = cli("--dry-run", "-i", "data.csv", "--out-column", "file", "-d", "out")

    assert proc.returncode == 1, proc.stderr
    assert [line[:2] + line[3:] for line in plan(proc.stdout)] == [
        ["data.csv:2", "fetch", "cats/a.jpg"],
        ["data.csv:4", "error", "not a URL (expected http://… or https://…)"],
    ]


def test_what_earlier_runs_fetched_is_read_and_left_untouched(cli, server, tmp_path):
    report = server.add("/dl", make_body(800, 1), content_disposition='attachment; filename="report.pdf"')
    plain = server.add("/plain.bin", make_body(600, 2))
    assert cli(f"{report}?id=3", plain, "-d", "out", *FAST).returncode == 0
    before = snapshot(tmp_path / "out")
    server.reset_stats()

    kept = cli("--dry-run", f"{report}?id=3", plain, server.url("/new.bin"), "-d", "out")
    update = cli("--dry-run", f"{report}?id=3", "--if-exists", "update", "-d", "out")

    assert kept.returncode == 0, kept.stderr
    assert plan(kept.stdout) == [
        ["argument 1", "skip", f"{report}?id=3", "report.pdf (exists)"],  # a name the server gave
        ["argument 2", "skip", plain, "plain.bin (exists)"],
        ["argument 3", "fetch", server.url("/new.bin"), "(name from the server)"],
    ]
    assert plan(update.stdout) == [["argument 1", "fetch", f"{report}?id=3",
                                    "report.pdf (exists: fetched if the server has a newer one)"]]
    assert server.requests == []
    # Not one byte or timestamp changed, and SQLite left no -wal or -shm behind.
    assert snapshot(tmp_path / "out") == before


def recorded(dest: Path) -> tuple[set[str], set[str]]:
    """The paths the state database records as files and as begun .part files."""
    db = sqlite3.connect(f"{(dest / '.downloader' / 'state.db').as_uri()}?mode=ro", uri=True)
    try:
        return ({row[0] for row in db.execute("SELECT path FROM files")},
                {row[0] for row in db.execute("SELECT path FROM parts")})
    except sqlite3.Error:  # not made yet
        return set(), set()
    finally:
        db.close()


def test_a_run_in_progress_is_read_through_its_journal_without_waiting(cli, server, tmp_path):
    # Past 256 KiB, so the run records the .part as soon as it begins.
    done_body, held_body = make_body(500, 3), make_body(300_000, 4)
    gate = threading.Event()
    done = server.add("/done.bin", done_body)
    held = server.add("/held.bin", held_body, gate=gate, gate_after=1000)
    run = popen_cli(tmp_path, "-j", "1", done, held, "-d", "out", *FAST,
                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        server.wait_held("/held.bin", timeout=30)
        deadline = time.monotonic() + 10  # the run commits within a tick of its events
        while recorded(tmp_path / "out") != ({"done.bin"}, {"held.bin"}):
            assert time.monotonic() < deadline, recorded(tmp_path / "out")
            time.sleep(0.02)
        server.reset_stats()

        proc = cli("--dry-run", done, held, "-d", "out", timeout=30)

        assert run.poll() is None  # the run still holds DEST: the plan did not wait for it
    finally:
        gate.set()
        out, err = run.communicate(timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert plan(proc.stdout) == [
        ["argument 1", "skip", done, "done.bin (exists)"],
        ["argument 2", "fetch", held, "held.bin (resumes held.bin.part where the server allows)"],
    ]
    assert server.hits("/done.bin") == 0
    assert run.returncode == 0, err


def test_an_unreadable_state_database_is_warned_about_and_left_alone(cli, server, tmp_path):
    state = tmp_path / "out" / ".downloader"
    state.mkdir(parents=True)
    (state / "state.db").write_bytes(b"not a database" * 100)
    before = snapshot(tmp_path / "out")

    proc = cli("--dry-run", server.url("/a.bin"), "-d", "out")

    assert proc.returncode == 0, proc.stderr
    assert "warning: state database" in proc.stderr and "unreadable" in proc.stderr
    assert snapshot(tmp_path / "out") == before


@pytest.mark.parametrize("option", ["--report", "--save-failed"])
def test_options_that_write_files_are_usage_errors(cli, tmp_path, option):
    line = assert_usage_error(cli("--dry-run", "http://127.0.0.1:9/a", option, "x.txt"))
    assert line == f"downloader: error: {option} cannot be used with --dry-run, which writes no file"
    assert not (tmp_path / "x.txt").exists()


@pytest.mark.parametrize("dest, message", [
    ("a-file", "destination a-file exists and is not a folder"),
    ("a-file/below", "cannot create destination a-file/below: {tmp}/a-file is not a folder"),
])
def test_a_dest_the_run_could_not_use_is_a_usage_error(cli, tmp_path, dest, message):
    (tmp_path / "a-file").write_text("x")

    line = assert_usage_error(cli("--dry-run", "http://127.0.0.1:9/a", "-d", dest))

    assert line == "downloader: error: " + message.format(tmp=tmp_path)
