"""Lists of any length: read as the run goes, outcomes handed on as they
end, what must be remembered of every entry kept on disk."""
from __future__ import annotations

import contextlib
import itertools
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from downloader import download_all, iter_download
from downloader import engine
from downloader.outputs import InputOrder
from httpserver import FaultServer, make_body
from test_signals import interrupt, wait_for

FAST = dict(retries=0, timeout=5)


@pytest.fixture(autouse=True)
def small_windows(monkeypatch: pytest.MonkeyPatch) -> None:
    """Windows of a few entries, so that lists of a few dozen cross many
    (the command-line tests run in their own processes, at full size)."""
    for name, value in (("FIRST_WINDOW", 8), ("MIN_WINDOW", 16), ("WINDOW_PER_WORKER", 1),
                        ("READ_BATCH", 16), ("INPUT_AHEAD", 64)):
        monkeypatch.setattr(engine, name, value)


# -- the library --------------------------------------------------------------

def test_iter_download_yields_every_result_as_it_ends(server: FaultServer,
                                                        tmp_path: Path) -> None:
    count = 6 * engine.MIN_WINDOW + 10
    urls = [server.add(f"/f{i}.bin", f"body {i}") for i in range(count)]
    statuses = []
    for result in iter_download(iter(urls), tmp_path / "d", workers=4, **FAST):
        statuses.append(result.status)
        assert result.path is not None
        assert result.path.read_text() == "body " + result.url.rsplit("/f", 1)[1][:-4]
    assert statuses == ["downloaded"] * count
    assert not (tmp_path / "d" / ".downloader" / "scratch.db").exists()


def test_iter_download_reads_a_generator_only_as_far_as_it_needs(tmp_path: Path) -> None:
    # A list that never ends; its entries fail at once (no request).
    def endless() -> Iterator[str]:
        for n in itertools.count():
            consumed[0] = n + 1
            yield f"ftp://127.0.0.1/{n}"

    consumed = [0]
    results = iter_download(endless(), tmp_path / "d", **FAST)
    for taken, result in enumerate(results, 1):
        assert result.error is not None and "unsupported scheme" in result.error
        if taken == 10 * engine.INPUT_AHEAD:
            break
    results.close()
    # Read ahead by a bounded amount only, and the reading has stopped.
    assert consumed[0] <= 12 * engine.INPUT_AHEAD
    before = consumed[0]
    assert download_all([], tmp_path / "d").ok  # DEST is free again
    assert consumed[0] <= before + 1


def test_leaving_iter_download_early_stops_the_pool_keeps_part_and_frees_dest(
        server: FaultServer, tmp_path: Path) -> None:
    body = make_body(200_000, seed=3)
    gate = threading.Event()
    slow = server.add("/slow.bin", body, etag='"v1"', gate=gate, gate_after=50_000)
    quick = server.add("/quick.bin", b"quick")
    dest = tmp_path / "d"

    with contextlib.closing(iter_download([slow, quick], dest, workers=2, **FAST)) as results:
        first = next(results)  # quick: slow is held
        server.wait_held("/slow.bin")
    gate.set()

    assert first.url == quick and first.ok
    assert (dest / "slow.bin.part").stat().st_size == 50_000  # kept for the next run
    assert not (dest / "slow.bin").exists()
    # DEST is free again, and the next run resumes where this one stopped.
    summary = download_all([slow, quick], dest, **FAST)
    assert summary.ok and (dest / "slow.bin").read_bytes() == body
    resumed = [r for r in server.requests if r.path == "/slow.bin"][-1]
    assert resumed.headers.get("Range") == "bytes=50000-"


def test_iter_download_checks_its_arguments_before_the_first_next(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        iter_download(["http://127.0.0.1:9/x"], tmp_path, workers=0)
    with pytest.raises(TypeError):
        iter_download("http://127.0.0.1:9/x", tmp_path)


def test_a_value_that_is_no_entry_raises_when_reached_and_frees_dest(
        server: FaultServer, tmp_path: Path) -> None:
    url = server.add("/a.bin", b"a")
    results = iter_download([url, 42], tmp_path / "d", **FAST)  # type: ignore[list-item]
    with pytest.raises(TypeError):
        list(results)
    assert download_all([url], tmp_path / "d", **FAST).ok  # not locked


# -- what is remembered of every entry ----------------------------------------

def test_a_repeat_far_down_the_list_is_fetched_once(server: FaultServer, tmp_path: Path) -> None:
    twice = server.add("/twice.bin", b"twice")
    missing = server.url("/missing.bin")
    others = [server.add(f"/o{i}.bin", b"o") for i in range(6 * engine.MIN_WINDOW)]

    summary = download_all([twice, missing, *others, twice, missing], tmp_path / "d", **FAST)

    first, first_missing, *_, again, again_missing = summary.results
    assert server.hits("/twice.bin") == 1 and server.hits("/missing.bin") == 1
    assert (first.status, again.status) == ("downloaded", "skipped")
    assert again.path == first.path == tmp_path / "d" / "twice.bin"
    assert not again_missing.ok and again_missing.error == first_missing.error


def test_names_stay_distinct_across_windows(server: FaultServer, tmp_path: Path) -> None:
    count = 6 * engine.MIN_WINDOW + 10
    urls = [server.add(f"/d{i}/index.html", f"page {i}") for i in range(count)]

    summary = download_all(urls, tmp_path / "d", workers=8, **FAST)

    assert summary.ok
    paths = {r.path for r in summary.results}
    assert len(paths) == count
    for result in summary.results:
        assert result.path is not None
        assert result.path.read_text() == "page " + result.url.split("/d")[1].split("/")[0]


# -- the command line ---------------------------------------------------------

def test_the_first_request_leaves_before_the_list_has_ended(
        server: FaultServer, tmp_path: Path) -> None:
    first, second = server.add("/first.bin", b"1"), server.add("/second.bin", b"2")
    proc = subprocess.Popen([sys.executable, "-m", "downloader", "-i", "-", "-d", "d", "-q"],
                            cwd=tmp_path, env=_env(), text=True, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdin is not None
    proc.stdin.write(first + "\n")
    proc.stdin.flush()
    server.wait_for_hits("/first.bin")  # while the list is still open
    assert proc.poll() is None
    proc.stdin.write(second + "\n")
    out, err = proc.communicate(timeout=30)

    assert (proc.returncode, out, err) == (0, "", "")
    assert (tmp_path / "d" / "first.bin").read_bytes() == b"1"
    assert (tmp_path / "d" / "second.bin").read_bytes() == b"2"


@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_stopped_run_leaves_a_whole_report_and_failed_list(
        server: FaultServer, tmp_path: Path, signum: int, code: int) -> None:
    gate = threading.Event()
    body = make_body(100_000, seed=5)
    held = server.add("/held.bin", body, gate=gate, gate_after=10_000)
    quick = [server.add(f"/q{i}.bin", b"q") for i in range(40)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "downloader", "-i", "-", "-d", "d", "-q", "--report", "r.json",
         "--save-failed", "failed.txt", "--retries", "0"],
        cwd=tmp_path, env=_env(), text=True, stdin=subprocess.PIPE,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdin is not None
    proc.stdin.write("\n".join([held, *quick, server.url("/missing.bin")]) + "\n")
    proc.stdin.flush()  # and left open: the list has not ended
    try:
        server.wait_held("/held.bin")
        wait_for(lambda: all((tmp_path / "d" / f"q{i}.bin").exists() for i in range(40)),
                 proc, "the quick files")
        server.wait_for_hits("/missing.bin")
        out, err, _ = interrupt(proc, signum)
    finally:
        gate.set()

    assert proc.returncode == code, err
    report = json.loads((tmp_path / "r.json").read_text())
    results = {r["url"]: r for r in report["results"]}
    assert set(results) == {held, *quick, server.url("/missing.bin")}
    assert sum(report["totals"][k] for k in ("downloaded", "skipped", "failed")) == len(results)
    assert report["totals"]["downloaded"] == len(quick)
    assert results[held]["status"] == "failed" and results[held]["error"] == "interrupted"
    assert (tmp_path / "d" / "held.bin.part").stat().st_size == 10_000
    failed = (tmp_path / "failed.txt").read_text().splitlines()
    assert held in failed and server.url("/missing.bin") in failed


def _env() -> dict[str, str]:
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
    return env


# -- the report's order -------------------------------------------------------

def outcome(index: int) -> SimpleNamespace:
    return SimpleNamespace(index=index)


def test_input_order_holds_early_enders_until_those_before_them_end() -> None:
    order = InputOrder()
    assert order.push(outcome(1)) == []
    assert order.push(outcome(2)) == []
    assert [o.index for o in order.push(outcome(0))] == [0, 1, 2]
    assert [o.index for o in order.push(outcome(3))] == [3]
    assert order.push(outcome(5)) == []
    assert [o.index for o in order.flush()] == [5]  # 4 never came: the run stopped


def test_input_order_lets_go_past_its_limit_so_memory_stays_bounded() -> None:
    order = InputOrder(limit=3)
    for index in (1, 2, 3):
        assert order.push(outcome(index)) == []
    assert [o.index for o in order.push(outcome(4))] == [1, 2, 3, 4]
    assert [o.index for o in order.push(outcome(0))] == [0]  # late, on its own
    assert [o.index for o in order.push(outcome(5))] == [5]


def test_a_million_url_run_interrupted_leaves_a_whole_report(server: FaultServer,
                                                             tmp_path: Path) -> None:
    """The issue's case: Ctrl-C early in a run over 10^6 URLs. The list is
    read as the run goes, so the stop is prompt, and the report holds every
    entry read so far, as whole JSON."""
    gate = threading.Event()
    held = server.add("/held.bin", make_body(50_000, seed=9), gate=gate, gate_after=1_000)
    missing = server.url("/m/")
    with open(tmp_path / "urls.txt", "w") as f:
        f.write(held + "\n")
        f.writelines(f"{missing}{n}\n" for n in range(999_999))
    proc = subprocess.Popen(
        [sys.executable, "-m", "downloader", "-i", "urls.txt", "-d", "d", "-q", "--retries", "0",
         "--report", "r.json", "--progress", "none"],
        cwd=tmp_path, env=_env(), text=True, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        server.wait_held("/held.bin")
        wait_for(lambda: len(server.requests) > 500, proc, "some of the list")
        _, _, took = interrupt(proc, signal.SIGINT)
    finally:
        gate.set()

    assert proc.returncode == 130
    assert took < 10  # not the time it takes to read, let alone fetch, the rest
    report = json.loads((tmp_path / "r.json").read_text())
    results = report["results"]
    assert 500 <= len(results) < 999_999
    assert sum(report["totals"][k] for k in ("downloaded", "skipped", "failed")) == len(results)
    assert results[0]["url"] == held and results[0]["error"] == "interrupted"
    assert (tmp_path / "d" / "held.bin.part").stat().st_size == 1_000
