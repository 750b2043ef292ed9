"""``download_all`` against a real loopback server (``server`` fixture)."""
from __future__ import annotations

import hashlib
import threading
import time
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import pytest

from downloader import (DestinationError, DestinationLocked, DownloaderError, Entry, Result,
                        Summary, download_all)
from httpserver import FaultServer, make_body

FAST: dict[str, Any] = {"retry_wait": 0.01, "timeout": 5}


def fetch(urls: Any, dest: Path, **options: Any) -> Summary:
    return download_all(urls, dest, **{**FAST, **options})


def files_under(root: Path) -> set[Path]:
    """Every file below ``root``, outside DEST's state folders."""
    return {p for p in root.rglob("*") if p.is_file() and ".downloader" not in p.parts}


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def poll_until(condition: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition never became true")
        time.sleep(0.01)


# -- the Summary and its Results ------------------------------------------------

def test_summary_and_results_follow_the_contract(server: FaultServer, tmp_path: Path) -> None:
    bodies = {"/a.bin": make_body(1000, 1), "/b.bin": make_body(2345, 2)}
    for path, body in bodies.items():
        server.add(path, body)
    urls = [server.url("/a.bin"), server.url("/missing.bin"), server.url("/b.bin")]
    dest = tmp_path / "dl"

    summary = fetch(urls, dest, retries=0)

    assert isinstance(summary, Summary)
    assert [r.url for r in summary.results] == urls  # input order
    assert list(summary) == summary.results
    assert all(isinstance(r, Result) for r in summary)
    assert summary.ok is False
    assert [r.url for r in summary.failed] == [urls[1]]
    assert [r.url for r in summary.downloaded] == [urls[0], urls[2]]
    assert summary.skipped == []
    assert summary.bytes == sum(len(b) for b in bodies.values())
    assert isinstance(summary.elapsed, float) and summary.elapsed > 0

    for result, path in ((summary.results[0], "/a.bin"), (summary.results[2], "/b.bin")):
        assert isinstance(result.path, Path) and result.path.is_absolute()
        assert result.path == (dest / path[1:]).resolve()
        assert result.path.read_bytes() == bodies[path]
        assert result.status == "downloaded"
        assert result.ok is True
        assert result.bytes == len(bodies[path])
        assert result.attempts == 1
        assert result.elapsed >= 0
        assert result.http_status == 200
        assert result.error is None

    missing = summary.results[1]
    assert missing.status == "failed"
    assert missing.ok is False
    assert missing.http_status == 404
    assert missing.attempts == 1
    assert missing.bytes == 0
    assert "404" in missing.error and "\n" not in missing.error


def test_all_ok_summary(server: FaultServer, tmp_path: Path) -> None:
    urls = [server.add(f"/f{i}.txt", f"file {i}") for i in range(3)]

    summary = fetch(urls, tmp_path / "dl")

    assert summary.ok is True
    assert summary.failed == []
    assert len(summary.downloaded) == 3


def test_empty_list_downloads_nothing(tmp_path: Path) -> None:
    summary = fetch([], tmp_path / "dl")

    assert summary.ok is True
    assert summary.results == []
    assert summary.bytes == 0


def test_library_prints_nothing_by_default(server: FaultServer, tmp_path: Path,
                                          capfd: pytest.CaptureFixture[str]) -> None:
    url = server.add("/quiet.txt", "shh")

    fetch([url, server.url("/missing")], tmp_path / "dl", retries=0)

    out, err = capfd.readouterr()
    assert out == "" and err == ""


# -- entries ----------------------------------------------------------------------

BODY = b"entry body\n" * 50


@pytest.mark.parametrize("make_entry, expected_name", [
    (lambda url: url, "e.bin"),
    (lambda url: {"url": url}, "e.bin"),
    (lambda url: {"url": url, "out": "sub/dir/named.dat"}, "sub/dir/named.dat"),
    (lambda url: {"url": url, "sha256": sha256(BODY)}, "e.bin"),
    (lambda url: {"url": url, "out": "x.dat", "sha256": sha256(BODY).upper()}, "x.dat"),
    (lambda url: Entry(url), "e.bin"),
    (lambda url: Entry(url, out="deep/e.out"), "deep/e.out"),
    (lambda url: Entry(url, sha256=sha256(BODY)), "e.bin"),
], ids=["string", "mapping", "mapping-out", "mapping-sha256", "mapping-out-sha256",
        "Entry", "Entry-out", "Entry-sha256"])
def test_entry_forms(server: FaultServer, tmp_path: Path, make_entry: Any,
                     expected_name: str) -> None:
    url = server.add("/e.bin", BODY)
    dest = tmp_path / "dl"

    [result] = fetch([make_entry(url)], dest)

    assert result.status == "downloaded", result.error
    assert result.url == url
    assert result.path == (dest / expected_name).resolve()
    assert result.path.read_bytes() == BODY


def test_entries_from_a_generator(server: FaultServer, tmp_path: Path) -> None:
    urls = [server.add(f"/g{i}", f"g{i}") for i in range(3)]

    summary = fetch((u for u in urls), tmp_path / "dl")

    assert [r.url for r in summary] == urls
    assert summary.ok


def test_a_single_string_is_a_type_error(server: FaultServer, tmp_path: Path) -> None:
    url = server.add("/one.txt", "one")

    with pytest.raises(TypeError):
        fetch(url, tmp_path / "dl")

    assert server.hits("/one.txt") == 0


@pytest.mark.parametrize("options", [
    {"workers": 0},
    {"workers": 257},
    {"workers": "x"},
    {"workers": -1},
    {"retries": -1},
    {"timeout": -1},
    {"if_exists": "nope"},
], ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()))
def test_nonsense_arguments_are_value_errors(server: FaultServer, tmp_path: Path,
                                             options: dict[str, Any]) -> None:
    url = server.add("/v.txt", "v")
    dest = tmp_path / "dl"

    with pytest.raises(ValueError):
        fetch([url], dest, **options)

    assert server.hits("/v.txt") == 0
    assert not dest.exists()


@pytest.mark.parametrize("workers", [1, 256, "auto"])
def test_workers_bounds_are_accepted(server: FaultServer, tmp_path: Path,
                                     workers: int | str) -> None:
    url = server.add("/w.txt", "w")

    [result] = fetch([url], tmp_path / "dl", workers=workers)

    assert result.status == "downloaded", result.error


def test_dest_that_is_a_file_is_a_destination_error(server: FaultServer, tmp_path: Path) -> None:
    url = server.add("/d.txt", "d")
    dest = tmp_path / "not-a-folder"
    dest.write_bytes(b"keep me")

    with pytest.raises(DestinationError) as caught:
        fetch([url], dest)

    assert isinstance(caught.value, DownloaderError)
    assert dest.read_bytes() == b"keep me"
    assert server.hits("/d.txt") == 0


def test_dest_is_created_with_missing_parents(server: FaultServer, tmp_path: Path) -> None:
    url = server.add("/p.txt", "p")
    dest = tmp_path / "a" / "b" / "c"

    [result] = fetch([url], dest)

    assert result.path == (dest / "p.txt").resolve()
    assert result.path.read_text() == "p"


def test_a_dest_in_use_is_locked(server: FaultServer, tmp_path: Path) -> None:
    slow = server.add("/slow.bin", b"slow", delay=0.5)
    quick = server.add("/quick.bin", b"quick")
    dest = tmp_path / "dl"
    outcome: list[Summary] = []
    first = threading.Thread(target=lambda: outcome.append(fetch([slow], dest)))
    first.start()
    try:
        poll_until(lambda: server.in_flight >= 1)

        with pytest.raises(DestinationLocked) as caught:
            fetch([quick], dest)
    finally:
        first.join(10)

    assert isinstance(caught.value, DownloaderError)
    assert server.hits("/quick.bin") == 0
    assert outcome and outcome[0].ok


# -- bytes on disk ------------------------------------------------------------------

@pytest.mark.parametrize("mode", [{}, {"chunked": True}, {"no_length": True}],
                         ids=["content-length", "chunked", "no-length"])
def test_streaming_5_mib_is_byte_exact(server: FaultServer, tmp_path: Path,
                                       mode: dict[str, bool]) -> None:
    body = make_body(5 * 1024 * 1024, seed=5)
    url = server.add("/big.bin", body, **mode)

    [result] = fetch([url], tmp_path / "dl")

    assert result.status == "downloaded", result.error
    assert result.bytes == len(body)
    assert sha256(result.path.read_bytes()) == sha256(body)
    assert files_under(tmp_path) == {result.path}  # no .part left behind


def test_wrong_content_length_fails_without_a_final_file(server: FaultServer,
                                                         tmp_path: Path) -> None:
    body = make_body(1000, 3)
    url = server.add("/short.bin", body, lie_length=len(body) + 500)
    dest = tmp_path / "dl"

    [result] = fetch([url], dest, retries=1)

    assert result.status == "failed"
    assert result.error
    assert not (dest / "short.bin").exists()


def test_gzip_content_encoding_is_stored_as_sent(server: FaultServer, tmp_path: Path) -> None:
    plain = b"line of very compressible text\n" * 2000
    url = server.add("/log.txt", plain, gzip=True)

    [result] = fetch([url], tmp_path / "dl")

    assert result.status == "downloaded", result.error
    wire = server.wire_body("/log.txt")
    assert wire != plain
    assert result.path.read_bytes() == wire
    assert server.requests[0].headers.get("Accept-Encoding") == "identity"


def test_redirect_is_followed_and_named_from_the_url_as_given(server: FaultServer,
                                                              tmp_path: Path) -> None:
    body = make_body(3000, 7)
    server.add("/storage/blob-8f3a", body)
    url = server.add("/reports/q3.csv", redirect_to=server.url("/storage/blob-8f3a"))
    dest = tmp_path / "dl"

    [result] = fetch([url], dest)

    assert result.status == "downloaded", result.error
    assert result.url == url
    assert result.path == (dest / "q3.csv").resolve()
    assert result.path.read_bytes() == body
    assert files_under(dest) == {result.path}


@pytest.mark.parametrize("disposition, expected", [
    ('attachment; filename="../../evil"', "evil"),
    ('attachment; filename="/etc/passwd"', "passwd"),
    ('attachment; filename=".."', "page.bin"),
    ('attachment; filename="."', "page.bin"),
    ('attachment; filename="..\\\\..\\\\win.ini"', "win.ini"),
    ("attachment; filename*=UTF-8''..%2F..%2Fstar-evil", "star-evil"),
    ('attachment; filename="sub/../../x.sh"', "x.sh"),
], ids=["dotdot-slash", "absolute", "dotdot", "dot", "backslashes", "encoded-slashes",
        "nested"])
def test_hostile_content_disposition_stays_inside_dest(server: FaultServer, tmp_path: Path,
                                                       disposition: str, expected: str) -> None:
    body = b"not evil at all"
    url = server.add("/files/page.bin", body, content_disposition=disposition)
    dest = tmp_path / "one" / "two" / "dl"

    [result] = fetch([url], dest)

    assert result.status == "downloaded", result.error
    assert result.path == (dest / expected).resolve()
    assert result.path.read_bytes() == body
    assert files_under(tmp_path) == {result.path}


@pytest.mark.parametrize("out", ["../x", "sub/../../x", "/tmp/x", "/etc/passwd"])
def test_out_leaving_dest_fails_naming_the_entry(server: FaultServer, tmp_path: Path,
                                                 out: str) -> None:
    good = server.add("/good.txt", "good")
    bad = server.add("/bad.txt", "bad")
    dest = tmp_path / "one" / "dl"

    summary = fetch([good, {"url": bad, "out": out}], dest)

    ok, refused = summary.results
    assert ok.status == "downloaded", ok.error
    assert refused.status == "failed"
    assert refused.url == bad
    assert "entry 2" in refused.error
    assert server.hits("/bad.txt") == 0
    assert files_under(tmp_path) == {ok.path}


def test_colliding_names_are_numbered(server: FaultServer, tmp_path: Path) -> None:
    disposition = 'attachment; filename="name.ext"'
    bodies = {f"/c{i}": make_body(500 + i, i) for i in range(3)}
    urls = [server.add(path, body, content_disposition=disposition)
            for path, body in bodies.items()]
    dest = tmp_path / "dl"

    summary = fetch(urls, dest, workers=3)

    assert summary.ok, [r.error for r in summary.failed]
    assert {r.path for r in summary} == {(dest / n).resolve()
                                         for n in ("name.ext", "name.1.ext", "name.2.ext")}
    for result, body in zip(summary, bodies.values()):
        assert result.path.read_bytes() == body
    assert files_under(dest) == {r.path for r in summary}


def test_the_same_url_twice_is_fetched_once(server: FaultServer, tmp_path: Path) -> None:
    url = server.add("/twice.bin", b"once is enough")

    first, repeat = fetch([url, url], tmp_path / "dl")

    assert server.hits("/twice.bin") == 1
    assert first.status == "downloaded", first.error
    assert repeat.status == "skipped"
    assert repeat.url == url
    assert repeat.path == first.path
    assert first.path.read_bytes() == b"once is enough"


def test_the_repeat_of_a_failed_url_gets_the_same_failure(server: FaultServer,
                                                          tmp_path: Path) -> None:
    url = server.url("/gone.bin")

    first, repeat = fetch([url, url], tmp_path / "dl")

    assert server.hits("/gone.bin") == 1
    assert first.status == repeat.status == "failed"
    assert repeat.error == first.error
    assert "404" in repeat.error


# -- concurrency ----------------------------------------------------------------------

def test_workers_run_in_parallel(server: FaultServer, tmp_path: Path) -> None:
    urls = [server.add(f"/p{i}.bin", f"body {i}", delay=0.3) for i in range(32)]

    summary = fetch(urls, tmp_path / "dl", workers=16)

    assert summary.ok, [r.error for r in summary.failed]
    assert server.max_in_flight == 16
    assert summary.elapsed >= 0.6  # two waves of 0.3 s, at the least


def test_one_worker_never_overlaps(server: FaultServer, tmp_path: Path) -> None:
    urls = [server.add(f"/s{i}.bin", f"body {i}", delay=0.05) for i in range(6)]

    summary = fetch(urls, tmp_path / "dl", workers=1)

    assert summary.ok, [r.error for r in summary.failed]
    assert server.max_in_flight == 1


def test_two_runs_at_once_into_two_dests_do_not_interfere(server: FaultServer,
                                                          tmp_path: Path) -> None:
    bodies = {f"/t{i}.bin": make_body(20_000 + i, i) for i in range(12)}
    for path, body in bodies.items():
        server.add(path, body, delay=0.02)
    halves = {"left": list(bodies)[:6], "right": list(bodies)[6:]}
    outcomes: dict[str, Summary | BaseException] = {}

    def run(side: str) -> None:
        try:
            outcomes[side] = fetch([server.url(p) for p in halves[side]], tmp_path / side,
                                   workers=4)
        except BaseException as exc:  # surfaced by the asserts below
            outcomes[side] = exc

    threads = [threading.Thread(target=run, args=(side,)) for side in halves]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    for side, paths in halves.items():
        summary = outcomes[side]
        assert isinstance(summary, Summary), summary
        assert summary.ok, [r.error for r in summary.failed]
        dest = (tmp_path / side).resolve()
        assert files_under(dest) == {dest / p[1:] for p in paths}
        for path in paths:
            assert (dest / path[1:]).read_bytes() == bodies[path]


# -- --if-exists ------------------------------------------------------------------------

def test_skip_makes_no_request_for_a_recorded_file(server: FaultServer, tmp_path: Path) -> None:
    url = server.add("/kept.bin", b"version 1")
    dest = tmp_path / "dl"
    [first] = fetch([url], dest)
    server.set_body("/kept.bin", b"version 2")
    server.reset_stats()

    [again] = fetch([url], dest, if_exists="skip")

    assert server.hits("/kept.bin") == 0
    assert again.status == "skipped"
    assert again.path == first.path
    assert again.path.read_bytes() == b"version 1"


def test_skip_makes_no_request_when_the_out_target_exists(server: FaultServer,
                                                          tmp_path: Path) -> None:
    url = server.add("/fresh.bin", b"from the server")
    dest = tmp_path / "dl"
    (dest / "mine").mkdir(parents=True)
    (dest / "mine" / "file.bin").write_bytes(b"already here")

    [result] = fetch([{"url": url, "out": "mine/file.bin"}], dest)

    assert server.hits("/fresh.bin") == 0
    assert result.status == "skipped"
    assert result.path == (dest / "mine" / "file.bin").resolve()
    assert result.path.read_bytes() == b"already here"


def test_skip_keeps_an_unrecorded_file_named_by_the_response(server: FaultServer,
                                                            tmp_path: Path) -> None:
    url = server.add("/report.csv", b"server copy")
    dest = tmp_path / "dl"
    dest.mkdir()
    (dest / "report.csv").write_bytes(b"local copy")

    [result] = fetch([url], dest)

    assert result.status == "skipped", result.error
    assert result.path == (dest / "report.csv").resolve()
    assert result.path.read_bytes() == b"local copy"
    assert files_under(dest) == {result.path}


@pytest.mark.parametrize("existing, expected_status", [
    (b"server copy", "skipped"),
    (b"stale or corrupt", "downloaded"),
])
def test_skip_checks_an_existing_file_against_sha256(server: FaultServer, tmp_path: Path,
                                                     existing: bytes,
                                                     expected_status: str) -> None:
    url = server.add("/checked.bin", b"server copy")
    dest = tmp_path / "dl"
    dest.mkdir()
    (dest / "checked.bin").write_bytes(existing)

    [result] = fetch([{"url": url, "out": "checked.bin", "sha256": sha256(b"server copy")}],
                     dest)

    assert result.status == expected_status, result.error
    assert result.path.read_bytes() == b"server copy"


def test_skip_refetches_a_recorded_file_that_was_deleted(server: FaultServer,
                                                         tmp_path: Path) -> None:
    url = server.add("/lost.bin", b"v1")
    dest = tmp_path / "dl"
    [first] = fetch([url], dest)
    first.path.unlink()
    server.set_body("/lost.bin", b"v2")

    [again] = fetch([url], dest)

    assert again.status == "downloaded", again.error
    assert again.path.read_bytes() == b"v2"


def test_overwrite_fetches_again(server: FaultServer, tmp_path: Path) -> None:
    url = server.add("/ow.bin", b"old contents")
    dest = tmp_path / "dl"
    [first] = fetch([url], dest)
    server.set_body("/ow.bin", b"new contents")
    server.reset_stats()

    [again] = fetch([url], dest, if_exists="overwrite")

    assert server.hits("/ow.bin") == 1
    assert again.status == "downloaded", again.error
    assert again.path == first.path
    assert again.path.read_bytes() == b"new contents"
    assert files_under(dest) == {again.path}


@pytest.mark.parametrize("etag, last_modified", [
    ('"v1-abc"', None),
    ('W/"weak-1"', None),
    ('"v1-abc"', "Wed, 21 Oct 2015 07:28:00 GMT"),
    (None, "Wed, 21 Oct 2015 07:28:00 GMT"),
], ids=["strong-etag", "weak-etag", "etag-and-date", "date-only"])
def test_update_unchanged_is_a_304_skip(server: FaultServer, tmp_path: Path,
                                        etag: str | None, last_modified: str | None) -> None:
    url = server.add("/u.bin", b"same", etag=etag, last_modified=last_modified)
    dest = tmp_path / "dl"
    [first] = fetch([url], dest)
    mtime = first.path.stat().st_mtime
    server.reset_stats()

    [again] = fetch([url], dest, if_exists="update")

    assert again.status == "skipped", again.error
    assert again.http_status == 304
    assert again.path == first.path
    assert again.path.read_bytes() == b"same"
    assert again.path.stat().st_mtime == mtime
    [request] = server.requests
    # The exact validators the server sent come back.
    if etag is not None:
        assert request.headers.get("If-None-Match") == etag
    if last_modified is not None:
        assert request.headers.get("If-Modified-Since") == last_modified


def test_update_changed_downloads_again(server: FaultServer, tmp_path: Path) -> None:
    url = server.add("/u.bin", b"first edition", etag='"e1"')
    dest = tmp_path / "dl"
    [first] = fetch([url], dest)
    server.set_body("/u.bin", b"second edition", etag='"e2"')

    [again] = fetch([url], dest, if_exists="update")

    assert again.status == "downloaded", again.error
    assert again.http_status == 200
    assert again.path == first.path
    assert again.path.read_bytes() == b"second edition"


def test_mtime_comes_from_last_modified(server: FaultServer, tmp_path: Path) -> None:
    stamp = "Wed, 21 Oct 2015 07:28:00 GMT"
    url = server.add("/dated.txt", "old news", last_modified=stamp)

    [result] = fetch([url], tmp_path / "dl")

    assert result.path.stat().st_mtime == parsedate_to_datetime(stamp).timestamp()


# -- secrets ----------------------------------------------------------------------------

PASSWORD = "hunter2-Secr3t"


def state_bytes(dest: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted((dest / ".downloader").rglob("*"))
                    if p.is_file())


def test_url_password_stays_out_of_json_and_state(server: FaultServer, tmp_path: Path) -> None:
    server.add("/private.bin", b"private data")
    good = f"http://alice:{PASSWORD}@127.0.0.1:{server.port}/private.bin"
    bad = f"http://alice:{PASSWORD}@127.0.0.1:{server.port}/nowhere.bin"
    dest = tmp_path / "dl"

    summary = fetch([good, bad], dest, retries=0)

    ok, failed = summary.results
    assert ok.status == "downloaded", ok.error
    assert failed.status == "failed"
    assert ok.url == good  # the library's own Result.url is the URL as given
    for result in summary:
        text = repr(result.to_json())
        assert PASSWORD not in text
        assert "alice:***@" in text
    assert PASSWORD not in repr(summary.to_json())
    assert PASSWORD not in (failed.error or "")
    stored = state_bytes(dest)
    assert stored  # the database was written
    assert PASSWORD.encode() not in stored


def test_out_under_another_entrys_file_fails_by_entry(server: FaultServer,
                                                      tmp_path: Path) -> None:
    a, b = server.add("/a", b"a"), server.add("/b", b"b")
    summary = fetch([{"url": a, "out": "data"}, {"url": b, "out": "data/b.csv"}],
                    tmp_path / "dl")
    first, second = summary.results
    assert first.status == "downloaded" and first.path.read_bytes() == b"a"
    assert second.status == "failed"
    assert second.error.startswith("entry 2:") and "another entry's file" in second.error
    assert server.hits("/b") == 0
