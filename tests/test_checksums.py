"""md5=, sha1=, sha512= beside sha256=; ``--checksums FILE`` and
``--write-checksums FILE``: checked as a user would, with bytes on disk,
exit status and ``sha256sum -c`` itself."""
from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from downloader import download_all
from downloader.cli import parse_args, settings_from
from downloader.checksums import (ChecksumFileError, checksum_text, parse_checksum_line,
                                  read_checksum_list)
from downloader.entries import parse_line
from downloader.partfile import PartFile
from httpserver import FaultServer, make_body

FAST: dict[str, Any] = {"retry_wait": 0.01, "timeout": 5}
CLI_FAST = ("--retry-wait", "0.01", "--progress", "none")
BODY = make_body(40_000, 7)
OTHER = make_body(40_000, 8)
ALGORITHMS = ["md5", "sha1", "sha256", "sha512"]


def digest(algorithm: str, data: bytes) -> str:
    return hashlib.new(algorithm, data).hexdigest()


def in_dest(dest: Path) -> set[str]:
    return {p.relative_to(dest).as_posix() for p in dest.rglob("*")
            if p.is_file() and ".downloader" not in p.parts}


# -- list options ---------------------------------------------------------------

@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_a_matching_checksum_lands_the_file(server: FaultServer, tmp_path: Path,
                                            algorithm: str) -> None:
    url = server.add("/data.bin", BODY)
    summary = download_all([{"url": url, algorithm: digest(algorithm, BODY).upper()}],
                           tmp_path / "dest", **FAST)
    assert summary.ok, summary.results
    assert (tmp_path / "dest" / "data.bin").read_bytes() == BODY
    # The SHA-256 is computed when it is checked, not for every file.
    assert summary.results[0].sha256 == (digest("sha256", BODY) if algorithm == "sha256"
                                         else None)


def test_a_file_with_no_checksum_has_no_digest(server: FaultServer, tmp_path: Path) -> None:
    url = server.add("/data.bin", BODY)
    summary = download_all([url], tmp_path / "dest", **FAST)
    assert summary.ok, summary.results
    assert (tmp_path / "dest" / "data.bin").read_bytes() == BODY
    assert summary.results[0].sha256 is None


def test_asked_for_every_digest_a_download_is_hashed_as_written(
        server: FaultServer, tmp_path: Path) -> None:
    # What --write-checksums asks for: then it need not read the file again.
    url = server.add("/data.bin", BODY, etag='"v1"', drop_after=15_000)
    summary = download_all([url], tmp_path / "dest", record_sha256=True, **FAST)
    assert summary.ok, summary.results
    # Cut, resumed: the digest covers the bytes of both attempts.
    assert summary.results[0].attempts == 2
    assert summary.results[0].sha256 == digest("sha256", BODY)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_a_mismatch_fails_and_leaves_no_file(server: FaultServer, tmp_path: Path,
                                             algorithm: str) -> None:
    url = server.add("/data.bin", BODY)
    wanted = digest(algorithm, OTHER)
    summary = download_all([{"url": url, algorithm: wanted}], tmp_path / "dest", **FAST)
    result = summary.results[0]
    assert result.status == "failed"
    assert result.error == (f"{algorithm} mismatch: expected {wanted}, "
                            f"got {digest(algorithm, BODY)}")
    assert result.attempts == 1  # the same server would send the same bytes
    assert in_dest(tmp_path / "dest") == set()  # neither the file nor a .part


def test_every_checksum_given_is_checked(server: FaultServer, tmp_path: Path) -> None:
    url = server.add("/data.bin", BODY)
    entry = {"url": url, "sha256": digest("sha256", BODY), "sha1": digest("sha1", OTHER)}
    result = download_all([entry], tmp_path / "dest", **FAST).results[0]
    assert result.status == "failed" and result.error.startswith("sha1 mismatch")
    assert in_dest(tmp_path / "dest") == set()


@pytest.mark.parametrize("line, error", [
    ("http://example.org/a md5=abc", "md5= must be 32 hex digits, got 'abc'"),
    (f"http://example.org/a sha1={'0' * 64}", "sha1= must be 40 hex digits"),
    (f"http://example.org/a sha512={'g' * 128}", "sha512= must be 128 hex digits"),
    ("http://example.org/a crc32=1234", "unknown key 'crc32' (known: out, sha256, md5, "
                                        "sha1, sha512)"),
])
def test_bad_checksum_options_name_the_line(line: str, error: str) -> None:
    item = parse_line(line, "urls.txt:4")
    assert item is not None and item.entry is None
    assert item.error is not None and item.error.startswith(f"urls.txt:4: {error}")


def test_only_the_algorithms_asked_for_are_computed(tmp_path: Path) -> None:
    # Each costs more CPU per byte than the rest of the byte path: none is
    # computed unless asked for, not even the SHA-256.
    plain = PartFile(tmp_path / "a", tmp_path)
    plain.open(0)
    plain.write(memoryview(b"abc"))
    plain.close()
    assert plain.checksums() == {}
    both = PartFile(tmp_path / "b", tmp_path)
    both.open(0, {"md5": "x", "sha256": "y"})
    both.write(memoryview(b"abc"))
    both.close()
    assert both.checksums() == {"sha256": digest("sha256", b"abc"), "md5": digest("md5", b"abc")}


def test_a_resumed_part_is_hashed_whole(server: FaultServer, tmp_path: Path) -> None:
    url = server.add("/big.bin", BODY, etag='"v1"', drop_after=15_000)
    entry = {"url": url, "md5": digest("md5", BODY), "sha512": digest("sha512", BODY)}
    result = download_all([entry], tmp_path / "dest", **FAST).results[0]
    assert result.status == "downloaded" and result.attempts == 2, result
    assert server.requests[-1].headers.get("Range") == "bytes=15000-"
    assert (tmp_path / "dest" / "big.bin").read_bytes() == BODY


@pytest.mark.parametrize("algorithm", ["md5", "sha512"])
def test_skip_keeps_an_existing_file_only_if_it_matches(server: FaultServer, tmp_path: Path,
                                                        algorithm: str) -> None:
    url = server.add("/data.bin", BODY)
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "good.bin").write_bytes(BODY)
    (dest / "bad.bin").write_bytes(OTHER)
    entries = [{"url": url, "out": name, algorithm: digest(algorithm, BODY)}
               for name in ("good.bin", "bad.bin")]
    good, bad = download_all(entries, dest, **FAST).results
    assert good.status == "skipped" and bad.status == "downloaded"
    assert server.hits("/data.bin") == 1  # for bad.bin only
    assert (dest / "bad.bin").read_bytes() == BODY


def test_update_asks_conditionally_only_for_a_file_that_matches(server: FaultServer,
                                                                tmp_path: Path) -> None:
    url = server.add("/data.bin", BODY, etag='"v1"')
    entry = {"url": url, "md5": digest("md5", BODY)}
    dest = tmp_path / "dest"
    assert download_all([entry], dest, **FAST).results[0].status == "downloaded"

    kept = download_all([entry], dest, if_exists="update", **FAST).results[0]
    assert kept.status == "skipped" and kept.http_status == 304

    (dest / "data.bin").write_bytes(OTHER)  # same length, other bytes
    again = download_all([entry], dest, if_exists="update", **FAST).results[0]
    assert again.status == "downloaded"
    assert server.requests[-1].headers.get("If-None-Match") is None
    assert (dest / "data.bin").read_bytes() == BODY


# -- reading a SHA256SUMS file ----------------------------------------------------

SHA = "ab" * 32


@pytest.mark.parametrize("line, parsed", [
    (f"{SHA}  a.csv\n", ("sha256", SHA, "a.csv")),
    (f"{SHA.upper()} *sub/a b.csv\r\n", ("sha256", SHA, "sub/a b.csv")),
    (f"{'0' * 32}  x", ("md5", "0" * 32, "x")),
    (f"{'1' * 40}  x", ("sha1", "1" * 40, "x")),
    (f"{'2' * 128}  x", ("sha512", "2" * 128, "x")),
    (f"SHA256 (a.csv) = {SHA}", ("sha256", SHA, "a.csv")),
    (f"MD5 (odd (name).txt) = {'f' * 32}", ("md5", "f" * 32, "odd (name).txt")),
    (f"\\{SHA}  back\\\\slash\\nnewline", ("sha256", SHA, "back\\slash\nnewline")),
    ("", None),
    ("   \n", None),
    ("# made by hand\n", None),
])
def test_checksum_lines(line: str, parsed: tuple[str, str, str] | None) -> None:
    assert parse_checksum_line(line) == parsed


@pytest.mark.parametrize("line, problem", [
    (f"{'0' * 50}  x", "a checksum of 50 hex digits is none of md5"),
    (f"{SHA} x", "expected 'HEX  NAME'"),  # one space: not sha256sum's format
    (f"{SHA}  ", "expected 'HEX  NAME'"),  # no name
    ("hello world", "expected 'HEX  NAME'"),
    (f"SHA256 (a) = {'0' * 32}", "a SHA256 checksum has 64 hex digits, not 32"),
])
def test_bad_checksum_lines(line: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem.replace("(", r"\(")):
        parse_checksum_line(line)


def test_a_bad_line_names_file_and_line(tmp_path: Path) -> None:
    sums = tmp_path / "SHA256SUMS"
    sums.write_text(f"{SHA}  a\n\nnot a checksum\n")
    with pytest.raises(ChecksumFileError, match=f"^{sums}:3: expected"):
        read_checksum_list(str(sums))
    sums.write_text(f"{SHA}  a\n{'cd' * 32}  ./a\n")
    with pytest.raises(ChecksumFileError, match=f"^{sums}:2: ./a is listed again"):
        read_checksum_list(str(sums))


def test_names_match_by_path_then_location_then_basename(tmp_path: Path) -> None:
    root = tmp_path / "dest"
    sums = tmp_path / "sums.txt"
    sums.write_text(f"{'1' * 64}  ./sub/a.csv\n{'2' * 64}  dest/b.csv\n{'3' * 64}  c.csv\n"
                    f"{'4' * 64}  other/d.csv\n")
    listed = read_checksum_list(str(sums))
    assert listed.expected(root, "sub/a.csv") == {"sha256": "1" * 64}  # relative to DEST
    assert listed.expected(root, "b.csv") == {"sha256": "2" * 64}  # from the list's folder
    assert listed.expected(root, "deep/er/c.csv") == {"sha256": "3" * 64}  # basename
    assert listed.expected(root, "d.csv") == {}  # a name with a folder is not a basename
    assert listed.expected(root, "a.csv") == {}


# -- the command line -------------------------------------------------------------

def test_checksums_file_verifies_the_files_it_names(cli: Any, server: FaultServer,
                                                    tmp_path: Path) -> None:
    good = server.add("/good.bin", BODY)
    bad = server.add("/bad.bin", BODY)  # the list expects OTHER's digest
    unlisted = server.add("/free.bin", OTHER)
    named = server.add("/get", OTHER, content_disposition='attachment; filename="three.bin"') \
        + "?id=3"
    kept = server.add("/kept.bin", BODY)
    (tmp_path / "SHA256SUMS").write_text(
        f"{digest('sha256', BODY)}  good.bin\n"
        f"{digest('sha256', OTHER)} *bad.bin\n"
        f"{digest('md5', BODY)}  three.bin\n"  # md5sum lines may share the file
        f"{digest('sha256', BODY)}  sub/kept.bin\n")
    (tmp_path / "urls.txt").write_text(
        f"{good}\n{bad}\n{unlisted}\n{named}\n{kept} out=sub/kept.bin\n")

    proc = cli("-i", "urls.txt", "-d", "dest", "--checksums", "SHA256SUMS", "-q",
               "--report", "report.json", *CLI_FAST)

    assert proc.returncode == 1, proc.stderr
    report = {r["url"]: r for r in json.loads((tmp_path / "report.json").read_text())["results"]}
    assert report[bad]["error"] == (f"sha256 mismatch: expected {digest('sha256', OTHER)}, "
                                    f"got {digest('sha256', BODY)}")
    # The name three.bin came from the server; it was matched once known.
    assert report[named]["error"] == (f"md5 mismatch: expected {digest('md5', BODY)}, "
                                      f"got {digest('md5', OTHER)}")
    assert {url: r["status"] for url, r in report.items()} == {
        good: "downloaded", bad: "failed", unlisted: "downloaded", named: "failed",
        kept: "downloaded"}
    # A file that fails its listed checksum never lands, not even as a .part.
    assert in_dest(tmp_path / "dest") == {"good.bin", "free.bin", "sub/kept.bin"}


@pytest.mark.parametrize("content, problem", [
    (f"{SHA}  a\nhello\n", "--checksums SUMS:2: expected 'HEX  NAME'"),
    (f"{'0' * 10}  a\n", "--checksums SUMS:1: a checksum of 10 hex digits is none of"),
    (None, "--checksums SUMS: cannot read it: No such file or directory"),
])
def test_an_unusable_checksums_file_is_a_usage_error(cli: Any, tmp_path: Path,
                                                     content: str | None, problem: str) -> None:
    if content is not None:
        (tmp_path / "SUMS").write_text(content)
    proc = cli("http://127.0.0.1:9/x", "-d", "dest", "--checksums", "SUMS")
    assert proc.returncode == 2
    assert proc.stderr.startswith(f"downloader: error: {problem}"), proc.stderr
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert not (tmp_path / "dest").exists()


needs_sha256sum = pytest.mark.skipif(shutil.which("sha256sum") is None,
                                     reason="needs GNU sha256sum")


@needs_sha256sum
def test_write_checksums_is_ready_for_sha256sum_c(cli: Any, server: FaultServer,
                                                  tmp_path: Path) -> None:
    a = server.add("/a.bin", BODY)
    b = server.add("/b.bin", OTHER)
    missing = server.add("/missing.bin", status=404)
    (tmp_path / "urls.txt").write_text(f"{a}\n{b} out=sub/b.bin\n{missing}\n{a}\n")

    # The list's paths are relative to its own folder: inside DEST, or here.
    first = cli("-i", "urls.txt", "-d", "dest", "-q", "--write-checksums", "dest/SHA256SUMS",
                *CLI_FAST)
    assert first.returncode == 1  # missing.bin: not listed
    second = cli("-i", "urls.txt", "-d", "dest", "-q", "--write-checksums", "sums.txt",
                 *CLI_FAST)
    assert second.returncode == 1
    assert server.hits("/a.bin") == 1  # the second run kept (skipped) both files...

    in_dest_list = (tmp_path / "dest" / "SHA256SUMS").read_text()
    assert in_dest_list == (f"{digest('sha256', BODY)}  a.bin\n"
                            f"{digest('sha256', OTHER)}  sub/b.bin\n")
    # ...and listed them all the same, hashed from disk this time.
    assert (tmp_path / "sums.txt").read_text() == (f"{digest('sha256', BODY)}  dest/a.bin\n"
                                                   f"{digest('sha256', OTHER)}  dest/sub/b.bin\n")
    for folder, name in [(tmp_path / "dest", "SHA256SUMS"), (tmp_path, "sums.txt")]:
        check = subprocess.run(["sha256sum", "-c", name], cwd=folder, capture_output=True,
                               text=True)
        assert check.returncode == 0, check.stdout + check.stderr
        assert check.stdout.count(": OK") == 2

    # And the list reads back as --checksums: a changed file is caught.
    server.set_body("/b.bin", BODY)
    third = cli("-i", "urls.txt", "-d", "dest", "-q", "--if-exists", "overwrite",
                "--checksums", "sums.txt", *CLI_FAST)
    assert third.returncode == 1
    assert f"sha256 mismatch: expected {digest('sha256', OTHER)}" in third.stderr
    assert (tmp_path / "dest" / "sub" / "b.bin").read_bytes() == OTHER  # left as it was


@needs_sha256sum
def test_written_names_are_escaped_as_sha256sum_does(tmp_path: Path) -> None:
    odd = tmp_path / "back\\slash.bin"
    odd.write_bytes(BODY)
    (tmp_path / "SUMS").write_text(checksum_text([(odd, digest("sha256", BODY))], str(tmp_path)))
    assert (tmp_path / "SUMS").read_text().startswith("\\")
    check = subprocess.run(["sha256sum", "-c", "SUMS"], cwd=tmp_path, capture_output=True)
    assert check.returncode == 0, check.stdout
    assert read_checksum_list(str(tmp_path / "SUMS")).expected(tmp_path, "back\\slash.bin")


def test_write_checksums_asks_for_every_digest() -> None:
    def settings(*argv: str) -> Any:
        return settings_from(parse_args(["http://example.org/a", *argv]))
    assert settings("--write-checksums", "SUMS").record_sha256
    assert not settings().record_sha256


def test_write_checksums_to_stdout(cli: Any, server: FaultServer, tmp_path: Path) -> None:
    url = server.add("/a.bin", BODY)
    proc = cli(url, "-d", "dest", "-q", "--write-checksums", "-", *CLI_FAST)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"{digest('sha256', BODY)}  dest/a.bin\n"
    clash = cli(url, "--report", "-", "--write-checksums", "-")
    assert clash.returncode == 2
    assert "--report - and --write-checksums - cannot share stdout" in clash.stderr
