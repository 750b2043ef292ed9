"""Request logic through ``download_all``, against scripted ``responses`` replies.

``responses`` patches ``HTTPAdapter.send``; the package mounts a subclass of
``HTTPAdapter``, so every request is intercepted and nothing leaves the process.
``OrderedRegistry`` makes the replies for one URL come in the order registered.
"""
from __future__ import annotations

import gzip
import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import responses
from responses.registries import OrderedRegistry

import downloader
from downloader import download_all

BASE = "http://files.test"
FAST = {"retry_wait": 0.01, "timeout": 5}


@pytest.fixture
def mock() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(registry=OrderedRegistry, assert_all_requests_are_fired=True) as rsps:
        yield rsps


def leftovers(dest: Path) -> list[Path]:
    """Files in DEST outside its state folder."""
    return sorted(p for p in dest.rglob("*") if p.is_file() and ".downloader" not in p.parts)


def test_503_twice_then_200_succeeds_on_the_third_attempt(mock: responses.RequestsMock,
                                                          tmp_path: Path) -> None:
    url = f"{BASE}/data.bin"
    mock.get(url, status=503)
    mock.get(url, status=503)
    mock.get(url, body=b"payload")

    summary = download_all([url], tmp_path / "dl", **FAST)

    [result] = summary.results
    assert result.status == "downloaded", result.error
    assert result.attempts == 3
    assert result.http_status == 200
    assert result.path == (tmp_path / "dl" / "data.bin").resolve()
    assert result.path.read_bytes() == b"payload"
    assert len(mock.calls) == 3


@pytest.mark.parametrize("status", [400, 401, 403, 404, 410])
def test_other_4xx_fails_at_once(mock: responses.RequestsMock, tmp_path: Path,
                                 status: int) -> None:
    url = f"{BASE}/missing.bin"
    mock.get(url, status=status)

    summary = download_all([url], tmp_path / "dl", **FAST)

    [result] = summary.results
    assert result.status == "failed"
    assert not summary.ok
    assert result.attempts == 1
    assert result.http_status == status
    assert str(status) in result.error
    assert len(mock.calls) == 1
    assert leftovers(tmp_path / "dl") == []


def test_429_with_retry_after_zero_then_200(mock: responses.RequestsMock, tmp_path: Path) -> None:
    url = f"{BASE}/busy.bin"
    mock.get(url, status=429, headers={"Retry-After": "0"})
    mock.get(url, body=b"eventually")

    summary = download_all([url], tmp_path / "dl", **FAST)

    [result] = summary.results
    assert result.status == "downloaded", result.error
    assert result.attempts == 2
    assert result.path.read_bytes() == b"eventually"


@pytest.mark.parametrize("statuses", [
    [503, 503, 503],
    [500, 502, 504],
    [503, 429, 408],
])
def test_retries_exhausted_fails_with_the_last_reason(mock: responses.RequestsMock,
                                                      tmp_path: Path,
                                                      statuses: list[int]) -> None:
    url = f"{BASE}/flaky.bin"
    for status in statuses:
        mock.get(url, status=status, headers={"Retry-After": "0"} if status == 429 else None)

    summary = download_all([url], tmp_path / "dl", retries=len(statuses) - 1, **FAST)

    [result] = summary.results
    assert result.status == "failed"
    assert result.attempts == len(statuses)
    assert result.http_status == statuses[-1]
    assert str(statuses[-1]) in result.error
    assert len(mock.calls) == len(statuses)
    assert leftovers(tmp_path / "dl") == []


def test_retries_zero_means_one_attempt(mock: responses.RequestsMock, tmp_path: Path) -> None:
    url = f"{BASE}/once.bin"
    mock.get(url, status=503)

    [result] = download_all([url], tmp_path / "dl", retries=0, **FAST)

    assert result.status == "failed"
    assert result.attempts == 1
    assert "503" in result.error


def test_default_request_headers(mock: responses.RequestsMock, tmp_path: Path) -> None:
    url = f"{BASE}/a.txt"
    mock.get(url, body=b"a")

    download_all([url], tmp_path / "dl", **FAST)

    sent = mock.calls[0].request.headers
    assert sent["Accept-Encoding"] == "identity"
    assert sent["User-Agent"] == f"downloader/{downloader.__version__}"


def test_custom_user_agent(mock: responses.RequestsMock, tmp_path: Path) -> None:
    url = f"{BASE}/a.txt"
    mock.get(url, body=b"a")

    download_all([url], tmp_path / "dl", user_agent="probe/9", **FAST)

    assert mock.calls[0].request.headers["User-Agent"] == "probe/9"


@pytest.mark.parametrize("headers", [
    {"X-Token": "abc 123", "Accept-Language": "fr"},
    ["X-Token: abc 123", "Accept-Language: fr"],
    ("X-Token:abc 123", "Accept-Language:   fr"),
], ids=["mapping", "strings", "strings-odd-spacing"])
def test_custom_headers_are_sent(mock: responses.RequestsMock, tmp_path: Path,
                                 headers: object) -> None:
    url = f"{BASE}/a.txt"
    mock.get(url, body=b"a")

    download_all([url], tmp_path / "dl", headers=headers, **FAST)

    sent = mock.calls[0].request.headers
    assert sent["X-Token"] == "abc 123"
    assert sent["Accept-Language"] == "fr"
    # Custom headers add to the defaults, they do not replace them.
    assert sent["Accept-Encoding"] == "identity"


@pytest.mark.parametrize("disposition, expected", [
    ('attachment; filename="report.csv"', "report.csv"),
    ("attachment; filename=plain.txt", "plain.txt"),
    ("attachment; filename*=UTF-8''na%C3%AFve%20file.txt", "naïve file.txt"),
    ("attachment; filename=\"fallback.txt\"; filename*=UTF-8''pr%C3%A9f%C3%A9r%C3%A9.txt",
     "préféré.txt"),
    ('attachment; filename="../../etc/evil.sh"', "evil.sh"),
    ("attachment", "download.bin"),
], ids=["quoted", "token", "rfc5987", "filename-star-wins", "traversal", "no-filename"])
def test_content_disposition_names_the_file(mock: responses.RequestsMock, tmp_path: Path,
                                            disposition: str, expected: str) -> None:
    url = f"{BASE}/get/download.bin?id=7"
    mock.get(url, body=b"named", headers={"Content-Disposition": disposition})
    dest = tmp_path / "dl"

    [result] = download_all([url], dest, **FAST)

    assert result.status == "downloaded", result.error
    assert result.path == (dest / expected).resolve()
    assert result.path.read_bytes() == b"named"
    assert leftovers(dest) == [(dest / expected)]


def test_url_name_is_percent_decoded_without_query(mock: responses.RequestsMock,
                                                   tmp_path: Path) -> None:
    url = f"{BASE}/files/my%20report.pdf?token=xyz"
    mock.get(url, body=b"pdf")

    [result] = download_all([url], tmp_path / "dl", **FAST)

    assert result.path == (tmp_path / "dl" / "my report.pdf").resolve()


def test_sha256_mismatch_fails_and_leaves_nothing(mock: responses.RequestsMock,
                                                  tmp_path: Path) -> None:
    url = f"{BASE}/checked.bin"
    body = b"the real bytes"
    wrong = hashlib.sha256(b"something else").hexdigest()
    mock.get(url, body=body)
    dest = tmp_path / "dl"

    [result] = download_all([{"url": url, "sha256": wrong}], dest, retries=0, **FAST)

    assert result.status == "failed"
    assert "sha256" in result.error.lower()
    assert not (dest / "checked.bin").exists()
    assert not (dest / "checked.bin.part").exists()
    assert leftovers(dest) == []


def test_sha256_match_keeps_the_file(mock: responses.RequestsMock, tmp_path: Path) -> None:
    url = f"{BASE}/checked.bin"
    body = b"the real bytes"
    mock.get(url, body=body)

    [result] = download_all([{"url": url, "sha256": hashlib.sha256(body).hexdigest().upper()}],
                            tmp_path / "dl", **FAST)

    assert result.status == "downloaded", result.error
    assert result.path.read_bytes() == body


def test_max_size_refuses_a_larger_content_length(mock: responses.RequestsMock,
                                                  tmp_path: Path) -> None:
    url = f"{BASE}/huge.iso"
    body = bytes(4096)
    mock.get(url, body=body, headers={"Content-Length": str(len(body))})
    dest = tmp_path / "dl"

    [result] = download_all([url], dest, max_size=1024, **FAST)

    assert result.status == "failed"
    assert result.attempts == 1  # a size refusal is final, not retried
    assert "size" in result.error.lower()
    assert leftovers(dest) == []


@pytest.mark.parametrize("max_size", [4096, "4K", "1M"])
def test_max_size_allows_a_file_within_it(mock: responses.RequestsMock, tmp_path: Path,
                                          max_size: int | str) -> None:
    url = f"{BASE}/small.bin"
    body = bytes(range(256)) * 16  # 4096 bytes
    mock.get(url, body=body, headers={"Content-Length": str(len(body))})

    [result] = download_all([url], tmp_path / "dl", max_size=max_size, **FAST)

    assert result.status == "downloaded", result.error
    assert result.path.read_bytes() == body


def test_gzip_content_encoding_is_stored_as_sent(mock: responses.RequestsMock,
                                                 tmp_path: Path) -> None:
    url = f"{BASE}/table.csv"
    plain = b"id,value\n" + b"".join(b"%d,%d\n" % (i, i * i) for i in range(500))
    wire = gzip.compress(plain, mtime=0)
    mock.get(url, body=wire, headers={"Content-Encoding": "gzip",
                                      "Content-Length": str(len(wire))})

    [result] = download_all([url], tmp_path / "dl", **FAST)

    assert result.status == "downloaded", result.error
    assert result.path.read_bytes() == wire
    assert result.bytes == len(wire)
    assert mock.calls[0].request.headers["Accept-Encoding"] == "identity"


def test_connection_error_is_retried(mock: responses.RequestsMock, tmp_path: Path) -> None:
    url = f"{BASE}/shaky.bin"
    mock.get(url, body=requests.ConnectionError("connection reset by peer"))
    mock.get(url, body=b"second time lucky")

    [result] = download_all([url], tmp_path / "dl", **FAST)

    assert result.status == "downloaded", result.error
    assert result.attempts == 2
    assert result.path.read_bytes() == b"second time lucky"
