"""A fast HTTP/1.1 server for the millions set: any path, no delay, tiny bodies.

With a million files of 16-64 bytes, a client's cost is all per request:
reading its list, queueing, one round trip, creating a file. This server must
not be what limits that, so it is an `asyncio.Protocol` (no stream objects,
no per-request coroutine), parses only what it needs, answers pipelined
requests in one write, and keeps connections open (HTTP/1.1 keep-alive). On
one core of this machine it answers tens of thousands of requests a second.

Any path whose last segment contains digits (/m/f000123.bin) is served: the
digits pick the file, and the body is `content.tiny_bytes(index)`, the same
bytes the driver checks for. A path without digits gets a 404.

`GET /_bench/stats` (not counted as a request) answers, as JSON, how many
requests arrived and the CLOCK_MONOTONIC time of the first one since the last
such call, then starts counting afresh: the driver calls it before a run (to
reset) and after it (to read). CLOCK_MONOTONIC is one clock for every process
on the machine, so that time compares with the driver's own `time.monotonic()`
taken just before it started the tool. `bench/latency_server.py` answers the
same path through `RunStats`.

    python bench/tiny_server.py --port 0

prints `LISTENING <port>` on stdout once it accepts connections, and stops on
SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import signal
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from content import tiny_bytes  # noqa: E402

STATS_PATH = "/_bench/stats"
_INDEX_RE = re.compile(rb"(\d+)")
# A request head larger than this is refused: no benchmark client sends one.
_MAX_HEAD = 64 * 1024
# Like a static file server's validator: tools that copy it to the file's
# mtime (as they do with nginx's) pay that syscall here too.
_LAST_MODIFIED = b"Mon, 01 Jan 2024 00:00:00 GMT"


class RunStats:
    """Requests since the last stats call, and when the first of them came."""

    def __init__(self) -> None:
        self.requests = 0
        self.first: float | None = None

    def seen(self) -> None:
        if self.first is None:
            self.first = time.monotonic()
        self.requests += 1

    def take(self) -> bytes:
        """The JSON answer for STATS_PATH; counting starts again after it."""
        out = json.dumps({"requests": self.requests, "first_request_monotonic": self.first})
        self.requests, self.first = 0, None
        return out.encode()


def response(status: bytes, body: bytes, keep: bool, head_only: bool = False,
             content_type: bytes = b"application/octet-stream") -> bytes:
    conn = b"keep-alive" if keep else b"close"
    head = (b"HTTP/1.1 %s\r\nContent-Length: %d\r\nContent-Type: %s\r\n"
            b"Last-Modified: %s\r\nConnection: %s\r\n\r\n"
            % (status, len(body), content_type, _LAST_MODIFIED, conn))
    return head if head_only else head + body


def answer(head: bytes, stats: RunStats) -> tuple[bytes, bool]:
    """The whole response to one request head, and whether to keep the connection."""
    line, _, rest = head.partition(b"\r\n")
    try:
        method, target, version = line.split(b" ", 2)
    except ValueError:
        return response(b"400 Bad Request", b"bad request line\n", False), False
    fields = rest.lower()
    # HTTP/1.1 keeps the connection unless told otherwise; 1.0 closes unless
    # asked to keep it. (A substring test: no benchmark client folds headers.)
    if version == b"HTTP/1.1":
        keep = b"connection: close" not in fields
    else:
        keep = b"connection: keep-alive" in fields
    if b"content-length:" in fields or b"transfer-encoding:" in fields:
        # Downloaders send bodiless GET/HEAD; a body would desync the stream.
        return response(b"400 Bad Request", b"request bodies are not supported\n", False), False
    path = target.split(b"?", 1)[0]
    if path == STATS_PATH.encode():
        return response(b"200 OK", stats.take(), keep, content_type=b"application/json"), keep
    stats.seen()
    if method not in (b"GET", b"HEAD"):
        return response(b"405 Method Not Allowed", b"", keep), keep
    digits = b"".join(_INDEX_RE.findall(path.rsplit(b"/", 1)[-1]))
    if not digits:
        return response(b"404 Not Found", b"not found\n", keep), keep
    return response(b"200 OK", tiny_bytes(int(digits)), keep, head_only=method == b"HEAD"), keep


class Connection(asyncio.Protocol):
    def __init__(self, stats: RunStats) -> None:
        self.stats = stats
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        buf = self.buffer + data if self.buffer else data
        out: list[bytes] = []
        start = 0
        while True:
            end = buf.find(b"\r\n\r\n", start)
            if end < 0:
                break
            reply, keep = answer(buf[start:end], self.stats)
            out.append(reply)
            start = end + 4
            if not keep:
                self.transport.write(b"".join(out))
                self.transport.close()
                self.buffer = b""
                return
        self.buffer = buf[start:]
        if out:  # every pipelined answer in one write: one syscall, not many
            self.transport.write(b"".join(out))
        if len(self.buffer) > _MAX_HEAD:
            self.transport.close()


async def serve(host: str, port: int) -> None:
    stats = RunStats()
    loop = asyncio.get_running_loop()
    # A deep backlog: -P runs open many connections at once, and SYNs dropped
    # by a short queue would add seconds of retransmit delay.
    server = await loop.create_server(lambda: Connection(stats), host, port, backlog=4096)
    bound = server.sockets[0].getsockname()[1]
    print(f"LISTENING {bound}", flush=True)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0, help="0 = any free port (printed on stdout)")
    args = ap.parse_args(argv)
    asyncio.run(serve(args.host, args.port))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
