"""Property tests (Hypothesis) of URL-list parsing and file naming.

Whatever text a list line, a library caller, a URL or a server's
Content-Disposition holds, parsing and naming never raise (beyond the
documented TypeError), and no name they accept leads outside DEST.
The regressions at the end are the concrete cases the fuzzing found.
"""
from __future__ import annotations

import re
import time
from collections.abc import Mapping
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from downloader.entries import (
    Entry, EntryLike, Item, check_out, check_url, from_library, make_item, parse_line, parse_lines,
)
from downloader.naming import (
    MAX_NAME_BYTES, PART_SUFFIX, STATE_DIR_NAME, Names, disposition_filename,
    normalized_out, numbered, sanitize, server_name, truncate, url_filename,
)

# deadline=None: the machine is shared and busy; database=None: no
# .hypothesis folder left in the checkout.
FUZZ = settings(max_examples=100, deadline=None, database=None)

CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
MAX_NUMBER = 10**6

# Lone surrogates can't come from a list file (read with errors="replace"),
# but argv (surrogateescape) and library callers can hand over any str.
ANY_CHAR = st.characters(exclude_categories=())
PIECES = [
    "/", "\\", ".", "..", "%", "%2F", "%2e", "%5C", "%00", "%C0%AE", "%FF", "%", "%G", "%2",
    '"', "'", "''", ";", "=", " ", "\t", "\r\n", "\x00", "\x1b[31m", "\x85", "\x9b", "\x7f",
    "\ufeff", "\ufffd", "\ud800", "\udcff", "\udfff", "é", "€", "😀",
    "#", "?", "@", ":", "[", "]", ".part", STATE_DIR_NAME, "index.html", "a.tar.gz", "C:",
    "x" * 120, "é" * 90,
]


def fragments(*extra: str, max_size: int = 12) -> st.SearchStrategy[str]:
    """Text glued from pieces that matter to parsers, and arbitrary characters."""
    piece = st.one_of(st.sampled_from([*PIECES, *extra]), st.text(ANY_CHAR, max_size=6))
    return st.lists(piece, max_size=max_size).map("".join)


SHA = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
# Mostly well-formed values, so that accepted entries get checked too, and junk.
good_urls = st.tuples(
    st.sampled_from(["http://", "https://", "HTTP://"]),
    st.sampled_from(["example.org", "127.0.0.1:8080", "[::1]", "user:pw@example.org"]),
    st.lists(st.sampled_from(["/", "a", "b.csv", "..", "%2F", "%C3%A9", "%FF", "%00", "?q=1",
                              "#f", "é", "\\"]), max_size=6).map("".join),
).map("".join)
urls = st.one_of(
    good_urls,
    st.tuples(st.sampled_from(["http://", "https://", "ftp://", "HTTP://"]),
              fragments("example.org", "[::1]", ":8080", ":99999", "user:pw@")).map("".join),
    fragments("http://", "https://"),
)
outs = st.one_of(
    st.lists(st.sampled_from(["a", "b.csv", "..", ".", "", STATE_DIR_NAME, "C:", "a.part",
                              "~", "x" * 240, "y" * 241, "é" * 120, " ", "%2F"]),
             min_size=1, max_size=4).flatmap(
        lambda parts: st.sampled_from(["/", "\\"]).map(lambda sep: sep.join(parts))),
    fragments("a", "b", "sub/", "../", "./", "//", "a" * 200),
)
shas = st.one_of(st.none(), st.just(SHA), st.just(SHA.upper()), fragments("0", "f"))
where_labels = st.one_of(st.sampled_from(["urls.txt:1", "-:7", "argument 3", "entry 2"]),
                         fragments())


@pytest.fixture(scope="module")
def dest(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("dest").resolve()


def assert_inside(dest: Path, relative: str) -> None:
    target = (dest / relative).resolve()
    assert target != dest and dest in target.parents, relative


def assert_usable(entry: Entry, dest: Path) -> None:
    """What the engine relies on in a valid entry."""
    assert check_url(entry.url) is None
    entry.url.encode("utf-8")  # storable in the state database and the report
    for algorithm, digits in {"md5": 32, "sha1": 40, "sha256": 64, "sha512": 128}.items():
        value = getattr(entry, algorithm)
        assert value is None or re.fullmatch(f"[0-9a-f]{{{digits}}}", value)
    assert isinstance(entry.mirrors, tuple) and entry.url not in entry.mirrors
    for mirror in entry.mirrors:
        assert check_url(mirror) is None
        mirror.encode("utf-8")
    if entry.out is not None:
        assert check_out(entry.out) is None
        relative = normalized_out(entry.out)
        assert_inside(dest, relative)
        assert relative.split("/")[0] != STATE_DIR_NAME
        assert not CONTROL.search(relative)
        name = relative.rsplit("/", 1)[-1]
        assert len(numbered(name, MAX_NUMBER).encode("utf-8") + b".part") <= 255


def assert_item(item: Item, where: str, dest: Path) -> None:
    assert (item.entry is None) != (item.error is None)
    if item.error is not None:
        assert item.error.startswith(f"{where}: ")
    else:
        assert item.entry is not None and item.url == item.entry.url
        assert_usable(item.entry, dest)


# --- entries.py ---------------------------------------------------------------

def lines() -> st.SearchStrategy[str]:
    option = st.one_of(
        outs.map("out=".__add__),
        st.sampled_from([SHA, SHA.upper(), SHA[1:], ""]).map("sha256=".__add__),
        st.sampled_from([SHA[:32], SHA[:40], SHA * 2, SHA]).flatmap(
            lambda digest: st.sampled_from(["md5=", "sha1=", "sha512="]).map(
                lambda key: key + digest)),
        urls,  # a mirror (before the options), or one out of place
        st.tuples(st.sampled_from(["out", "sha256", "md5", "OUT", "name", ""]),
                  st.sampled_from(["=", "", "=="]), fragments()).map("".join),
    )
    return st.one_of(
        st.tuples(st.one_of(good_urls, urls), st.lists(option, max_size=3),
                  st.sampled_from([" ", "\t", " \t ", "\x1c", "\xa0"])).map(
            lambda t: t[2].join([t[0], *t[1]])),
        fragments("http://example.org/a", " out=", " sha256=", "#"),
    )


@FUZZ
@given(line=lines(), where=where_labels)
@example(line="http://example.org/\udcff", where="argument 1")
@example(line="http://example.org/a out=\ud800", where="urls.txt:1")
@example(line="http://example.org/a out=" + "a" * 250, where="urls.txt:1")
def test_parse_line_never_raises_and_names_its_place(line: str, where: str, dest: Path) -> None:
    item = parse_line(line, where)
    text = line.strip()
    if not text or text.startswith("#"):
        assert item is None
        return
    assert item is not None and item.where == where
    assert item.url == text.split()[0]
    assert_item(item, where, dest)


@FUZZ
@given(body=st.lists(lines(), max_size=6), bom=st.booleans(),
       name=st.sampled_from(["urls.txt", "-"]))
def test_parse_lines_numbers_every_entry_line(body: list[str], bom: bool, name: str,
                                              dest: Path) -> None:
    if bom and body:
        body = ["\ufeff" + body[0], *body[1:]]
    items = list(parse_lines(body, name))
    # A byte-order mark is one only at the start of the list: on a later
    # line, U+FEFF is text (and no URL).
    expected = [f"{name}:{n}" for n, line in enumerate(body, 1)
                if (text := (line.lstrip("\ufeff") if n == 1 else line).strip())
                and not text.startswith("#")]
    assert [item.where for item in items] == expected
    for item in items:
        assert_item(item, item.where, dest)


@FUZZ
@given(out=outs)
@example(out="a/\udcff.bin")
@example(out="sub/" + "a" * 255)
def test_accepted_out_stays_inside_dest(out: str, dest: Path) -> None:
    if check_out(out) is None:
        assert_usable(Entry("https://example.org/", out), dest)


@FUZZ
@given(url=urls, out=st.one_of(st.none(), outs), sha=shas, where=where_labels)
def test_make_item_never_raises(url: str, out: str | None, sha: str | None, where: str,
                                dest: Path) -> None:
    assert_item(make_item(where, Entry(url, out, sha)), where, dest)


def library_values() -> st.SearchStrategy[EntryLike]:
    """What download_all's urls may hold: strings, Entries and mappings."""
    optional = st.one_of(st.none(), outs)
    mapping = st.fixed_dictionaries(
        {"url": urls},
        optional={"out": st.one_of(outs, outs.map(Path)), "sha256": shas,
                  "md5": shas, "mirrors": st.lists(urls, max_size=2),
                  "name": st.text(max_size=3), 1: st.none(), b"out": st.none()})
    return st.one_of(urls, st.builds(Entry, urls, optional, shas),
                     st.builds(Entry, urls, outs.map(Path)), mapping)


@FUZZ
@given(values=st.lists(library_values(), max_size=6))
def test_from_library_never_raises_for_well_typed_items(values: list[EntryLike],
                                                        dest: Path) -> None:
    items = list(from_library(values))
    assert [item.where for item in items] == [f"entry {n}" for n in range(1, len(values) + 1)]
    for item, value in zip(items, values):
        url = value.url if isinstance(value, Entry) else (
            value["url"] if isinstance(value, Mapping) else value)
        assert item.url == url
        assert_item(item, item.where, dest)


@FUZZ
@given(values=st.lists(library_values(), max_size=4), at=st.integers(0, 4),
       wrong=st.sampled_from([42, None, b"http://example.org/", ["http://example.org/"],
                              {"out": "x"}, {"url": b"http://example.org/"},
                              {"url": "http://example.org/", "out": 42},
                              Entry("http://example.org/", out=42)]))  # type: ignore[arg-type]
def test_from_library_wrong_types_are_a_type_error(values: list[object], at: int,
                                                   wrong: object) -> None:
    values.insert(at, wrong)
    with pytest.raises(TypeError):
        list(from_library(values))  # type: ignore[arg-type]


@FUZZ
@given(urls=st.one_of(urls, urls.map(lambda url: url.encode("utf-8", "surrogatepass"))))
def test_from_library_single_string_is_a_type_error(urls: object) -> None:
    with pytest.raises(TypeError):
        list(from_library(urls))  # type: ignore[arg-type]


# --- naming.py ----------------------------------------------------------------

def assert_safe_name(name: str, dest: Path) -> None:
    """The contract's promises for a name taken from a server or a URL."""
    assert name and name not in (".", "..")
    assert "/" not in name and "\\" not in name
    assert not CONTROL.search(name)
    encoded = name.encode("utf-8")  # strict: no lone surrogates
    assert len(encoded) <= MAX_NAME_BYTES
    assert len(numbered(name, MAX_NUMBER).encode("utf-8")) <= 255
    assert len((name + PART_SUFFIX).encode("utf-8")) <= 255
    assert len((numbered(name, MAX_NUMBER) + PART_SUFFIX).encode("utf-8")) <= 255
    assert (dest / name).resolve().parent == dest


CHARSETS = ["UTF-8", "utf-8", "iso-8859-1", "", "no-such-charset", "undefined", "idna",
            "punycode", "unicode_escape", "raw_unicode_escape", "utf-7", "utf-16", "utf-16-le",
            "utf-32", "base64", "rot13", "hex", "zlib", "utf\x00", "ascii", "cp1252", "latin-1"]


def percent(data: bytes) -> str:
    return "".join(f"%{b:02X}" for b in data)


def extended_values() -> st.SearchStrategy[str]:
    """filename*=charset'lang'%XX..., well formed or not."""
    encoded = st.lists(st.one_of(st.binary(max_size=8).map(percent), fragments(max_size=3)),
                       max_size=4).map("".join)
    return st.tuples(st.one_of(st.sampled_from(CHARSETS), fragments(max_size=2)),
                     st.sampled_from(["''", "'en'", "'", ""]), encoded).map("".join)


def quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def dispositions() -> st.SearchStrategy[str]:
    key = st.sampled_from(["filename", "filename*", "FileName", "FILENAME*", "name", "x"])
    value = st.one_of(fragments(), fragments().map(quoted), extended_values(),
                      st.builds(lambda t: '"' + t, fragments()))  # unterminated
    param = st.tuples(key, st.sampled_from(["=", " = ", "=="]), value).map("".join)
    return st.one_of(
        st.tuples(st.sampled_from(["attachment", "inline", "", "attachment;"]),
                  st.lists(param, max_size=4)).map(lambda t: "; ".join([t[0], *t[1]])),
        fragments("attachment; ", "filename=", "filename*=", "UTF-8''"),
    )


@FUZZ
@given(name=st.one_of(st.none(), fragments()))
@example(name="\ud800")
@example(name="a\udcff.txt")
def test_sanitize_gives_a_safe_name_or_none(name: str | None, dest: Path) -> None:
    safe = sanitize(name)
    if safe is not None:
        assert_safe_name(safe, dest)


@FUZZ
@given(header=st.one_of(st.none(), dispositions()))
def test_disposition_filename_never_raises(header: str | None) -> None:
    assert disposition_filename(header) is None or isinstance(disposition_filename(header), str)


@FUZZ
@given(url=urls)
@example(url="http://[::1/a.txt")
def test_url_filename_never_raises(url: str) -> None:
    assert url_filename(url) is None or isinstance(url_filename(url), str)


@FUZZ
@given(url=urls, header=st.one_of(st.none(), dispositions()))
@example(url="http://[::1/a.txt", header=None)
@example(url="http://example.org/\udcff", header=None)
@example(url="http://example.org/a", header="attachment; filename*=undefined''%41")
@example(url="http://example.org/a", header="attachment; filename*=utf-7''%2B2AA-")
def test_server_name_is_always_safe(url: str, header: str | None, dest: Path) -> None:
    assert_safe_name(server_name(url, header), dest)


@FUZZ
@given(name=fragments(), limit=st.integers(1, 300))
def test_truncate_fits_its_limit(name: str, limit: int) -> None:
    cut = truncate(name, limit)
    size = len(cut.encode("utf-8", "surrogatepass"))
    assert size <= limit
    if len(name.encode("utf-8", "surrogatepass")) <= limit:
        assert cut == name


@FUZZ
@given(name=fragments(), n=st.integers(1, MAX_NUMBER))
def test_numbered_server_names_still_fit(name: str, n: int, dest: Path) -> None:
    safe = server_name("http://example.org/", f"attachment; filename={quoted(name)}")
    renamed = numbered(safe, n)
    assert renamed != safe and f".{n}" in renamed
    assert len((renamed + PART_SUFFIX).encode("utf-8")) <= 255
    assert_inside(dest, renamed)


# Few segments, so that names collide often.
SEGMENTS = ["a", "b", "a.1", "a.part", "a.part.part", "a.1.part", "index.html", "index.1.html",
            STATE_DIR_NAME, STATE_DIR_NAME + ".part", "x.tar.gz", "x.tar.1.gz"]
# Paths under DEST/.downloader never reach claim(): check_out refuses them.
relatives = st.lists(st.sampled_from(SEGMENTS), min_size=1, max_size=3).map("/".join).filter(
    lambda relative: not relative.startswith(STATE_DIR_NAME + "/"))


@FUZZ
@given(wanted=st.lists(st.one_of(st.sampled_from(SEGMENTS), relatives), max_size=20))
def test_claim_hands_out_distinct_names(wanted: list[str]) -> None:
    names = Names()
    given_out: list[str] = []
    for relative in wanted:
        # A folder of this path that is already another entry's file (or
        # its .part) cannot be renamed away: the one documented ValueError.
        folders = ["/".join(relative.split("/")[:i]) for i in range(1, relative.count("/") + 1)]
        blocked = any(f in given_out or f.removesuffix(PART_SUFFIX) in given_out
                      for f in folders)
        try:
            got = names.claim(relative)
        except ValueError:
            assert blocked, (given_out, relative)
            continue
        assert not blocked, (given_out, relative, got)
        assert got.rpartition("/")[0] == relative.rpartition("/")[0]
        given_out.append(got)
    files = set(given_out)
    assert len(files) == len(given_out)
    assert STATE_DIR_NAME not in files
    for got in given_out:
        assert got + PART_SUFFIX not in files
        for folder in ["/".join(got.split("/")[:i]) for i in range(1, got.count("/") + 1)]:
            # Not a file, nor the .part of one ("a" then "a.part/b").
            assert folder not in files and folder.removesuffix(PART_SUFFIX) not in files


# --- regressions: what the fuzzing found ---------------------------------------

@pytest.mark.parametrize("header", [
    "attachment; filename*=undefined''%41",  # the codec raises plain UnicodeError
    "attachment; filename*=idna''xn--zz%41",  # so does idna
    "attachment; filename*=utf\x00''%41",  # ValueError: embedded null character
])
def test_unusable_filename_charset_falls_back_to_the_url_name(header: str) -> None:
    assert server_name("https://example.org/files/from-url.bin", header) == "from-url.bin"


@pytest.mark.parametrize("url, header", [
    # Codecs that decode to lone surrogates, which no file name can hold.
    ("https://example.org/", "attachment; filename*=utf-7''%2B2AA-.txt"),
    ("https://example.org/", "attachment; filename*=unicode_escape''%5Cud800.txt"),
    # argv keeps undecodable bytes as surrogates (surrogateescape).
    ("https://example.org/\udcff.txt", None),
])
def test_lone_surrogates_in_a_name_are_replaced(url: str, header: str | None) -> None:
    assert server_name(url, header) == "_.txt"


def test_url_with_an_unclosed_ipv6_bracket_still_gets_a_name() -> None:
    assert url_filename("http://[::1/a.txt") is None
    assert server_name("http://[::1/a.txt", None) == "index.html"


@pytest.mark.parametrize("header", [
    "attachment; " + "a" * 65_000,  # one long word: was quadratic, ~40 s
    "attachment; " + " " * 65_000 + "filename=x",
    "attachment; " + '"a' * 32_000,
    "attachment; " + "a=" * 32_000,
])
def test_a_huge_content_disposition_is_parsed_in_linear_time(header: str) -> None:
    started = time.perf_counter()
    disposition_filename(header)
    # Linear is a few milliseconds; quadratic was tens of seconds (and holds the GIL).
    assert time.perf_counter() - started < 2


def test_linear_parsing_keeps_what_the_header_offers() -> None:
    header = 'attachment; x="a;b"; filename="q\\"uote.txt"; filename*=UTF-8\'\'%C3%A9.txt'
    assert disposition_filename(header) == "é.txt"
    assert disposition_filename('attachment;filename="a.txt";size=3') == "a.txt"
    assert disposition_filename("attachment; junk filename=b.txt") == "b.txt"


def test_truncate_to_a_limit_shorter_than_the_extension() -> None:
    assert truncate("\\.\\", 1) == "\\"
    assert truncate("abcdefghij.0123456789", 8) == "abcdefgh"


def test_a_folder_named_after_anothers_part_file_is_refused() -> None:
    # "a" is downloaded to "a.part": that path cannot also be a folder.
    names = Names()
    assert names.claim("a") == "a"
    with pytest.raises(ValueError, match="a.part"):
        names.claim("a.part/b")
    assert names.claim("a.part") == "a.1.part"


@pytest.mark.parametrize("url, reason", [
    ("https://example.org/\udcff", "not valid UTF-8"),  # argv with a \xff byte
    ("https://example.org/\ud800", "not valid UTF-8"),
])
def test_url_with_lone_surrogates_is_a_failed_item(url: str, reason: str) -> None:
    [item] = list(from_library([url]))
    assert item.entry is None and item.error == f"entry 1: URL is {reason}"


@pytest.mark.parametrize("out, reason", [
    ("\ud800", "not valid UTF-8"),  # raised UnicodeEncodeError
    ("a/\udcff.bin", "not valid UTF-8"),  # was accepted: a non-UTF-8 file name
    ("\x80", "control characters"),
    ("a\x9b[31mred", "control characters"),  # CSI: a terminal escape
    ("a/.", "names no file"),  # was taken as the file "a"
    # Server names' 240-byte rule, so that NAME.N.part fits in 255 bytes:
    ("a" * 241, "longer than 240 bytes"),
    ("sub/" + "a" * 255, "longer than 240 bytes"),  # was accepted; NAME.part: ENAMETOOLONG
])
def test_out_that_cannot_be_a_file_name_is_a_failed_item(out: str, reason: str) -> None:
    [item] = list(from_library([{"url": "https://example.org/a", "out": out}]))
    assert item.entry is None and item.error is not None and reason in item.error


def test_out_folders_may_use_all_255_bytes() -> None:
    [item] = list(from_library([{"url": "https://example.org/a", "out": "d" * 255 + "/" + "f" * 240}]))
    assert item.error is None


def test_unknown_mapping_keys_of_mixed_types_are_named_not_raised() -> None:
    [item] = list(from_library([{"url": "https://example.org/a", "name": "x", 1: None, b"out": None}]))
    assert item.entry is None and item.error is not None
    assert "'name'" in item.error and "1" in item.error and "b'out'" in item.error
