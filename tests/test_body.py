"""Reading bodies into a reused buffer (downloader/body.py), against a real
server.

Every test runs twice: with what ``body_reader`` picks (the file urllib3
reads from, for every urllib3), and with urllib3's own reads, the fallback
for a response without that file. .ci/run runs them on the oldest urllib3
and the newest.
"""
from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
import urllib3

from downloader import body, download_all
import rawserver
from httpserver import FaultServer, make_body
from rawserver import RawServer

Reader = Callable[[Any], body.BodyReader]

READERS = [pytest.param(body.body_reader, id="direct"),
           pytest.param(body._Copying, id="urllib3-reads")]
FRAMINGS = [pytest.param({}, id="content-length"),
            pytest.param({"chunked": True}, id="chunked"),
            pytest.param({"no_length": True}, id="no-length")]
SIZE = 4096
HELD_AFTER = 1000
BODY = make_body(100_000, seed=7)


def reading(reader: body.BodyReader) -> Callable[[int], bytes]:
    """``read(size)``: one ``readinto`` of a fresh buffer of ``size``."""
    def read(size: int) -> bytes:
        buffer = memoryview(bytearray(size))
        return bytes(buffer[:reader.readinto(buffer)])
    return read


def drain(reader: body.BodyReader, size: int = SIZE) -> list[bytes]:
    """The body, read into one reused buffer, as the pieces each read gave."""
    buffer = memoryview(bytearray(size))
    return list(iter(lambda: bytes(buffer[:reader.readinto(buffer)]), b""))


def get(session: requests.Session, url: str, read_timeout: float = 10.0) -> requests.Response:
    return session.get(url, stream=True, timeout=(10.0, read_timeout))


class HoldingServer:
    """The test server, with every body held after HELD_AFTER bytes until
    ``gate`` is set."""

    def __init__(self, server: FaultServer) -> None:
        self.server = server
        self.gate = threading.Event()

    def add(self, path: str, body: bytes, **options: Any) -> str:
        return self.server.add(path, body, gate=self.gate, gate_after=HELD_AFTER, **options)


@pytest.fixture
def raw() -> Iterator[RawServer]:
    with RawServer().start() as srv:
        yield srv


@pytest.fixture
def holding(server: FaultServer) -> Iterator[HoldingServer]:
    held = HoldingServer(server)
    try:
        yield held
    finally:
        held.gate.set()


@pytest.mark.parametrize("reader", READERS)
@pytest.mark.parametrize("framing", FRAMINGS)
def test_whole_body_in_full_buffers(server: FaultServer, reader: Reader,
                                    framing: dict[str, bool]) -> None:
    url = server.add("/f.bin", BODY, **framing)
    with requests.Session() as session:
        response = get(session, url)
        pieces = drain(reader(response.raw))
        response.close()

    assert b"".join(pieces) == BODY
    # Every read fills its buffer (the server writes 64 KiB at a time) but
    # the last.
    assert {len(piece) for piece in pieces[:-1]} == {SIZE}
    assert 0 < len(pieces[-1]) <= SIZE


@pytest.mark.parametrize("reader", READERS)
def test_chunks_of_one_byte_fill_the_buffer(raw: RawServer, reader: Reader) -> None:
    data = make_body(3000, seed=3)
    # With a chunk extension and trailers, which http.client skips.
    chunks = b"".join(b"1;ext=x\r\n%s\r\n" % data[n:n + 1] for n in range(len(data)))
    url = raw.add("/f.bin", rawserver.reply(
        "HTTP/1.1 200 OK", [("Transfer-Encoding", "chunked")],
        chunks + b"0\r\nX-Trailer: 1\r\n\r\n"))
    with requests.Session() as session:
        response = get(session, url)
        pieces = drain(reader(response.raw), 1024)
        response.close()

    assert [len(piece) for piece in pieces] == [1024, 1024, 952]
    assert b"".join(pieces) == data


@pytest.mark.parametrize("reader", READERS)
def test_a_body_shorter_than_its_length_is_an_error(raw: RawServer, reader: Reader) -> None:
    url = raw.add("/f.bin", rawserver.reply("HTTP/1.1 200 OK", [("Content-Length", "5000")],
                                            BODY[:3000]))
    with requests.Session() as session:
        response = get(session, url)
        response.raw.enforce_content_length = True  # the transfer's choice (off in 1.26)
        read = reading(reader(response.raw))
        received = b""
        with pytest.raises(urllib3.exceptions.ProtocolError):
            while True:
                received += read(2000)
        response.close()

    # What came before the cut (the part of it the reader had handed over).
    assert len(received) >= 2000 and BODY.startswith(received)


@pytest.mark.parametrize("reader", READERS)
def test_bytes_as_sent_not_decoded(server: FaultServer, reader: Reader) -> None:
    url = server.add("/f.txt", b"text " * 1000, gzip=True)
    with requests.Session() as session:
        response = get(session, url)
        received = b"".join(drain(reader(response.raw)))
        response.close()

    assert received == server.wire_body("/f.txt")


@pytest.mark.parametrize("reader", READERS)
@pytest.mark.parametrize("framing", FRAMINGS)
def test_bytes_before_a_pause_arrive_in_a_buffer_their_size(
        holding: HoldingServer, reader: Reader, framing: dict[str, bool]) -> None:
    url = holding.add("/f.bin", BODY, **framing)
    with requests.Session() as session:
        # A read that waited for more than was sent would time out here.
        response = get(session, url, read_timeout=10.0)
        read = reading(reader(response.raw))
        first = read(HELD_AFTER // 2), read(HELD_AFTER // 2)
        holding.gate.set()
        rest = list(iter(lambda: read(65536), b""))
        response.close()

    assert b"".join(first) == BODY[:HELD_AFTER]
    assert b"".join(first) + b"".join(rest) == BODY


@pytest.mark.parametrize("reader", READERS)
@pytest.mark.parametrize("framing", FRAMINGS)
def test_a_stalled_body_times_out(holding: HoldingServer, reader: Reader,
                                  framing: dict[str, bool]) -> None:
    url = holding.add("/f.bin", BODY, **framing)
    received = b""
    with requests.Session() as session:
        response = get(session, url, read_timeout=0.5)
        read = reading(reader(response.raw))
        with pytest.raises(urllib3.exceptions.ReadTimeoutError):
            while True:
                received += read(HELD_AFTER // 4)
        response.close()

    assert received == BODY[:HELD_AFTER]


@pytest.mark.parametrize("reader", READERS)
@pytest.mark.parametrize("framing", [p for p in FRAMINGS if p.id != "no-length"])
def test_a_cut_body_is_an_error(server: FaultServer, reader: Reader,
                                framing: dict[str, bool]) -> None:
    # (Without a length or chunks, a cut looks like the end: the caller
    # knows when it cut the socket itself.)
    url = server.add("/f.bin", BODY, drop_after=30_000, **framing)
    with requests.Session() as session:
        response = get(session, url)
        response.raw.enforce_content_length = True  # the transfer's choice (off in 1.26)
        with pytest.raises(urllib3.exceptions.ProtocolError):
            drain(reader(response.raw))
        response.close()


@pytest.mark.parametrize("reader", READERS)
def test_a_length_not_enforced_lets_the_body_end_early(server: FaultServer,
                                                       reader: Reader) -> None:
    url = server.add("/f.bin", BODY, drop_after=30_000)
    with requests.Session() as session:
        response = get(session, url)
        response.raw.enforce_content_length = False  # a Content-Length not believed
        assert b"".join(drain(reader(response.raw))) == BODY[:30_000]
        response.close()


@pytest.mark.parametrize("reader", READERS)
@pytest.mark.parametrize("framing", [p for p in FRAMINGS if p.id != "no-length"])
def test_a_body_read_to_its_end_gives_its_connection_back(
        server: FaultServer, reader: Reader, framing: dict[str, bool]) -> None:
    bodies = [make_body(20_000, n) for n in range(3)]
    urls = [server.add(f"/f{n}.bin", data, **framing) for n, data in enumerate(bodies)]
    local_ports, received = set(), []
    with requests.Session() as session:
        for url in urls:
            response = get(session, url)  # the one before it still open
            local_ports.add(response.raw.connection.sock.getsockname()[1])
            received.append(b"".join(drain(reader(response.raw))))

    assert received == bodies
    assert len(local_ports) == 1


@pytest.mark.parametrize("reader", READERS)
@pytest.mark.parametrize("framing", FRAMINGS)
def test_readinto1_gives_what_has_arrived_while_the_server_holds_the_rest(
        holding: HoldingServer, reader: Reader, framing: dict[str, bool]) -> None:
    if reader is body._Copying and not hasattr(urllib3.HTTPResponse, "read1"):
        pytest.skip("urllib3 before 2.2 has no read1 (and never needs _Copying)")
    url = holding.add("/f.bin", BODY, **framing)
    with requests.Session() as session:
        # A read that waited to fill its buffer would time out here.
        response = get(session, url, read_timeout=10.0)
        body_reader = reader(response.raw)
        buffer = memoryview(bytearray(65536))
        first = bytes(buffer[:body_reader.readinto1(buffer)])
        holding.gate.set()
        rest = drain(body_reader, 65536)
        response.close()

    assert 0 < len(first) <= HELD_AFTER
    assert first + b"".join(rest) == BODY


LARGEST = 256 << 10


@pytest.mark.parametrize("size, filled, seconds, expected", [
    (body.FIRST_SIZE, True, 0.001, 2 * body.FIRST_SIZE),  # fast and full: grow, and fill
    (body.FIRST_SIZE, False, 0.001, body.FIRST_SIZE),  # what had arrived: no faster
    (LARGEST, True, 0.001, LARGEST),  # at the largest already
    (128 << 10, True, 0.05, 128 << 10),  # about right: stay
    (128 << 10, True, 0.5, body.FIRST_SIZE),  # slow: back to reading what arrives
    (body.FIRST_SIZE, False, 5.0, body.FIRST_SIZE),
])
def test_next_size(size: int, filled: bool, seconds: float, expected: int) -> None:
    assert body.next_size(size, filled, seconds, 0.1, LARGEST) == expected


def test_next_size_under_a_small_largest() -> None:
    # --limit-rate can make the largest read smaller than the first one.
    assert body.next_size(1024, True, 5.0, 0.1, 1024) == 1024
    assert body.next_size(1024, True, 0.001, 0.1, 1024) == 1024


@pytest.mark.parametrize("framing", FRAMINGS[:2])
def test_a_body_cut_mid_way_is_resumed_whole(server: FaultServer, tmp_path: Any,
                                             framing: dict[str, bool]) -> None:
    # Through a whole transfer: what a read had in its buffer when the
    # connection broke is fetched again, never lost nor written twice.
    big = make_body(3 * 256 * 1024 + 123, seed=11)
    url = server.add("/big.bin", big, etag='"v1"', drop_after=300_001, **framing)
    result = download_all([url], tmp_path / "dest", retry_wait=0.01, timeout=5).results[0]
    assert result.ok, result.error
    assert result.attempts == 2
    assert (tmp_path / "dest" / "big.bin").read_bytes() == big
    ranges = [r.headers.get("Range") for r in server.requests if r.path == "/big.bin"]
    assert ranges[0] is None and len(ranges) == 2
    resumed_at = int(ranges[1].removeprefix("bytes=").rstrip("-"))
    if framing:
        # Broken chunked framing fails the whole filling read: its bytes
        # come again with the rest.
        assert 0 < resumed_at <= 300_001
    else:  # a sized body's read ends with what came before the cut
        assert resumed_at == 300_001
