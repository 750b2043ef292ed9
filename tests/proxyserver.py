"""A loopback forward proxy for tests: plain HTTP, absolute-form GETs,
relayed to 127.0.0.1 only; it remembers what it relayed (fixture ``proxy``
in conftest.py)."""
from __future__ import annotations

import threading
from http.client import HTTPConnection
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit


class ForwardProxy:
    """A plain-HTTP forward proxy on 127.0.0.1 that relays absolute-form GETs
    to loopback targets only, and remembers what it relayed."""

    HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-connection", "proxy-authorization",
                            "te", "trailer", "transfer-encoding", "upgrade"})

    def __init__(self) -> None:
        self.seen: list[tuple[str, dict[str, str]]] = []
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

            def do_GET(self) -> None:
                with proxy._lock:
                    proxy.seen.append((self.path, dict(self.headers.items())))
                target = urlsplit(self.path)
                if target.scheme != "http" or target.hostname != "127.0.0.1":
                    return self._reply(502, [], b"loopback only\n")  # never leave the machine
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() not in proxy.HOP_BY_HOP}
                upstream = HTTPConnection("127.0.0.1", target.port, timeout=5)
                try:
                    upstream.request("GET", target.path + (f"?{target.query}" if target.query else ""),
                                     headers=headers)
                    response = upstream.getresponse()
                    body = response.read()
                    relayed = [(k, v) for k, v in response.getheaders()
                               if k.lower() not in proxy.HOP_BY_HOP | {"content-length"}]
                finally:
                    upstream.close()
                self._reply(response.status, relayed, body)

            def _reply(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
                self.send_response(status)
                for name, value in headers:
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.base = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)

    def start(self) -> ForwardProxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def urls(self) -> list[str]:
        with self._lock:
            return [url for url, _ in self.seen]


def proxy_env(proxy_url: str | None, no_proxy: str | None = None) -> dict[str, str | None]:
    """Only HTTP_PROXY (and NO_PROXY when given): no other proxy variable
    of the caller's may change the route. A lower-case http_proxy would win
    over HTTP_PROXY, and REQUEST_METHOD makes Python ignore HTTP_PROXY.
    ``proxy_url`` None: no proxy variable at all."""
    env: dict[str, str | None] = {name: None for name in (
        "http_proxy", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY",
        "no_proxy", "NO_PROXY", "REQUEST_METHOD")}
    env["HTTP_PROXY"] = proxy_url
    if no_proxy is not None:
        env["NO_PROXY"] = no_proxy
    return env
