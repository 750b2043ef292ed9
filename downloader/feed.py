"""The input, read by a thread of its own.

A list may come slowly (a pipe into ``-i -``, a caller's generator that
computes its URLs): reading it in the main thread would hold up every
event until the next line came. The reader thread puts items on a bounded
queue, and the main thread takes what is there when it has room for more.
"""
from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator

from .entries import Item

_END = object()
PUT_WAIT = 0.1  # how often a reader blocked on a full queue checks it should stop


class _Failed:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


class Feed:
    """``items``, read ahead by at most ``size``. An exception raised while
    reading them is raised again by ``take``, in the main thread."""

    def __init__(self, items: Iterable[Item], size: int) -> None:
        self.done = False
        self._queue: queue.Queue[object] = queue.Queue(maxsize=size)
        self._stop = threading.Event()
        # A daemon: a pipe that never ends must not keep the process alive.
        self._thread = threading.Thread(target=self._read, args=(items,),
                                        name="downloader-input", daemon=True)

    def start(self) -> None:
        """Start reading (``take`` does, if nobody did before)."""
        if not self._thread.is_alive() and self._thread.ident is None:
            self._thread.start()

    def _read(self, items: Iterable[Item]) -> None:
        try:
            for item in items:
                if not self._put(item):
                    return
        except BaseException as exc:  # handed to the main thread
            self._put(_Failed(exc))
            return
        self._put(_END)

    def _put(self, value: object) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(value, timeout=PUT_WAIT)
                return True
            except queue.Full:
                continue
        return False

    def take(self, limit: int, wait: float = 0.0, gather: float = 0.0) -> list[Item]:
        """Up to ``limit`` items: those read already, waiting up to ``wait``
        seconds for the first and ``gather`` seconds in all for more."""
        self.start()
        items: list[Item] = []
        deadline = time.monotonic() + gather
        while len(items) < limit and not self.done:
            timeout = wait if not items else deadline - time.monotonic()
            try:
                value = self._queue.get(timeout=timeout) if timeout > 0 \
                    else self._queue.get_nowait()
            except queue.Empty:
                break
            if value is _END:
                self.done = True
            elif isinstance(value, _Failed):
                self.done = True
                raise value.exc
            else:
                items.append(value)  # type: ignore[arg-type]
        return items

    def rest(self, stop: Callable[[], bool]) -> Iterator[Item]:
        """Every item still to come, waiting for each, until ``stop()``
        (checked every ``PUT_WAIT`` seconds while none comes)."""
        while not self.done and not stop():
            yield from self.take(1024, wait=PUT_WAIT)

    def close(self) -> None:
        """Stop reading (at the reader's next item)."""
        self._stop.set()
