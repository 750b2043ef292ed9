"""Reading bodies as they arrive (downloader/body.py), against a real server.

Every test runs twice: with what ``body_reader`` picks for the installed
urllib3, and with the http.client path that urllib3 before 2.2 needs, so
that path is tested whatever urllib3 the suite runs with.
"""
from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
import urllib3

from downloader import body
from httpserver import FaultServer, make_body

Reader = Callable[[Any], Callable[[int], bytes]]

READERS = [pytest.param(body.body_reader, id="installed-urllib3"),
           pytest.param(body._http_client_reader, id="http-client")]
FRAMINGS = [pytest.param({}, id="content-length"),
            pytest.param({"chunked": True}, id="chunked"),
            pytest.param({"no_length": True}, id="no-length")]
SIZE = 4096
HELD_AFTER = 1000
BODY = make_body(100_000, seed=7)


def drain(read: Callable[[int], bytes], size: int = SIZE) -> list[bytes]:
    return list(iter(lambda: read(size), b""))


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
def holding(server: FaultServer) -> Iterator[HoldingServer]:
    held = HoldingServer(server)
    try:
        yield held
    finally:
        held.gate.set()


@pytest.mark.parametrize("reader", READERS)
@pytest.mark.parametrize("framing", FRAMINGS)
def test_whole_body_in_pieces_no_larger_than_asked(server: FaultServer, reader: Reader,
                                                   framing: dict[str, bool]) -> None:
    url = server.add("/f.bin", BODY, **framing)
    with requests.Session() as session:
        response = get(session, url)
        pieces = drain(reader(response.raw))
        response.close()

    assert b"".join(pieces) == BODY
    assert max(map(len, pieces)) <= SIZE
    assert min(map(len, pieces)) > 0


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
def test_first_bytes_arrive_while_the_server_holds_the_rest(
        holding: HoldingServer, reader: Reader, framing: dict[str, bool]) -> None:
    url = holding.add("/f.bin", BODY, **framing)
    with requests.Session() as session:
        # A reader that waited to fill its size would time out here.
        response = get(session, url, read_timeout=10.0)
        read = reader(response.raw)
        first = read(65536)
        holding.gate.set()
        rest = drain(read, 65536)
        response.close()

    assert 0 < len(first) <= HELD_AFTER
    assert first + b"".join(rest) == BODY


@pytest.mark.parametrize("reader", READERS)
@pytest.mark.parametrize("framing", FRAMINGS)
def test_a_stalled_body_times_out(holding: HoldingServer, reader: Reader,
                                  framing: dict[str, bool]) -> None:
    url = holding.add("/f.bin", BODY, **framing)
    received = b""
    with requests.Session() as session:
        response = get(session, url, read_timeout=0.5)
        read = reader(response.raw)
        with pytest.raises(urllib3.exceptions.ReadTimeoutError):
            while True:
                received += read(SIZE)
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
