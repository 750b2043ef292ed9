"""Dataset lists: ``-i FILE.csv|.tsv|.jsonl`` with ``--url-column`` and
``--out-column``. The reader is tested on text; the command end to end
against the loopback server."""
from __future__ import annotations

import io
import json

import pytest

from downloader.datasets import ColumnError, Columns, dataset_format, read_dataset
from downloader.entries import Entry, Item
from httpserver import make_body
from test_cli import assert_usage_error, files_under

A = "https://example.org/a.jpg"
B = "https://example.org/b.jpg"


def read(text: str, name: str = "data.csv", url: str = "url",
         out: str | None = None) -> list[Item]:
    kind = dataset_format(name)
    assert kind is not None
    # As the command opens it: newline="" leaves line ends to csv.
    return list(read_dataset(io.StringIO(text, newline=""), name, kind, Columns(url, out)))


def entries(items: list[Item]) -> list[tuple[str, Entry | None, str | None]]:
    return [(item.where, item.entry, item.error) for item in items]


# -- which files are datasets ----------------------------------------------------

@pytest.mark.parametrize("name, kind", [
    ("data.csv", "csv"), ("DATA.CSV", "csv"), ("dir.v2/images.tsv", "tsv"),
    ("shard-0001.jsonl", "jsonl"), ("x.ndjson", "jsonl"),
    ("urls.txt", None), ("urls", None), ("csv", None), ("-", None),
])
def test_the_extension_says_whether_a_list_is_a_dataset(name, kind):
    assert dataset_format(name) == kind


# -- CSV ------------------------------------------------------------------------

def test_csv_rows_become_entries_named_by_their_line():
    items = read("id,url,caption,file\n"
                 f"1,{A},a cat,cats/a.jpg\n"
                 f"2,{B},a dog,\n", out="file")

    assert entries(items) == [
        ("data.csv:2", Entry(A, "cats/a.jpg"), None),
        ("data.csv:3", Entry(B), None),  # an empty cell: the name comes from the server
    ]


def test_a_row_is_named_by_the_line_it_starts_on_when_a_field_spans_lines():
    items = read("url,caption\n"
                 f'{A},"two\nlines"\n'
                 "\n"
                 f"ftp://example.org/c.jpg,one line\n"
                 f'"{B}","three\r\nmore\r\nlines"\n'
                 "not-a-url,x\n")

    assert [(item.where, item.entry is not None) for item in items] == [
        ("data.csv:2", True), ("data.csv:5", False), ("data.csv:6", True), ("data.csv:9", False)]
    assert items[1].error == "data.csv:5: unsupported scheme 'ftp' (only http and https)"
    assert items[3].error is not None and items[3].error.startswith("data.csv:9: not a URL")


@pytest.mark.parametrize("row, problem", [
    (",x", "empty URL"),
    (" , x", "empty URL"),
    ("file:///etc/passwd,x", "unsupported scheme 'file' (only http and https)"),
    (f"{A},../up.jpg", "out=../up.jpg leaves DEST"),
])
def test_a_bad_row_fails_alone_by_its_line(row, problem):
    items = read(f"url,file\n{A},a.jpg\n{row}\n{B},b.jpg\n", out="file")

    assert entries(items) == [
        ("data.csv:2", Entry(A, "a.jpg"), None),
        ("data.csv:3", None, f"data.csv:3: {problem}"),
        ("data.csv:4", Entry(B, "b.jpg"), None),
    ]


def test_a_row_too_short_to_reach_the_url_column_fails_by_its_line():
    items = read(f"id,url\n1,{A}\n2\n")
    assert entries(items) == [
        ("data.csv:2", Entry(A), None),
        ("data.csv:3", None, "data.csv:3: no 'url' value (the row has 1 field)"),
    ]


def test_a_row_the_csv_reader_cannot_read_fails_and_the_next_is_read():
    huge = "x" * 200_000  # past csv's field size limit
    items = read(f"url,caption\n{A},{huge}\n{B},fine\n")

    assert items[0].where == "data.csv:2" and items[0].entry is None
    assert "cannot read the row" in items[0].error
    assert entries(items[1:]) == [("data.csv:3", Entry(B), None)]


def test_cells_and_header_names_are_trimmed_and_blank_rows_skipped():
    items = read(" url , file \n\n , \n" f" {A} , a.jpg \n", out="file")
    assert entries(items) == [("data.csv:4", Entry(A, "a.jpg"), None)]


@pytest.mark.parametrize("columns, option, missing", [
    (("link", None), "--url-column", "link"),
    (("url", "path"), "--out-column", "path"),
])
def test_a_column_the_header_lacks_is_a_column_error(columns, option, missing):
    with pytest.raises(ColumnError) as caught:
        read(f"url,caption\n{A},x\n", url=columns[0], out=columns[1])

    assert caught.value.option == option
    assert str(caught.value) == (f"data.csv has no column {missing!r} "
                                 "(its columns: 'url', 'caption')")


def test_an_empty_file_has_no_entries():
    assert read("") == [] and read("url\n") == []


# -- TSV --------------------------------------------------------------------------

def test_tsv_quotes_are_text_and_never_swallow_the_next_rows():
    items = read(f'url\tcaption\n{A}\t"a quote that never ends\n{B}\tb\n', name="images.tsv")
    assert entries(items) == [("images.tsv:2", Entry(A), None), ("images.tsv:3", Entry(B), None)]


# -- JSON Lines ---------------------------------------------------------------------

def test_json_lines_records_become_entries_and_bad_lines_fail_alone():
    lines = [
        json.dumps({"url": A, "key": "000001", "path": "shard/000001.jpg"}),
        "",
        "{not json",
        json.dumps([A]),
        json.dumps({"url": 7}),
        json.dumps({"caption": "no url"}),
        json.dumps({"url": B, "path": None}),
        json.dumps({"url": B, "path": 3}),
    ]
    items = read("\n".join(lines) + "\n", name="d.jsonl", out="path")

    assert entries(items) == [
        ("d.jsonl:1", Entry(A, "shard/000001.jpg"), None),
        ("d.jsonl:3", None, "d.jsonl:3: not valid JSON: Expecting property name enclosed "
                            "in double quotes (column 2)"),
        ("d.jsonl:4", None, "d.jsonl:4: not a JSON object"),
        ("d.jsonl:5", None, "d.jsonl:5: 'url' is not a string"),
        ("d.jsonl:6", None, "d.jsonl:6: no 'url' value"),
        ("d.jsonl:7", Entry(B), None),
        ("d.jsonl:8", None, "d.jsonl:8: 'path' is not a string"),
    ]


def test_json_nested_too_deeply_is_a_bad_line_not_a_crash():
    items = read("[" * 100_000 + "\n" + json.dumps({"url": A}) + "\n", name="d.jsonl")
    assert entries(items) == [("d.jsonl:1", None, "d.jsonl:1: not valid JSON: nested too deeply"),
                              ("d.jsonl:2", Entry(A), None)]


@pytest.mark.parametrize("url, out, option", [("link", None, "--url-column"),
                                              ("url", "file", "--out-column")])
def test_a_key_no_json_record_has_is_a_column_error(url, out, option):
    text = json.dumps({"url": A, "path": "a.jpg"}) + "\n" + json.dumps({"url": B}) + "\n"
    with pytest.raises(ColumnError) as caught:
        read(text, name="d.jsonl", url=url, out=out)
    assert caught.value.option == option
    assert str(caught.value) == f"no record of d.jsonl has the key {url if out is None else out!r}"


# -- the command ---------------------------------------------------------------------

def test_csv_from_a_spreadsheet_downloads_each_row_to_its_out_column(cli, server, tmp_path):
    bodies = {"/a.jpg": make_body(3000, 1), "/b.jpg": make_body(2000, 2)}
    urls = [server.add(path, body) for path, body in bodies.items()]
    # Excel writes a byte-order mark and CRLF line ends.
    (tmp_path / "data.csv").write_bytes(
        "\ufeffurl,label,file\r\n"
        f"{urls[0]},cat,cats/a.jpg\r\n"
        f'{urls[1]},"dog, brown",\r\n'.encode("utf-8"))

    proc = cli("-i", "data.csv", "--out-column", "file", "-d", "out")

    assert proc.returncode == 0, proc.stderr
    assert files_under(tmp_path / "out") == {"cats/a.jpg": bodies["/a.jpg"],
                                             "b.jpg": bodies["/b.jpg"]}


def test_tsv_and_jsonl_lists_with_a_url_column_and_a_plain_list_together(cli, server, tmp_path):
    bodies = {f"/f{n}.bin": make_body(500 + n, n) for n in range(3)}
    urls = [server.add(path, body) for path, body in bodies.items()]
    (tmp_path / "a.tsv").write_text(f"link\tout\n{urls[0]}\tt/zero.bin\n")
    (tmp_path / "b.jsonl").write_text(json.dumps({"link": urls[1], "out": "j/one.bin"}) + "\n")
    (tmp_path / "c.txt").write_text(f"{urls[2]} out=two.bin\n")

    proc = cli("-i", "a.tsv", "-i", "b.jsonl", "-i", "c.txt", "--url-column", "link",
               "--out-column", "out", "-d", "out")

    assert proc.returncode == 0, proc.stderr
    assert files_under(tmp_path / "out") == {"t/zero.bin": bodies["/f0.bin"],
                                             "j/one.bin": bodies["/f1.bin"],
                                             "two.bin": bodies["/f2.bin"]}


def test_a_bad_row_exits_1_naming_file_and_line_and_the_rest_download(cli, server, tmp_path):
    good = server.add("/good.jpg", b"good")
    (tmp_path / "data.csv").write_text(f'url,caption\n{good},"a\nb"\nftp://x/y.jpg,c\n')

    proc = cli("-i", "data.csv", "-d", "out", "--report", "report.json")

    assert proc.returncode == 1, proc.stderr
    assert "data.csv:4: unsupported scheme 'ftp'" in proc.stderr
    assert files_under(tmp_path / "out") == {"good.jpg": b"good"}
    report = json.loads((tmp_path / "report.json").read_text())
    assert [r["status"] for r in report["results"]] == ["downloaded", "failed"]


def test_a_missing_column_is_a_usage_error_naming_file_and_column(cli, server, tmp_path):
    url = server.add("/a.jpg", b"a")
    (tmp_path / "data.csv").write_text(f"link,caption\n{url},x\n")

    line = assert_usage_error(cli("-i", "data.csv", "-d", "out"))

    assert line == ("downloader: error: --url-column: data.csv has no column 'url' "
                    "(its columns: 'link', 'caption')")
    assert server.requests == [] and not (tmp_path / "out").exists()


@pytest.mark.parametrize("args, message", [
    (["-i", "urls.txt", "--url-column", "link"],
     "--url-column applies only to -i FILE.csv, .tsv or .jsonl"),
    (["-i", "-", "--out-column", "file"],
     "--out-column applies only to -i FILE.csv, .tsv or .jsonl"),
    (["-i", "data.csv", "--url-column", " "], "--url-column must name a column, got ' '"),
])
def test_column_options_that_cannot_apply_are_usage_errors(cli, tmp_path, args, message):
    (tmp_path / "urls.txt").write_text("http://127.0.0.1:9/a\n")
    (tmp_path / "data.csv").write_text("url\nhttp://127.0.0.1:9/a\n")

    line = assert_usage_error(cli(*args, "-d", "out", input=""))

    assert line == f"downloader: error: {message}"
