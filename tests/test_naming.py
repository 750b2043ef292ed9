"""Pure tests of file naming: hostile server names, URL names, collisions."""
from __future__ import annotations

import os
import re
import threading
from pathlib import Path

import pytest

from downloader.naming import Names, inside, sanitize, server_name

URL = "https://example.org/files/from-url.bin"
LIMIT = 240  # bytes, from the contract


def assert_safe(name: str) -> None:
    """What the contract promises of any name taken from a server or a URL."""
    assert name and name not in (".", "..")
    assert "/" not in name and "\\" not in name
    assert not re.search(r"[\x00-\x1f\x7f]", name)
    assert len(name.encode("utf-8")) <= LIMIT


def cd(filename: str) -> str:
    """A Content-Disposition header offering ``filename`` as a quoted string."""
    quoted = filename.replace("\\", "\\\\").replace('"', '\\"')
    return f'attachment; filename="{quoted}"'


# --- Content-Disposition ----------------------------------------------------

@pytest.mark.parametrize("header, expected", [
    ("attachment; filename=report.pdf", "report.pdf"),
    (r'attachment; filename="say \"hi\".txt"', 'say "hi".txt'),
    ("attachment; filename=\"fallback.txt\"; filename*=UTF-8''na%C3%AFve%20file.txt",
     "naïve file.txt"),
    ("attachment; filename*=iso-8859-1''caf%E9.txt", "café.txt"),
    ("attachment; filename*=no-such-charset''x%41.txt; filename=\"plain.txt\"", "plain.txt"),
    ("attachment; filename*=UTF-8''%FF%FE.txt; filename=\"plain.txt\"", "plain.txt"),
    ("attachment; filename*=no-such-charset''x%41.txt", "from-url.bin"),
    ("attachment; filename=..\\..\\x", "x"),
    (cd("../../x"), "x"),
    (cd("/etc/passwd"), "passwd"),
    ("attachment; filename*=UTF-8''..%2F..%2Fetc%2Fpasswd", "passwd"),
    (cd(".."), "from-url.bin"),
    (cd(""), "from-url.bin"),
    (cd("/"), "from-url.bin"),
    ("attachment", "from-url.bin"),
    (None, "from-url.bin"),
])
def test_server_name_from_content_disposition(header: str | None, expected: str) -> None:
    name = server_name(URL, header)
    assert name == expected
    assert_safe(name)


@pytest.mark.parametrize("hostile", [
    "a\x00b.txt",
    "a\x1b[31mred.txt",
    "line\nbreak.txt",
    "..\\..\\x",
    "C:\\Windows\\x",
    "\\\\server\\share\\x",
])
def test_hostile_names_are_sanitised_not_refused(hostile: str) -> None:
    name = server_name(URL, cd(hostile))
    assert_safe(name)
    if "\\" in hostile:
        assert name == "x"


@pytest.mark.parametrize("header", [
    'attachment; filename="..\\..\\x"',  # unescaped backslashes in a quoted string
    "attachment; filename*=UTF-8''%2e%2e",
    "attachment; filename*=UTF-8''%C0%AE%C0%AE%2F",  # overlong UTF-8 for "../"
    pytest.param('attachment; filename="' + "x" * 5000 + '"', id="5000-chars"),
])
def test_malformed_headers_still_give_a_safe_name(header: str) -> None:
    assert_safe(server_name(URL, header))


def test_name_that_sanitises_to_nothing_falls_back_to_url_then_index_html() -> None:
    assert server_name("https://example.org/dir/", cd("..")) == "index.html"
    assert server_name("https://example.org", cd("/")) == "index.html"
    assert server_name("https://example.org/%2e%2e", None) == "index.html"


@pytest.mark.parametrize("stem_char, ext", [
    ("a", ".csv"),
    ("é", ".txt"),      # 2 bytes
    ("日", ".txt"),     # 3 bytes
    ("😀", ".json"),   # 4 bytes
])
def test_long_names_are_cut_at_a_character_boundary_keeping_the_extension(
        stem_char: str, ext: str) -> None:
    stem = stem_char * 300
    name = server_name(URL, cd(stem + ext))
    assert_safe(name)
    assert name.endswith(ext)
    kept = name[: -len(ext)]
    assert kept and stem.startswith(kept)  # a prefix of whole characters
    assert "\ufffd" not in name
    # as much as fits: one more character would pass the limit
    assert len((kept + stem[len(kept)] + ext).encode()) > LIMIT


def test_name_at_the_limit_is_kept_whole() -> None:
    exact = "b" * (LIMIT - 4) + ".csv"
    assert sanitize(exact) == exact


# --- URL names ---------------------------------------------------------------

@pytest.mark.parametrize("url, expected", [
    ("https://example.org/data/a.csv", "a.csv"),
    ("https://example.org/na%C3%AFve.txt", "naïve.txt"),
    ("https://example.org/img?id=7", "img"),
    ("https://example.org/a.csv?x=1&y=/etc/passwd", "a.csv"),
    ("https://example.org/dir/", "index.html"),
    ("https://example.org", "index.html"),
])
def test_url_name(url: str, expected: str) -> None:
    name = server_name(url, None)
    assert name == expected
    assert_safe(name)


@pytest.mark.parametrize("url", [
    "https://example.org/a%2Fb",
    "https://example.org/a%2F..%2F..%2Fetc%2Fpasswd",
    "https://example.org/..%5C..%5Cwin.ini",
    "https://example.org/a%00b",
    "https://example.org/%0d%0a.txt",
    "https://example.org/%2e%2e%2f%2e%2e%2fx",
])
def test_percent_encoded_separators_and_controls_cannot_survive(url: str) -> None:
    assert_safe(server_name(url, None))


# --- collisions ---------------------------------------------------------------

@pytest.mark.parametrize("wanted, expected", [
    ("a.csv", ["a.csv", "a.1.csv", "a.2.csv"]),
    ("README", ["README", "README.1", "README.2"]),
    (".bashrc", [".bashrc", ".bashrc.1", ".bashrc.2"]),
    ("sub/a.csv", ["sub/a.csv", "sub/a.1.csv", "sub/a.2.csv"]),
])
def test_claim_numbers_colliding_names(wanted: str, expected: list[str]) -> None:
    names = Names()
    assert [names.claim(wanted) for _ in expected] == expected


def test_same_name_in_different_folders_does_not_collide() -> None:
    names = Names()
    assert [names.claim(p) for p in ("a.csv", "x/a.csv", "y/a.csv")] == ["a.csv", "x/a.csv", "y/a.csv"]


@pytest.mark.parametrize("first, second", [
    ("a.csv", "a.csv.part"),   # the second would be the first's .part file
    ("a.csv.part", "a.csv"),   # the first is the second's .part file
])
def test_claim_avoids_part_file_clashes(first: str, second: str) -> None:
    names = Names()
    one, two = names.claim(first), names.claim(second)
    paths = {one, two, one + ".part", two + ".part"}
    assert len(paths) == 4


def test_state_folder_name_is_reserved() -> None:
    assert Names().claim(".downloader") != ".downloader"


def test_a_folder_of_one_target_is_not_a_file_of_another() -> None:
    names = Names()
    assert names.claim("sub/a.csv") == "sub/a.csv"
    assert names.claim("sub") != "sub"


def test_claim_is_thread_safe() -> None:
    names = Names()
    barrier = threading.Barrier(32)
    got: list[str] = []

    def worker() -> None:
        barrier.wait()
        got.append(names.claim("a.csv"))

    threads = [threading.Thread(target=worker) for _ in range(32)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert len(got) == 32
    assert len(set(got)) == 32
    assert "a.csv" in got


# --- inside() -----------------------------------------------------------------

@pytest.mark.skipif(not hasattr(os, "symlink"), reason="needs symlinks")
def test_inside_follows_symlinks(tmp_path: Path) -> None:
    root = (tmp_path / "dest").resolve()
    (root / "real").mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    (root / "link").symlink_to(outside, target_is_directory=True)

    assert inside(root, root / "real" / "f.txt")
    assert inside(root, root / "f.txt")
    assert not inside(root, root / "link" / "f.txt")
    assert not inside(root, root / ".." / "f.txt")
    assert not inside(root, outside / "f.txt")


def test_a_folder_that_is_another_entrys_file_is_refused() -> None:
    names = Names()
    assert names.claim("data") == "data"
    with pytest.raises(ValueError, match="data is another entry's file"):
        names.claim("data/b.csv")
    # The other way round, the file is renamed: its name is a folder now.
    names2 = Names()
    assert names2.claim("set/a.csv") == "set/a.csv"
    assert names2.claim("set") == "set.1"
