"""Threaded loopback HTTP/1.1 test server that injects faults per route (stdlib only).

``FaultServer.add(path, body, **options)``; the options are the fields of ``Route``.
A test that must act while a response is in flight gives the route a ``gate``
(a ``threading.Event``), waits with ``FaultServer.wait_held`` until a request
is held there, does its checks, then sets the event; ``stop()`` releases every
gate, so a failing test cannot leave a handler hanging.
"""
from __future__ import annotations

import argparse
import base64
import contextlib
import copy
import dataclasses
import email.message
import gzip as gzip_mod
import random
import re
import signal
import socket
import sys
import threading
import time
from email.utils import parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Set, Tuple, Union
from urllib.parse import quote

_KEEP: Any = object()  # sentinel: "leave this attribute unchanged"


def make_body(n: int, seed: int = 0) -> bytes:
    """Deterministic pseudo-random bytes (incompressible, so gzip tests are honest)."""
    return random.Random(seed).randbytes(n)


@dataclasses.dataclass
class Request:
    method: str
    path: str  # including the query string
    headers: email.message.Message  # case-insensitive .get()
    time: float  # time.monotonic() when the request line was parsed


@dataclasses.dataclass
class Route:
    body: bytes = b""
    status: int = 200
    headers: Dict[str, Optional[str]] = dataclasses.field(default_factory=dict)
    content_type: str = "application/octet-stream"
    etag: Optional[str] = None
    last_modified: Optional[str] = None
    content_disposition: Optional[str] = None
    gzip: bool = False
    delay: float = 0.0
    # Hold the response until the test sets ``gate``: before the headers, or
    # after ``gate_after`` body bytes (when fewer than the body) have been sent.
    gate: Optional[threading.Event] = None
    gate_after: Optional[int] = None
    # With ``gate``: hold only requests for a Range that starts at or after this
    # byte, before the route is read (so a set_body() meanwhile is what they get).
    gate_from: Optional[int] = None
    fail_times: int = 0
    fail_status: int = 503
    retry_after: Optional[Union[int, float, str]] = None
    drop_after: Optional[int] = None
    lie_length: Optional[int] = None
    stall: Optional[float] = None
    stall_before_headers: Optional[float] = None
    drip: Optional[float] = None
    redirect_to: Optional[str] = None
    chunked: bool = False
    no_length: bool = False
    ranges: bool = True
    rate: Optional[float] = None
    wrong_range: bool = False  # a 206 that starts elsewhere than the Range asked
    ignore_if_range: bool = False  # serve the Range even when If-Range no longer matches
    require_cookie: Optional[str] = None  # "name=value" the Cookie header must carry, else 403
    require_auth: Optional[str] = None  # "user:password" Basic credentials required, else 401
    # Mutable per-route state (guarded by FaultServer._lock).
    count: int = dataclasses.field(default=0, init=False)
    dropped: bool = dataclasses.field(default=False, init=False)
    wire: bytes = dataclasses.field(default=b"", init=False)

    def __post_init__(self) -> None:
        self.refresh()

    def refresh(self) -> None:
        # mtime=0 makes the compressed bytes reproducible for wire_body().
        self.wire = gzip_mod.compress(self.body, mtime=0) if self.gzip else self.body


class _Stopped(OSError):
    """Aborts a response because the server is stopping (an OSError, so handled quietly)."""


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    # The default backlog of 5 drops connections when 16+ workers connect at once.
    request_queue_size = 128
    fault: FaultServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Client disconnects/resets/timeouts and our forced shutdowns are OSErrors: stay quiet.
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _HTTPServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass

    def setup(self) -> None:
        super().setup()
        self.server.fault._track(self.connection, True)

    def finish(self) -> None:
        self.server.fault._track(self.connection, False)
        with contextlib.suppress(OSError):
            super().finish()

    def do_GET(self) -> None:
        self._serve(head=False)

    def do_HEAD(self) -> None:
        self._serve(head=True)

    def _serve(self, head: bool) -> None:
        fs = self.server.fault
        fs._begin(Request(self.command, self.path, self.headers, time.monotonic()))
        try:
            self._respond(fs, head)
        except OSError:  # client went away, or we are stopping
            self.close_connection = True  # response is torn; the connection is unusable
        finally:
            fs._end()

    def _sleep(self, seconds: Optional[float]) -> None:
        # Waiting on the stop Event (not time.sleep) keeps stop() from hanging.
        if seconds and seconds > 0 and self.server.fault._stop_event.wait(seconds):
            raise _Stopped

    def _send_head(self, status: int, headers: List[Tuple[str, str]]) -> None:
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()  # flushes: stall tests rely on headers being on the wire

    def _simple(self, status: int, body: bytes, head: bool, extra: Dict[str, str]) -> None:
        headers = [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))]
        self._send_head(status, headers + list(extra.items()))
        if not head:
            self.wfile.write(body)

    def _respond(self, fs: FaultServer, head: bool) -> None:
        path = self.path.split("?", 1)[0]
        with fs._lock:
            route = fs._routes.get(path)
            early = route.gate if route is not None and route.gate_from is not None \
                and self._range_start() >= route.gate_from else None
        if early is not None:
            self._hold(fs, path, early)
        with fs._lock:
            route = fs._routes.get(path)
            if route is not None:
                route.count += 1
                snap = copy.copy(route)  # consistent view even if set_body() races us
        if route is None:
            return self._simple(404, b"not found\n", head, {})
        self._sleep(snap.delay)
        if snap.gate is not None and snap.gate_after is None and snap.gate_from is None:
            self._hold(fs, path, snap.gate)
        self._sleep(snap.stall_before_headers)
        if snap.count <= snap.fail_times:
            extra = {} if snap.retry_after is None else {"Retry-After": str(snap.retry_after)}
            return self._simple(snap.fail_status, b"injected failure\n", head, extra)
        if snap.require_auth is not None and not self._has_auth(snap.require_auth):
            # Checked before a redirect: a protected URL that sends the client on.
            return self._simple(401, b"who are you?\n", head,
                                {"WWW-Authenticate": 'Basic realm="test"'})
        if snap.redirect_to is not None:
            return self._simple(302, b"redirect\n", head, {"Location": snap.redirect_to})
        if snap.require_cookie is not None and not self._has_cookie(snap.require_cookie):
            return self._simple(403, b"no cookie\n", head, {})

        h: Dict[str, str] = {k: v for k, v in (
            ("Content-Type", snap.content_type), ("ETag", snap.etag),
            ("Last-Modified", snap.last_modified), ("Content-Disposition", snap.content_disposition),
            ("Content-Encoding", "gzip" if snap.gzip else None),
            ("Accept-Ranges", "bytes" if snap.ranges else None)) if v is not None}
        status, body, total = snap.status, snap.wire, len(snap.wire)
        if status == 200 and self._not_modified(snap):
            h.pop("Content-Type")
            return self._send_head(304, self._merge(h, snap))
        rng = self._range(snap, total) if status == 200 else None
        if rng == "unsatisfiable":
            h.update({"Content-Range": f"bytes */{total}", "Content-Length": "0"})
            return self._send_head(416, self._merge(h, snap))
        if isinstance(rng, tuple):
            start, end = rng
            if snap.wrong_range:  # internally consistent, just not what was asked
                start = start // 2 if start else min(1, end)
            status, body = 206, body[start:end + 1]
            h["Content-Range"] = f"bytes {start}-{end}/{total}"

        if snap.chunked:
            h["Transfer-Encoding"] = "chunked"
        elif snap.no_length:
            h["Connection"] = "close"
        else:  # drop_after keeps the *correct* length so the client sees a short read
            h["Content-Length"] = str(snap.lie_length if snap.lie_length is not None else len(body))
        if snap.no_length or snap.lie_length is not None:
            self.close_connection = True

        limit = None
        if not head and snap.drop_after is not None:
            with fs._lock:
                if not route.dropped:  # only the first body response is cut short
                    route.dropped = True
                    limit = snap.drop_after
        self._send_head(status, self._merge(h, snap))
        if head:
            return
        self._sleep(snap.stall)
        self._write_body(path, body if limit is None else body[:limit], snap, final=limit is None)
        if limit is not None:
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            finally:
                self.connection.close()

    @staticmethod
    def _merge(h: Dict[str, str], snap: Route) -> List[Tuple[str, str]]:
        # Route.headers override the defaults case-insensitively; None deletes.
        out = {k.lower(): (k, v) for k, v in h.items()}
        for k, v in snap.headers.items():
            out.pop(k.lower(), None)
            if v is not None:
                out[k.lower()] = (k, v)
        return list(out.values())

    def _hold(self, fs: FaultServer, path: str, gate: threading.Event) -> None:
        fs._held_at_gate(path)
        gate.wait()  # stop() sets every gate, so this cannot outlive the server
        if fs._stop_event.is_set():
            raise _Stopped

    def _write_body(self, path: str, data: bytes, snap: Route, final: bool) -> None:
        if snap.drip:
            step = 1
        elif snap.rate:
            step = max(1, int(snap.rate / 20))  # ~20 writes per second keeps pacing smooth
        else:
            step = 64 * 1024
        hold_at = snap.gate_after if snap.gate is not None else None
        if hold_at is not None and not 0 <= hold_at < len(data):
            hold_at = None
        t0 = time.monotonic()
        sent = 0
        while sent < len(data):
            if sent == hold_at:
                assert snap.gate is not None
                self._hold(self.server.fault, path, snap.gate)
            end = min(sent + step, len(data))
            if hold_at is not None and sent < hold_at:
                end = min(end, hold_at)  # the held part ends exactly at gate_after
            piece = data[sent:end]
            if snap.chunked:
                piece = b"%x\r\n%s\r\n" % (len(piece), piece)
            self.wfile.write(piece)
            sent = end
            if snap.drip and sent < len(data):
                self._sleep(snap.drip)
            elif snap.rate and sent < len(data):
                self._sleep(t0 + sent / snap.rate - time.monotonic())
        if snap.chunked and final:
            self.wfile.write(b"0\r\n\r\n")

    def _range_start(self) -> int:
        """The first byte the request's Range asks for (-1: no Range)."""
        m = re.fullmatch(r"\s*bytes\s*=\s*(\d+)\s*-.*", self.headers.get("Range") or "")
        return int(m.group(1)) if m else -1

    def _not_modified(self, snap: Route) -> bool:
        inm = self.headers.get("If-None-Match")
        if inm is not None:  # RFC 7232 s6: If-None-Match wins over If-Modified-Since
            tags = {t.strip().removeprefix("W/") for t in inm.split(",")}
            return "*" in tags or (snap.etag is not None and snap.etag.removeprefix("W/") in tags)
        ims = self.headers.get("If-Modified-Since")
        if ims and snap.last_modified:
            try:
                return parsedate_to_datetime(snap.last_modified) <= parsedate_to_datetime(ims)
            except (TypeError, ValueError):  # unparsable or naive/aware mix: be conservative
                return False
        return False

    def _has_auth(self, wanted: str) -> bool:
        expected = "Basic " + base64.b64encode(wanted.encode()).decode()
        return self.headers.get("Authorization") == expected

    def _has_cookie(self, wanted: str) -> bool:
        sent = ";".join(self.headers.get_all("Cookie") or [])
        return wanted in (c.strip() for c in sent.split(";"))

    def _range(self, snap: Route, total: int) -> Union[None, str, Tuple[int, int]]:
        spec = self.headers.get("Range")
        if not snap.ranges or not spec:
            return None
        if_range = self.headers.get("If-Range")
        if if_range is not None and not snap.ignore_if_range:
            etag_ok = snap.etag is not None and not if_range.startswith("W/") and if_range == snap.etag
            if not (etag_ok or (snap.last_modified is not None and if_range == snap.last_modified)):
                return None  # validator mismatch: send the whole (changed) entity
        m = re.fullmatch(r"\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*", spec)
        if not m or m.group(1) == m.group(2) == "":
            return None  # malformed or multi-range: ignoring Range is allowed
        first, last = m.groups()
        if first == "":  # suffix range: last N bytes
            if int(last) == 0 or total == 0:
                return "unsatisfiable"
            return max(0, total - int(last)), total - 1
        start = int(first)
        if start >= total:
            return "unsatisfiable"
        if last and int(last) < start:
            return None
        return start, min(int(last), total - 1) if last else total - 1


class FaultServer:
    """Loopback HTTP/1.1 server with per-route fault injection (see module doc)."""

    __test__ = False  # never collected by pytest

    def __init__(self, port: int = 0) -> None:
        self._lock = threading.Lock()
        # Notified whenever a request arrives or is held at a gate (wait_for_hits, wait_held).
        self._changed = threading.Condition(self._lock)
        self._stop_event = threading.Event()
        self._gates: List[threading.Event] = []
        self._held: Dict[str, int] = {}
        self._routes: Dict[str, Route] = {}
        self._requests: List[Request] = []
        self._conns: Set[socket.socket] = set()
        self._in_flight = 0
        self._max_in_flight = 0
        self._httpd = _HTTPServer(("127.0.0.1", port), _Handler)
        self._httpd.fault = self
        self._thread: Optional[threading.Thread] = None
        self.port: int = self._httpd.server_address[1]
        self.base = f"http://127.0.0.1:{self.port}"

    def start(self) -> FaultServer:
        # Short poll interval so stop() (httpd.shutdown) returns quickly.
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"FaultServer:{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop_event.set()  # wakes every handler sleeping in delay/stall/drip/rate
        with self._lock:
            gates = list(self._gates)
        for gate in gates:  # and every handler held at a gate (it sees the stop and aborts)
            gate.set()
        if self._thread is not None:
            self._httpd.shutdown()
        with self._lock:
            conns = list(self._conns)
        for conn in conns:  # unblock keep-alive reads so handler threads exit now
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> FaultServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def url(self, path: str) -> str:
        return self.base + path

    def add(self, path: str, body: Union[bytes, str] = b"", **options: Any) -> str:
        """Register (or replace, resetting its counters) a route; returns its URL."""
        if isinstance(body, str):
            body = body.encode()
        route = Route(body=body, **options)  # unknown option names raise TypeError
        with self._lock:
            self._routes[path] = route
            if route.gate is not None:
                self._gates.append(route.gate)
        return self.url(path)

    def set_body(self, path: str, body: Union[bytes, str], *, etag: Optional[str] = _KEEP,
                 last_modified: Optional[str] = _KEEP) -> None:
        """Change a route's content; etag/last_modified stay as-is unless given (None clears)."""
        with self._lock:
            route = self._routes[path]
            route.body = body.encode() if isinstance(body, str) else body
            if etag is not _KEEP:
                route.etag = etag
            if last_modified is not _KEEP:
                route.last_modified = last_modified
            route.refresh()

    def wire_body(self, path: str) -> bytes:
        """Exact bytes sent as the body of a full 200 for ``path`` (gzip applied)."""
        with self._lock:
            return self._routes[path].wire

    @property
    def requests(self) -> List[Request]:
        with self._lock:
            return list(self._requests)

    def hits(self, path: str) -> int:
        with self._lock:
            return self._hits(path)

    def _hits(self, path: str) -> int:
        return sum(1 for r in self._requests if r.path.split("?", 1)[0] == path)

    def held(self, path: str) -> int:
        """How many responses for ``path`` have reached its gate (held now or since released)."""
        with self._lock:
            return self._held.get(path, 0)

    def wait_for_hits(self, path: str, n: int = 1, timeout: float = 10.0) -> None:
        """Block until ``path`` has been requested ``n`` times; AssertionError after ``timeout``."""
        self._wait(lambda: self._hits(path) >= n, timeout,
                   lambda: f"{path} requested {self._hits(path)} times, not {n}")

    def wait_held(self, path: str, n: int = 1, timeout: float = 10.0) -> None:
        """Block until ``n`` responses for ``path`` have reached its gate."""
        self._wait(lambda: self._held.get(path, 0) >= n, timeout,
                   lambda: f"{self._held.get(path, 0)} responses for {path} reached its gate, "
                           f"not {n}")

    def _wait(self, done: Callable[[], bool], timeout: float, why: Callable[[], str]) -> None:
        with self._changed:
            if not self._changed.wait_for(done, timeout):
                raise AssertionError(f"timed out after {timeout:g}s: {why()}")

    @property
    def in_flight(self) -> int:
        with self._lock:
            return self._in_flight

    @property
    def max_in_flight(self) -> int:
        with self._lock:
            return self._max_in_flight

    def reset_stats(self) -> None:
        """Forget recorded requests, gate arrivals and the in-flight high-water mark
        (routes untouched)."""
        with self._lock:
            self._requests.clear()
            self._held.clear()
            self._max_in_flight = self._in_flight

    def _begin(self, req: Request) -> None:
        with self._lock:
            self._requests.append(req)
            self._in_flight += 1
            self._max_in_flight = max(self._max_in_flight, self._in_flight)
            self._changed.notify_all()

    def _held_at_gate(self, path: str) -> None:
        with self._lock:
            self._held[path] = self._held.get(path, 0) + 1
            self._changed.notify_all()

    def _end(self) -> None:
        with self._lock:
            self._in_flight -= 1

    def _track(self, conn: socket.socket, add: bool) -> None:
        with self._lock:
            (self._conns.add if add else self._conns.discard)(conn)


def _main(argv: Optional[List[str]] = None) -> None:
    ap = argparse.ArgumentParser(description="Serve a directory through FaultServer.")
    ap.add_argument("--dir", required=True, type=Path)
    ap.add_argument("--port", type=int, default=0)
    args = ap.parse_args(argv)
    server = FaultServer(args.port)
    root = args.dir.resolve()
    for f in sorted(p for p in root.rglob("*") if p.is_file()):
        server.add("/" + quote(f.relative_to(root).as_posix()), f.read_bytes())
    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    server.start()
    print(server.base, flush=True)
    while not done.wait(0.5):
        pass
    server.stop()


if __name__ == "__main__":
    _main()
