"""A loopback server that answers with canned bytes, valid HTTP or not (stdlib only).

``RawServer.add(path, reply, ...)`` registers the replies for a path: the
n-th connection asking for it gets the n-th reply (the last one repeats).
Each connection reads one request head, writes its reply verbatim and
closes, so a reply with no length ends where the connection does.
"""
from __future__ import annotations

import contextlib
import socket
import threading
from typing import Dict, List, Optional, Sequence, Tuple

NOT_FOUND = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


def reply(status_line: str, headers: Sequence[Tuple[str, str]] = (), body: bytes = b"",
          *, raw_head: bytes = b"") -> bytes:
    """Build a reply: ``status_line`` and ``headers`` as Latin-1, then
    ``raw_head`` verbatim (for bytes no str could carry), then
    ``Connection: close`` and the body.

    The server closes every connection after one reply; saying so keeps the
    client from reusing one (a race it would lose now and then).
    """
    head = status_line + "\r\n" + "".join(f"{name}: {value}\r\n" for name, value in headers)
    return head.encode("latin-1") + raw_head + b"Connection: close\r\n\r\n" + body


class RawServer:
    """Accepts connections on 127.0.0.1 and writes each its canned reply."""

    __test__ = False  # never collected by pytest

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._replies: Dict[str, List[bytes]] = {}
        self._served: Dict[str, int] = {}
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)  # so stop() is noticed promptly
        self._stopping = threading.Event()
        self._threads: List[threading.Thread] = []
        self.port: int = self._listener.getsockname()[1]
        self.base = f"http://127.0.0.1:{self.port}"

    def add(self, path: str, *replies: bytes) -> str:
        """Serve ``replies`` in turn to the connections asking for ``path``; returns its URL."""
        with self._lock:
            self._replies[path] = list(replies)
            self._served[path] = 0
        return self.base + path

    def hits(self, path: str) -> int:
        with self._lock:
            return self._served.get(path, 0)

    def start(self) -> RawServer:
        thread = threading.Thread(target=self._accept, name=f"RawServer:{self.port}", daemon=True)
        thread.start()
        self._threads.append(thread)
        return self

    def stop(self) -> None:
        self._stopping.set()
        for thread in list(self._threads):
            thread.join(timeout=5)
        self._listener.close()

    def __enter__(self) -> RawServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _accept(self) -> None:
        while not self._stopping.is_set():
            try:
                conn, _ = self._listener.accept()
            except (socket.timeout, OSError):
                continue
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            thread.start()
            self._threads.append(thread)

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(5)
            head = self._read_head(conn)
            if head is None:
                return
            parts = head.split(b"\r\n", 1)[0].split()
            path = parts[1].decode("latin-1").split("?", 1)[0] if len(parts) > 1 else ""
            with self._lock:
                replies = self._replies.get(path)
                if replies:
                    n = self._served[path]
                    self._served[path] = n + 1
                    data = replies[min(n, len(replies) - 1)]
                else:
                    data = NOT_FOUND
            with contextlib.suppress(OSError):
                conn.sendall(data)
                # A FIN, not a reset: the client must see every byte, then the end.
                conn.shutdown(socket.SHUT_WR)

    @staticmethod
    def _read_head(conn: socket.socket) -> Optional[bytes]:
        data = b""
        while b"\r\n\r\n" not in data:
            try:
                chunk = conn.recv(65536)
            except OSError:
                return None
            if not chunk:
                return None
            data += chunk
        return data.split(b"\r\n\r\n", 1)[0]
