"""Replies that are not valid HTTP, and headers no sane server sends.

A raw-socket server (tests/rawserver.py) writes canned bytes. Every test
checks the Result a user sees (status, the error's wording, attempts) and
that a failure leaves nothing in DEST: no file, no ``.part``.

What is retried: a reply that is not HTTP (bad status line, too many or
too long header lines, conflicting lengths, bad chunk framing, a
redirect that cannot be followed) is not. A server that sent garbage once
sends it again, and TCP does not garble bytes, so a retry would only add
the backoff to the same failure. A connection that ends early (no reply at
all, a body cut at a chunk boundary) still is: that is the network, not
the server's grammar.
"""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from httpserver import make_body
from helpers import fetch, only
from rawserver import RawServer, reply

BODY = make_body(5_000, seed=21)
LENGTH = str(len(BODY))


@pytest.fixture
def raw() -> Iterator[RawServer]:
    srv = RawServer().start()
    try:
        yield srv
    finally:
        srv.stop()


def litter(dest: Path) -> list[str]:
    """Files in DEST outside its state folder."""
    return sorted(p.name for p in dest.iterdir() if p.name != ".downloader")


def ok(*headers: tuple[str, str], body: bytes = BODY) -> bytes:
    return reply("HTTP/1.1 200 OK", list(headers), body)


def assert_failed_once(result, raw: RawServer, dest: Path, error: str) -> None:
    """Failed at the first attempt with ``error``, nothing retried, nothing left."""
    assert (result.status, result.error, result.attempts) == ("failed", error, 1)
    assert raw.hits("/f.bin") == 1
    assert litter(dest) == []


# -- a head that is not HTTP ---------------------------------------------------

NOT_HTTP = [
    pytest.param(reply("HTTP/1.1 200 OK", [(f"X-Filler-{i}", "v") for i in range(150)]
                       + [("Content-Length", LENGTH)], BODY),
                 "invalid HTTP response: more than 100 header lines", id="150-headers"),
    pytest.param(reply("HTTP/1.1 abc", [("Content-Length", LENGTH)], BODY),
                 "invalid HTTP response: bad status line", id="status-not-a-number"),
    pytest.param(b"\x1b]0;pwned\x07\x00garbage\r\n\r\n",
                 "invalid HTTP response: bad status line", id="binary-garbage"),
    pytest.param(b"hello world", "invalid HTTP response: bad status line", id="http-0.9"),
    pytest.param(reply("HTTP/2.0 200 OK", [("Content-Length", LENGTH)], BODY),
                 "invalid HTTP response: unsupported HTTP version", id="http-2.0"),
    pytest.param(reply("HTTP/1.1 200 " + "O" * 70_000, [("Content-Length", LENGTH)], BODY),
                 "invalid HTTP response: status line too long", id="long-status-line"),
    pytest.param(reply("HTTP/1.1 200 OK", [("X-Long", "a" * 70_000), ("Content-Length", LENGTH)],
                       BODY),
                 "invalid HTTP response: header line too long", id="long-header-line"),
    # urllib3 refuses the reply before the downloader sees a length.
    pytest.param(reply("HTTP/1.1 200 OK", [("Content-Length", LENGTH), ("Content-Length", "999")],
                       BODY),
                 "invalid HTTP response: conflicting Content-Length values",
                 id="two-content-lengths"),
    pytest.param(reply("HTTP/1.1 200 OK", [("Content-Length", f"{LENGTH}, 999")], BODY),
                 "invalid HTTP response: conflicting Content-Length values",
                 id="content-length-list"),
]


@pytest.mark.parametrize("data, error", NOT_HTTP)
def test_a_reply_that_is_not_http_fails_at_once(raw, tmp_path, data, error):
    """Garbage in the head: not retried (see the module docstring)."""
    url = raw.add("/f.bin", data)
    result = only(fetch([url], tmp_path / "dl", retries=2))

    assert_failed_once(result, raw, tmp_path / "dl", error)


def test_no_reply_at_all_is_still_retried(raw, tmp_path):
    """A connection closed before any byte is a network failure, not garbage."""
    url = raw.add("/f.bin", b"", ok(("Content-Length", LENGTH)))
    result = only(fetch([url], tmp_path / "dl", retries=2))

    assert (result.status, result.attempts) == ("downloaded", 2)
    assert (tmp_path / "dl" / "f.bin").read_bytes() == BODY


def test_garbage_never_reaches_the_terminal(raw, tmp_path, cli):
    """The server's bytes are not echoed: no escape sequence, no NUL, on
    stderr or in the report."""
    url = raw.add("/f.bin", b"\x1b]0;pwned\x07\x00\x9b31mgarbage\r\n\r\n")
    proc = cli(url, "-d", "dl", "--retries", "0", "--report", "-")

    assert proc.returncode == 1
    assert "invalid HTTP response: bad status line" in proc.stderr
    for text in (proc.stderr, proc.stdout):
        assert "pwned" not in text and "garbage" not in text
        assert not any(ch in text for ch in "\x00\x07\x1b\x9b")
    assert "internal error" not in proc.stderr


# -- redirects that cannot be followed ---------------------------------------

def redirect(location: str) -> bytes:
    return reply("HTTP/1.1 302 Found", [("Location", location), ("Content-Length", "0")])


@pytest.mark.parametrize("location, error", [
    pytest.param("http://[::1", "invalid HTTP response: bad redirect location", id="broken-ipv6"),
    pytest.param("http://127.0.0.1:notaport/x", "invalid HTTP response: bad redirect location",
                 id="bad-port"),
    pytest.param("https:///no-host", "invalid HTTP response: bad redirect location", id="no-host"),
    pytest.param("file:///etc/passwd", "redirect to an unsupported scheme (file)", id="file"),
    pytest.param("ftp://127.0.0.1/f.bin", "redirect to an unsupported scheme (ftp)", id="ftp"),
])
def test_a_redirect_that_cannot_be_followed_fails_at_once(raw, tmp_path, location, error):
    """The server said where to go, and will say it again: no retry. No
    "internal error" either: the attempt is counted like any other."""
    url = raw.add("/f.bin", redirect(location))
    result = only(fetch([url], tmp_path / "dl", retries=2))

    assert_failed_once(result, raw, tmp_path / "dl", error)


@pytest.mark.parametrize("location", ["/final.bin", "final.bin", "//127.0.0.1:{port}/final.bin"])
def test_relative_redirects_are_still_followed(raw, tmp_path, location):
    url = raw.add("/f.bin", redirect(location.format(port=raw.port)))
    raw.add("/final.bin", ok(("Content-Length", LENGTH)))
    result = only(fetch([url], tmp_path / "dl", retries=0))

    assert (result.status, result.attempts) == ("downloaded", 1), result.error
    assert (tmp_path / "dl" / "f.bin").read_bytes() == BODY  # named after the URL given
    assert raw.hits("/final.bin") == 1


# -- Retry-After that is neither seconds nor a date ----------------------------

def unavailable(raw_retry_after: bytes) -> bytes:
    return reply("HTTP/1.1 503 Service Unavailable", [("Content-Length", "0")],
                 raw_head=b"Retry-After: " + raw_retry_after + b"\r\n")


@pytest.mark.parametrize("value", [b"\xb2", b"\xb9\xb3", b"soon", b"1.5", b"-1"])
def test_a_bad_retry_after_is_treated_as_absent(raw, tmp_path, value):
    """Latin-1 0xB2 is "²", which str.isdigit() calls a digit: the header
    counts as absent, and the 503 is retried after the normal backoff."""
    url = raw.add("/f.bin", unavailable(value), ok(("Content-Length", LENGTH)))
    result = only(fetch([url], tmp_path / "dl", retries=1))

    assert (result.status, result.attempts) == ("downloaded", 2)
    assert result.elapsed < 30  # not a Retry-After cap of minutes
    assert (tmp_path / "dl" / "f.bin").read_bytes() == BODY


def test_a_bad_retry_after_on_the_last_attempt_fails_as_a_503(raw, tmp_path):
    url = raw.add("/f.bin", unavailable(b"\xb2"))
    result = only(fetch([url], tmp_path / "dl", retries=0))

    assert (result.status, result.attempts, result.http_status) == ("failed", 1, 503)
    assert result.error == "HTTP 503 Service Unavailable"
    assert litter(tmp_path / "dl") == []


# -- bad chunk framing ---------------------------------------------------------

def chunked(body: bytes) -> bytes:
    return reply("HTTP/1.1 200 OK", [("Transfer-Encoding", "chunked")], body)


@pytest.mark.parametrize("body", [
    pytest.param(b"zz\r\nabc\r\n0\r\n\r\n", id="first-chunk"),
    pytest.param(b"3\r\nabc\r\nzz\r\nabc\r\n0\r\n\r\n", id="second-chunk"),
    pytest.param(b"\r\n3\r\nabc\r\n0\r\n\r\n", id="empty-size-line"),
])
def test_a_bad_chunk_size_fails_at_once_and_leaves_no_part(raw, tmp_path, body):
    """Framing garbage is not retried, and the .part of a body whose framing
    broke is not worth resuming: nothing is left."""
    url = raw.add("/f.bin", chunked(body))
    result = only(fetch([url], tmp_path / "dl", retries=2))

    assert_failed_once(result, raw, tmp_path / "dl", "invalid HTTP response: bad chunk size")


def test_a_chunked_body_cut_at_a_chunk_boundary_is_retried(raw, tmp_path):
    """Where a chunk size should be, the connection ended: that is a lost
    connection, and must stay retryable when bad chunk sizes are not."""
    url = raw.add("/f.bin", chunked(b"3\r\nabc\r\n"), chunked(b"3\r\nabc\r\n0\r\n\r\n"))
    result = only(fetch([url], tmp_path / "dl", retries=2))

    assert (result.status, result.attempts) == ("downloaded", 2)
    assert (tmp_path / "dl" / "f.bin").read_bytes() == b"abc"


# -- Content-Length that cannot be trusted ------------------------------------

@pytest.mark.parametrize("headers", [
    pytest.param([("Content-Length", "abc")], id="non-numeric"),
    pytest.param([("Content-Length", "\u00b2")], id="latin-1-superscript"),
    pytest.param([("Content-Length", f"{LENGTH}, {LENGTH}")], id="equal-list"),
    pytest.param([("Content-Length", LENGTH), ("Content-Length", LENGTH)], id="equal-twice"),
    pytest.param([("Content-Length", "-5")], id="negative"),
    pytest.param([("Content-Length", str(10**30))], id="absurd"),
])
def test_an_untrusted_length_is_unknown_and_the_body_ends_with_the_connection(raw, tmp_path,
                                                                             headers):
    url = raw.add("/f.bin", ok(*headers))
    result = only(fetch([url], tmp_path / "dl", retries=2))

    assert (result.status, result.attempts) == ("downloaded", 1), result.error
    assert (tmp_path / "dl" / "f.bin").read_bytes() == BODY
    assert litter(tmp_path / "dl") == ["f.bin"]


def test_content_length_beside_chunked_is_ignored(raw, tmp_path):
    """RFC 9112 s6.3, and what urllib3 and http.client do: the chunks decide."""
    url = raw.add("/f.bin", reply("HTTP/1.1 200 OK",
                                  [("Content-Length", "10"), ("Transfer-Encoding", "chunked")],
                                  b"3\r\nabc\r\n0\r\n\r\n"))
    result = only(fetch([url], tmp_path / "dl", retries=2))

    assert (result.status, result.attempts) == ("downloaded", 1), result.error
    assert (tmp_path / "dl" / "f.bin").read_bytes() == b"abc"


def test_a_content_range_of_thousands_of_digits_is_a_bad_reply(raw, tmp_path):
    url = raw.add("/f.bin", reply("HTTP/1.1 206 Partial Content",
                                  [("Content-Length", LENGTH),
                                   ("Content-Range", "bytes " + "1" * 5000 + "-2/3")], BODY))
    result = only(fetch([url], tmp_path / "dl", retries=2))

    assert_failed_once(result, raw, tmp_path / "dl", "invalid HTTP response: bad Content-Range")



def test_a_length_only_http_client_reads_still_shows_a_cut(server, tmp_path):
    """``Content-Length: +N`` is not ours to trust, but http.client frames
    the body by it: a body cut short must not land as complete."""
    body = make_body(200_000, seed=3)
    url = server.add("/plus.bin", body, drop_after=50_000,
                     headers={"Content-Length": f"+{len(body)}"})
    result = only(fetch([url], tmp_path / "dl", retries=1))

    assert result.status == "downloaded" and result.attempts == 2, result.error
    assert (tmp_path / "dl" / "plus.bin").read_bytes() == body
