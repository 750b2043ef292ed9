"""A slow HTTP/1.1 server: every request waits DELAY seconds, then gets SIZE bytes.

It models a far-away server (high round-trip time, plenty of bandwidth), where
a downloader's wall time is bounded by how many requests it keeps in flight,
not by how fast it copies bytes. With 16 workers, N files and a 200 ms delay the
ideal wall time is ceil(N / 16) * 0.2 s.

Raw asyncio streams keep the server cheap (one coroutine per connection, no
framework) so that hundreds of waiting requests cost it almost nothing and the
benchmark measures the client, not this server. Keep-alive is the HTTP/1.1
default and is honoured, because a client that reuses connections should win.

Any path whose last segment contains digits (/f/123, /f/f00123.bin) is served;
the digits pick the file, and the body is `content.file_bytes(index, SIZE)`,
the same bytes the driver expects, so every download can be checked.
`GET /_bench/stats` answers at once, as in bench/tiny_server.py: the requests
since the last such call and when the first of them arrived.

    python bench/latency_server.py --port 0 --size 65536 --delay 0.2

prints `LISTENING <port>` on stdout once it accepts connections, and stops on
SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import signal
import sys
from pathlib import Path

# Run as a script (python bench/latency_server.py), so the sibling module is
# imported by path rather than as a package.
sys.path.insert(0, str(Path(__file__).resolve().parent))
from content import ContentPool  # noqa: E402
from tiny_server import STATS_PATH, RunStats  # noqa: E402

_INDEX_RE = re.compile(rb"(\d+)")
_RANGE_RE = re.compile(rb"bytes=(\d*)-(\d*)$")
# A request head larger than this is refused: no benchmark client sends one.
_MAX_HEAD = 64 * 1024


class LatencyServer:
    def __init__(self, size: int, delay: float) -> None:
        self.size = size
        self.delay = delay
        self.pool = ContentPool(size)
        self.requests = 0
        self.stats = RunStats()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while await self._one_request(reader, writer):
                pass
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass  # the client went away mid-request: nothing to answer
        finally:
            writer.close()
            try:
                await writer.wait_closed()
            except ConnectionError:
                pass

    async def _one_request(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """Answer one request; return whether the connection stays open."""
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError as exc:
            if exc.partial:
                raise
            return False  # clean close between requests
        if len(head) > _MAX_HEAD:
            return False
        lines = head.split(b"\r\n")
        try:
            method, target, version = lines[0].split(b" ", 2)
        except ValueError:
            await self._send(writer, 400, b"Bad Request", {}, b"bad request line\n")
            return False
        headers: dict[bytes, bytes] = {}
        for line in lines[1:]:
            name, sep, value = line.partition(b":")
            if sep:
                headers[name.strip().lower()] = value.strip()
        # HTTP/1.1 keeps the connection unless told otherwise; 1.0 closes
        # unless asked to keep it.
        conn = headers.get(b"connection", b"").lower()
        keep = conn != b"close" if version == b"HTTP/1.1" else conn == b"keep-alive"
        if b"content-length" in headers or b"transfer-encoding" in headers:
            # Downloaders send bodiless GET/HEAD; a body would desync the stream.
            await self._send(writer, 400, b"Bad Request", {}, b"request bodies are not supported\n")
            return False

        if target.split(b"?", 1)[0] == STATS_PATH.encode():
            await self._send(writer, 200, b"OK", {b"Content-Type": b"application/json"}, self.stats.take(), keep)
            return keep
        self.requests += 1
        self.stats.seen()
        # The whole point of this server: every answer is late.
        await asyncio.sleep(self.delay)

        if method not in (b"GET", b"HEAD"):
            await self._send(writer, 405, b"Method Not Allowed", {b"Allow": b"GET, HEAD"}, b"", keep)
            return keep
        last = target.split(b"?", 1)[0].rsplit(b"/", 1)[-1]
        digits = b"".join(_INDEX_RE.findall(last))
        if not digits:
            await self._send(writer, 404, b"Not Found", {}, b"not found\n", keep)
            return keep
        body = self.pool.file_bytes(int(digits), self.size)
        status, reason = 200, b"OK"
        extra: dict[bytes, bytes] = {
            b"Content-Type": b"application/octet-stream",
            b"Accept-Ranges": b"bytes",
            # A fixed validator so If-Range resumes are accepted.
            b"Last-Modified": b"Mon, 01 Jan 2024 00:00:00 GMT",
        }
        rng = headers.get(b"range")
        if rng:
            m = _RANGE_RE.match(rng)
            if m and (m.group(1) or m.group(2)):
                start, end = self._range(m.group(1), m.group(2), len(body))
                if start > end:
                    extra[b"Content-Range"] = b"bytes */%d" % len(body)
                    await self._send(writer, 416, b"Range Not Satisfiable", extra, b"", keep)
                    return keep
                extra[b"Content-Range"] = b"bytes %d-%d/%d" % (start, end, len(body))
                body = body[start : end + 1]
                status, reason = 206, b"Partial Content"
        await self._send(writer, status, reason, extra, body, keep, head_only=method == b"HEAD")
        return keep

    @staticmethod
    def _range(first: bytes, last: bytes, total: int) -> tuple[int, int]:
        if not first:  # suffix range: the last N bytes
            n = int(last)
            return max(0, total - n), total - 1
        start = int(first)
        end = min(int(last), total - 1) if last else total - 1
        return start, end

    @staticmethod
    async def _send(
        writer: asyncio.StreamWriter,
        status: int,
        reason: bytes,
        headers: dict[bytes, bytes],
        body: bytes,
        keep: bool = False,
        head_only: bool = False,
    ) -> None:
        out = [b"HTTP/1.1 %d %s" % (status, reason), b"Content-Length: %d" % len(body)]
        out += [k + b": " + v for k, v in headers.items()]
        out.append(b"Connection: keep-alive" if keep else b"Connection: close")
        writer.write(b"\r\n".join(out) + b"\r\n\r\n")
        if not head_only and body:
            writer.write(body)
        await writer.drain()


async def serve(host: str, port: int, size: int, delay: float) -> None:
    app = LatencyServer(size, delay)
    # A deep backlog: the latency set opens many connections at once, and
    # SYNs dropped by a short queue would add seconds of retransmit delay
    # that have nothing to do with the client being measured.
    server = await asyncio.start_server(app.handle, host, port, backlog=4096, limit=_MAX_HEAD)
    bound = server.sockets[0].getsockname()[1]
    print(f"LISTENING {bound}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()
    print(f"served {app.requests} requests", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0, help="0 = any free port (printed on stdout)")
    ap.add_argument("--size", type=int, required=True, help="bytes per response")
    ap.add_argument("--delay", type=float, default=0.2, help="seconds before each answer")
    args = ap.parse_args(argv)
    asyncio.run(serve(args.host, args.port, args.size, args.delay))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
