"""Shards without a cluster: the cut, name claims across machines, markers,
``--shard K/N`` and a process pool as the executor. (Dask: test_cluster.py.)"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest

from downloader import Entry, download_all
from downloader.claims import FileClaims
from downloader.cluster import parse_shard
from downloader.entries import Item
from downloader.shards import cut
from conftest import REPO_ROOT
from httpserver import make_body
from test_signals import interrupt, popen, wait_for


def items(urls: list[str]) -> list[Item]:
    return [Item(f"argument {n}", url, Entry(url)) for n, url in enumerate(urls, 1)]


def proc_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO_ROOT)}


def path_of(url: str) -> str:
    return "/" + url.split("/", 3)[3]


def files_under(dest: Path) -> dict[str, bytes]:
    return {p.relative_to(dest).as_posix(): p.read_bytes() for p in dest.rglob("*")
            if p.is_file() and ".downloader" not in p.parts}


def test_the_cut_depends_only_on_the_list():
    urls = [f"http://h/{n}" for n in range(25)]
    one, again = cut(items(urls), 10), cut(items(list(urls)), 10)

    assert [s.id for s in one.shards] == [s.id for s in again.shards]
    assert [len(s.entries) for s in one.shards] == [10, 10, 5]
    assert one.positions[2] == [20, 21, 22, 23, 24]
    assert one.list_id == again.list_id


def test_lists_split_by_hand_get_ids_of_their_own():
    """img2dataset numbered shards 0, 1, 2... per run: two machines given
    two halves wrote the same shard ids. Ids here are digests of contents."""
    first = cut(items([f"http://h/a{n}" for n in range(15)]), 10)
    second = cut(items([f"http://h/b{n}" for n in range(15)]), 10)

    assert not {s.id for s in first.shards} & {s.id for s in second.shards}
    assert first.list_id != second.list_id


def test_the_cut_drops_repeats_and_bad_lines_as_a_run_does():
    listed = items(["http://h/a", "http://h/b", "http://h/a"])
    listed.insert(1, Item("list:2", "ftp://x", error="list:2: not http"))
    listed.append(Item("list:5", "http://h/a", Entry("http://h/a", out="other")))

    shards = cut(listed, 10)

    assert [e.url for e in shards.shards[0].entries] == ["http://h/a", "http://h/b", "http://h/a"]
    assert shards.positions[0] == [0, 2, 4]
    assert shards.bad == [1]
    assert shards.repeats == [(3, 0)]


@pytest.mark.parametrize("text, expected", [("0/1", (0, 1)), ("3/4", (3, 4)), ("0/100", (0, 100))])
def test_shard_k_of_n(text, expected):
    assert parse_shard(text) == expected


@pytest.mark.parametrize("text, message", [
    ("2/2", "K must be less than N"), ("5/2", "K must be less than N"),
    ("0/0", "N must be at least 1"), ("-1/2", "must be K/N"), ("1", "must be K/N"),
    ("a/b", "must be K/N"), ("", "must be K/N")])
def test_bad_shard_k_of_n(text, message):
    with pytest.raises(ValueError, match=message):
        parse_shard(text)


def test_claims_on_the_filesystem_hold_across_machines(tmp_path):
    """Two claimers on one folder stand for two machines: the same name
    twice becomes name.1; an owner that claims again (its shard was
    retried) gets its own name back; a file is never a folder."""
    here, there = FileClaims(tmp_path), FileClaims(tmp_path)

    assert here.claim("index.html", "http://a/") == "index.html"
    assert there.claim("index.html", "http://b/") == "index.1.html"
    assert there.claim("index.html", "http://a/") == "index.html"
    assert FileClaims(tmp_path).claim("index.html", "http://b/") == "index.1.html"
    # x.part is where x is downloaded: not a name for another entry.
    assert here.claim("x", "http://c/") == "x"
    assert there.claim("x.part", "http://d/") == "x.1.part"
    assert here.claim("dir/f", "http://e/") == "dir/f"
    with pytest.raises(ValueError, match="another entry's file"):
        there.claim("x/inside", "http://f/")
    assert there.claim("dir", "http://g/") == "dir.1"
    assert here.claim(".downloader", "http://h/") == ".downloader.1"


def test_shard_jobs_together_equal_one_run(server, tmp_path, cli):
    """--shard 0/2 and --shard 1/2 over one list: the files, names and
    counts of one full run, each URL fetched once."""
    bodies = [make_body(200 + n, seed=n) for n in range(60)]
    urls = [server.add(f"/d{n}/index.html" if n % 4 == 0 else f"/f{n}.bin", body)
            for n, body in enumerate(bodies)]
    (tmp_path / "list.txt").write_text("\n".join(urls) + "\n")

    reports = []
    for k in (0, 1):
        done = cli("-i", "list.txt", "-d", "split", "--shard", f"{k}/2", "--shard-size", "10",
                   "-q", "--report", f"r{k}.json")
        assert done.returncode == 0, done.stderr
        reports.append(json.loads((tmp_path / f"r{k}.json").read_text()))
    assert sorted(r.path for r in server.requests) == sorted(path_of(u) for u in urls)
    whole = cli("-i", "list.txt", "-d", "whole", "--shard-size", "10", "-q")
    assert whole.returncode == 0, whole.stderr

    split, full = files_under(tmp_path / "split"), files_under(tmp_path / "whole")
    # Which index.html becomes index.3.html depends on who claims first,
    # as between the threads of one run; the names and the bytes do not.
    assert set(split) == set(full)
    assert sorted(split.values()) == sorted(full.values()) == sorted(bodies)
    assert sum(r["totals"]["downloaded"] for r in reports) == 60
    assert {s["id"] for s in reports[0]["shards"]}.isdisjoint(s["id"] for s in reports[1]["shards"])
    assert sum(len(r["shards"]) for r in reports) == 6  # (ids are digests: either job may get 0)


def test_failures_come_back_to_the_driver_and_only_they_run_again(server, tmp_path, cli):
    good = [server.add(f"/ok{n}.bin", make_body(100, seed=n)) for n in range(30)]
    bad = [server.add(f"/gone{n}.bin", b"", status=404) for n in range(3)]
    listed = good[:10] + bad[:1] + good[10:20] + bad[1:] + good[20:]
    (tmp_path / "list.txt").write_text("\n".join(listed) + "\n")

    first = cli("-i", "list.txt", "-d", "dl", "--shard-size", "8", "--save-failed", "failed.txt",
                "--report", "report.json")

    assert first.returncode == 1
    assert all(f"FAILED {url}: HTTP 404" in first.stderr for url in bad), first.stderr
    saved = [line for line in (tmp_path / "failed.txt").read_text().splitlines()
             if not line.startswith("#")]
    assert saved == bad
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["totals"] == {"downloaded": 30, "skipped": 0, "failed": 3,
                                "bytes": 3000}
    assert [r["url"] for r in report["results"]] == bad
    assert all(r["http_status"] == 404 for r in report["results"])

    server.reset_stats()
    again = cli("-i", "list.txt", "-d", "dl", "--shard-size", "8", "-q")
    assert again.returncode == 1
    # The shards with a failure ran again; their finished files sent nothing.
    assert sorted(r.path for r in server.requests) == sorted(
        path_of(url) for url in bad)


def test_a_process_pool_is_an_executor(server, tmp_path):
    bodies = [make_body(300 + n, seed=n) for n in range(60)]
    urls = [server.add(f"/p{n % 3}/file.bin", body) if n < 3 else server.add(f"/p{n}.bin", body)
            for n, body in enumerate(bodies)]

    with ProcessPoolExecutor(2) as pool:
        summary = download_all(urls, tmp_path / "d", executor=pool, shard_size=7,
                               retry_wait=0.01)

    assert summary.ok and summary.counts == {"downloaded": 60, "skipped": 0, "failed": 0}
    assert summary.bytes == sum(len(b) for b in bodies)
    got = files_under(tmp_path / "d")
    assert sorted(got.values()) == sorted(bodies)
    assert {"file.bin", "file.1.bin", "file.2.bin"} <= set(got)
    with pytest.raises(TypeError, match="counts"):
        summary.downloaded  # noqa: B018


def test_a_finished_shard_run_again_sends_nothing(server, tmp_path):
    urls = [server.add(f"/f{n}.bin", make_body(50, seed=n)) for n in range(20)]
    first = download_all(urls, tmp_path / "d", shard_size=6)
    server.reset_stats()

    again = download_all(urls, tmp_path / "d", shard_size=6)

    assert server.requests == []
    assert again.counts == first.counts and again.bytes == first.bytes
    assert all(s.stored for s in again.shards)
    assert len(list((tmp_path / "d" / ".downloader" / "shards").glob("*.json"))) == 4


@pytest.mark.parametrize("args, message", [
    (["--shard", "2/2"], "--shard: K must be less than N"),
    (["--shard", "x"], "--shard: must be K/N"),
    (["--shard-size", "0"], "--shard-size: must be a whole number of at least 1"),
    (["--shard", "0/2", "--write-checksums", "sums"], "--write-checksums cannot be used"),
    (["--cluster", "tcp://127.0.0.1:1", "-P", "2"], "-P cannot be used with --cluster"),
])
def test_bad_shard_options_are_one_line_errors(cli, args, message):
    done = cli("http://127.0.0.1:1/x", *args)
    assert done.returncode == 2
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("downloader: error: ") and message in last, done.stderr


@pytest.mark.parametrize("options, message", [
    ({"shard_size": 0}, "shard_size must be"), ({"shard": (2, 2)}, "shard must be"),
    ({"shard_size": "10"}, "shard_size must be")])
def test_bad_shard_arguments_to_the_library(tmp_path, options, message):
    with pytest.raises(ValueError, match=message):
        download_all(["http://127.0.0.1:1/x"], tmp_path / "d", **options)


def test_ctrl_c_stops_a_sharded_run_and_the_next_one_finishes_it(server, tmp_path):
    """SIGINT in the middle of a shard: exit 130, the unfinished entries
    reported interrupted, the .part kept; the next run resumes it and
    fetches only what is missing."""
    release = threading.Event()
    big = make_body(600_000, seed=1)
    urls = [server.add(f"/s{n}.bin", make_body(100, seed=n)) for n in range(12)]
    urls.insert(7, server.add("/big.bin", big, etag='"1"', gate=release, gate_after=300_000))
    (tmp_path / "list.txt").write_text("\n".join(urls) + "\n")
    proc = popen(tmp_path, "-m", "downloader", "-i", "list.txt", "-d", "dl", "--shard", "0/1",
                 "--shard-size", "5", "-q", "--report", "report.json")
    server.wait_held("/big.bin")
    # The server holding its reply is not the client having read it: wait
    # for big.bin's own .part.
    part = tmp_path / "dl" / "big.bin.part"
    wait_for(lambda: part.is_file() and part.stat().st_size > 0, proc, "big.bin.part")

    _, err, _ = interrupt(proc, signal.SIGINT)
    release.set()

    assert proc.returncode == 130, err
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["totals"]["failed"] >= 1
    assert {r["error"] for r in report["results"]} == {"interrupted"}
    assert part.is_file()
    server.reset_stats()
    again = subprocess.run([sys.executable, "-m", "downloader", "-i", "list.txt", "-d", "dl",
                            "--shard-size", "5", "-q"], cwd=tmp_path, env=proc_env(),
                           capture_output=True, text=True, timeout=60)
    assert again.returncode == 0, again.stderr
    assert (tmp_path / "dl" / "big.bin").read_bytes() == big
    paths = [r.path for r in server.requests]
    assert len(paths) == len(set(paths))  # each at most once
    assert not {f"/s{n}.bin" for n in range(5)} & set(paths)  # the finished shard: nothing
    resumed = [r.headers.get("Range") for r in server.requests if r.path == "/big.bin"]
    assert len(resumed) == 1 and resumed[0] not in (None, "bytes=0-"), resumed


def test_importing_downloader_needs_no_dask():
    code = ("import sys, downloader, downloader.cli, downloader.library; "
            "print([m for m in sys.modules if m.split('.')[0] in ('dask', 'distributed')])")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=proc_env(), timeout=60)
    assert done.stdout.strip() == "[]", done.stderr
