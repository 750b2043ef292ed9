"""Pure tests of URL-list parsing and library entries (no network)."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from downloader import Entry, download_all
from downloader.entries import Item, from_arguments, from_library, parse_lines
from downloader.naming import normalized_out

SHA = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
URL = "https://example.org/data/a.csv"


def parse(*lines: str, name: str = "urls.txt") -> list[Item]:
    return list(parse_lines(lines, name))


def one(line: str) -> Item:
    items = parse(line)
    assert len(items) == 1, items
    return items[0]


def names_place(error: str | None, where: str) -> bool:
    """Whether ``error`` names ``where`` exactly (``urls.txt:4``, not ``urls.txt:40``)."""
    return error is not None and re.search(rf"(?<![\w.]){re.escape(where)}(?!\d)", error) is not None


# --- lines that are entries -------------------------------------------------

@pytest.mark.parametrize("line, expected", [
    (URL, Entry(URL)),
    (f"   {URL}   ", Entry(URL)),
    (f"{URL}\r\n", Entry(URL)),
    ("https://example.org/img?id=7\tout=images/seven.png",
     Entry("https://example.org/img?id=7", out="images/seven.png")),
    (f"{URL} \t sha256={SHA}\t", Entry(URL, sha256=SHA)),
    (f"{URL} sha256={SHA} out=x/y.csv", Entry(URL, out="x/y.csv", sha256=SHA)),
    (f"{URL} sha256={SHA.upper()}", Entry(URL, sha256=SHA)),
    ("http://example.org:8080/x", Entry("http://example.org:8080/x")),
    ("https://example.org", Entry("https://example.org")),
    ("http://[::1]:8000/x", Entry("http://[::1]:8000/x")),
])
def test_valid_line(line: str, expected: Entry) -> None:
    item = one(line)
    assert item.error is None
    assert item.entry == expected


@pytest.mark.parametrize("line", [
    "", "   ", "\r\n", "# a comment", "   # indented comment",
    "\ufeff", "\ufeff# comment after a BOM",
])
def test_blank_and_comment_lines_are_ignored(line: str) -> None:
    assert parse(line) == []


def test_bom_on_first_line_is_not_part_of_the_url() -> None:
    [item] = parse(f"\ufeff{URL}")
    assert item.entry == Entry(URL)


def test_file_with_bom_and_crlf(tmp_path: Path) -> None:
    listing = tmp_path / "urls.txt"
    listing.write_bytes(("\ufeff# list\r\n"
                         f"{URL}\r\n"
                         "\r\n"
                         f"https://example.org/b.csv\tout=b/b.csv\r\n"
                         "ftp://example.org/c\r\n").encode("utf-8"))
    with open(listing, encoding="utf-8", newline="") as f:  # keep the \r\n as read
        items = list(parse_lines(f, "urls.txt"))
    assert [i.entry for i in items[:2]] == [Entry(URL), Entry("https://example.org/b.csv", out="b/b.csv")]
    assert items[2].entry is None
    assert names_place(items[2].error, "urls.txt:5")


# --- lines that are not entries ---------------------------------------------

@pytest.mark.parametrize("line, reason", [
    (f"{URL} foo=bar", "foo"),
    (f"{URL} out=a.csv out=b.csv", "out"),
    (f"{URL} justaword", "justaword"),
    (f"{URL} sha256=abc", "sha256"),
    (f"{URL} sha256={'g' * 64}", "sha256"),
    (f"{URL} sha256=", "sha256"),
    ("ftp://example.org/x", "ftp"),
    ("file:///etc/passwd", "file"),
    ("example.org/a.csv", "not a URL"),
    ("https:///a.csv", "host"),
    ("http://example.org:99999/a", "port"),
])
def test_invalid_line_fails_with_reason(line: str, reason: str) -> None:
    item = one(line)
    assert item.entry is None
    assert reason.lower() in item.error.lower()
    assert names_place(item.error, "urls.txt:1")


@pytest.mark.parametrize("out", [
    "/etc/passwd",
    "C:/x.csv",
    "../x.csv",
    "a/../../x.csv",
    "a\\..\\..\\x.csv",
    ".downloader/state.db",
    "./.downloader/x",
    "dir/",
    ".",
    "",
    pytest.param("a" * 256 + ".csv", id="component-over-255-bytes"),
])
def test_out_that_escapes_or_names_no_file_fails(out: str) -> None:
    item = one(f"{URL} out={out}")
    assert item.entry is None
    assert "out=" in item.error
    assert names_place(item.error, "urls.txt:1")


def test_whitespace_splits_a_url_on_a_line() -> None:
    # "a b.csv" is a URL and a stray word, not one URL with a space.
    item = one("https://example.org/a b.csv")
    assert item.entry is None
    assert names_place(item.error, "urls.txt:1")


@pytest.mark.parametrize("out, clean", [
    ("./a/./b.csv", "a/b.csv"),
    ("a//b.csv", "a/b.csv"),
])
def test_out_is_normalised(out: str, clean: str) -> None:
    assert one(f"{URL} out={out}").error is None
    assert normalized_out(out) == clean


# --- where an error says it came from ---------------------------------------

def test_errors_name_file_and_line_counting_blanks_and_comments() -> None:
    items = parse("# header", "", URL, "ftp://example.org/x", "   ",
                  f"{URL} bad=1", name="lists/urls.txt")
    assert [i.error is None for i in items] == [True, False, False]
    assert names_place(items[1].error, "lists/urls.txt:4")
    assert names_place(items[2].error, "lists/urls.txt:6")


def test_errors_from_stdin_name_dash_and_line() -> None:
    items = parse(URL, "nonsense", name="-")
    assert items[0].error is None
    assert names_place(items[1].error, "-:2")


def test_a_bad_line_does_not_stop_the_others() -> None:
    items = parse("ftp://x/y", URL, f"{URL} out=../z", "https://example.org/b")
    assert [i.entry for i in items] == [None, Entry(URL), None, Entry("https://example.org/b")]


@pytest.mark.parametrize("url, reason", [
    ("https://example.org/a b.csv", "whitespace"),
    ("ftp://example.org/x", "ftp"),
    ("", "empty"),
])
def test_command_line_arguments_are_named_by_position(url: str, reason: str) -> None:
    items = from_arguments([URL, "https://example.org/ok", url])
    assert [i.entry for i in items[:2]] == [Entry(URL), Entry("https://example.org/ok")]
    assert items[2].entry is None
    assert reason in items[2].error.lower()
    assert names_place(items[2].error, "argument 3")


# --- the library's urls argument --------------------------------------------

def test_from_library_accepts_strings_mappings_and_entries_in_order() -> None:
    items = from_library([
        URL,
        {"url": "https://example.org/b", "out": "sub/b.bin", "sha256": SHA.upper()},
        {"url": "https://example.org/c"},
        Entry("https://example.org/d", out="d.txt"),
    ])
    assert [i.entry for i in items] == [
        Entry(URL),
        Entry("https://example.org/b", out="sub/b.bin", sha256=SHA),
        Entry("https://example.org/c"),
        Entry("https://example.org/d", out="d.txt"),
    ]


def test_from_library_accepts_any_iterable() -> None:
    items = list(from_library(u for u in (URL, "https://example.org/b")))
    assert [i.entry.url for i in items] == [URL, "https://example.org/b"]


@pytest.mark.parametrize("value", [
    {"url": URL, "name": "x.csv"},
    {"url": URL, "out": "../x"},
    {"url": "ftp://example.org/x"},
    Entry(URL, out="/abs"),
])
def test_from_library_bad_item_is_a_failed_item_not_an_exception(value: object) -> None:
    items = list(from_library([URL, value, "https://example.org/b"]))
    assert items[0].entry == Entry(URL)
    assert items[1].entry is None and items[1].error
    assert items[2].entry == Entry("https://example.org/b")


def test_unknown_mapping_key_is_named() -> None:
    [item] = list(from_library([{"url": URL, "filename": "x.csv"}]))
    assert item.entry is None
    assert "filename" in item.error


def test_a_single_string_is_a_type_error() -> None:
    for urls in (URL, URL.encode()):
        with pytest.raises(TypeError):
            list(from_library(urls))


@pytest.mark.parametrize("value", [42, None, [URL]])
def test_wrong_item_type_is_a_type_error(value: object) -> None:
    with pytest.raises(TypeError):
        list(from_library([URL, value]))


def test_download_all_with_a_single_string_raises_type_error(tmp_path: Path) -> None:
    with pytest.raises(TypeError):
        download_all(URL, dest=tmp_path / "d")


def test_entry_is_spelt_as_the_contract_says_and_compares_by_value() -> None:
    # Entry(url, out=None, sha256=None): positional in that order, meaning
    # the same as the mapping with those keys.
    assert Entry(URL, "x/y.csv", SHA) == Entry(URL, out="x/y.csv", sha256=SHA)
    assert (Entry(URL).out, Entry(URL).sha256) == (None, None)
    assert list(from_library([Entry(URL, "x/y.csv", SHA)])) == \
        list(from_library([{"url": URL, "out": "x/y.csv", "sha256": SHA}]))
    # Equal entries are one key, so a user can de-duplicate or index a list of them.
    assert {Entry(URL), Entry(URL), Entry(URL, out="b.csv")} == {Entry(URL), Entry(URL, out="b.csv")}
