"""A program that embeds the command line or the library finds its process
as it left it: signal handlers, warnings filters, umask and stdin."""
from __future__ import annotations

import gc
import io
import os
import signal
import ssl
import sys
import threading
import warnings
from typing import Any, Iterator

import pytest
import trustme

from downloader import cli, download_all
from httpserver import make_body
from test_https import TLSFaultServer


@pytest.fixture
def tls_server() -> Iterator[TLSFaultServer]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    trustme.CA().issue_cert("127.0.0.1").configure_cert(context)
    server = TLSFaultServer(context).start()
    try:
        yield server
    finally:
        server.stop()


def test_insecure_adds_no_warnings_filter_and_warns_nothing(tls_server, tmp_path):
    url = tls_server.add("/a.bin", make_body(1000))
    filters = list(warnings.filters)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        summary = download_all([url], tmp_path / "d", insecure=True)
        inner_filters = list(warnings.filters)

    assert summary.ok, summary.failed
    assert inner_filters == [("always", None, Warning, None, 0)] + filters
    assert list(warnings.filters) == filters
    assert [str(w.message) for w in caught] == []


def test_umask_is_never_changed_and_still_applies(server, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    url = server.add("/a.bin", b"payload")
    bad = server.url("/missing")
    calls: list[int] = []
    real_umask = os.umask

    def umask(mask: int) -> int:  # another thread could create a file meanwhile
        calls.append(mask)
        return real_umask(mask)

    old = real_umask(0o027)
    monkeypatch.setattr(os, "umask", umask)
    try:
        status = cli.main([url, bad, "-q", "--progress", "none", "--report", "report.json",
                           "--save-failed", "failed.txt"])
    finally:
        monkeypatch.undo()
        real_umask(old)
    assert status == 1
    assert calls == []
    assert (tmp_path / "report.json").stat().st_mode & 0o777 == 0o640
    assert (tmp_path / "failed.txt").stat().st_mode & 0o777 == 0o600


def test_stdin_is_left_open_for_the_caller(server, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    first, second = server.add("/one.txt", b"1"), server.add("/two.txt", b"2")
    raw = io.BytesIO(f"{first}\n".encode())
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(raw, encoding="utf-8"))

    assert cli.main(["-i", "-", "-q", "--progress", "none"]) == 0
    gc.collect()  # a wrapper of ours, collected, must not close the caller's stdin
    assert not raw.closed and not sys.stdin.closed
    raw.seek(0)
    raw.truncate()
    raw.write(f"{second}\n".encode())
    raw.seek(0)
    assert cli.main(["-i", "-", "-q", "--progress", "none"]) == 0
    gc.collect()
    assert not raw.closed
    assert (tmp_path / "downloads" / "one.txt").read_bytes() == b"1"
    assert (tmp_path / "downloads" / "two.txt").read_bytes() == b"2"


def test_no_stdin_is_a_usage_error(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "stdin", None)
    assert cli.main(["-i", "-"]) == 2
    assert "no standard input" in capsys.readouterr().err


def _handlers() -> tuple[Any, Any]:
    return signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)


@pytest.mark.parametrize("signum, status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_handlers_are_restored_after_an_interrupted_run(server, tmp_path, monkeypatch,
                                                                signum, status):
    monkeypatch.chdir(tmp_path)
    slow = server.add("/slow.bin", make_body(100_000), drip=0.05)
    before = _handlers()
    timer = threading.Timer(0.5, os.kill, (os.getpid(), signum))
    timer.start()
    try:
        assert cli.main([slow, "-q", "--progress", "none"]) == status
    finally:
        timer.cancel()
    assert _handlers() == before
    assert (tmp_path / "downloads" / "slow.bin.part").exists()
    # And again, uninterrupted: the same process, the same handlers after.
    quick = server.add("/quick.bin", b"q")
    assert cli.main([quick, "-q", "--progress", "none"]) == 0
    assert _handlers() == before


def test_library_and_cli_from_a_thread_leave_signals_alone(server, tmp_path):
    url = server.add("/a.bin", b"a")
    before = _handlers()
    outcome: dict[str, Any] = {}

    def work() -> None:
        outcome["summary"] = download_all([url], tmp_path / "lib")
        outcome["status"] = cli.main([url, "-q", "--progress", "none", "-d",
                                      str(tmp_path / "cli")])

    thread = threading.Thread(target=work)
    thread.start()
    thread.join(30)
    assert outcome["summary"].ok and outcome["status"] == 0
    assert _handlers() == before
    assert (tmp_path / "cli" / "a.bin").read_bytes() == b"a"
