"""``-P N``: the same thread pool in N worker processes.

The parent keeps everything that must be single — the list, the plan, the
DEST lock, the state database, the display, the report — and hands each
child its jobs on a queue of its own, so it always knows which jobs a
child holds: a child that dies (SIGKILL, out of memory) gives them back to
be tried once more elsewhere, and the run never hangs. Children post the
same events as threads do, each on a pipe of its own, and the stop flag is
plain shared memory: nothing a killed child held can stay locked (a shared
queue's write lock, or an Event's condition, would hang the others).

What must be one budget for the whole run lives in the parent and is
reached through ``multiprocessing.managers`` (the standard library's
remote objects, served by a thread of the parent): the names claimed
(two URLs never get one file), the host-wide Retry-After pauses and the
``--limit-rate`` bucket. ``--per-host`` needs nothing: the parent hands
out every job.
"""
from __future__ import annotations

import collections
import multiprocessing
import multiprocessing.connection
import multiprocessing.managers
import queue
import secrets
import signal
import socket
import threading
import time
from collections.abc import Hashable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .limits import HostGates, HostScheduler, RateLimiter
from .naming import Names
from .plan import Job
from .pool import Pool
from .retry import RetryPolicy
from .settings import Settings
from .shared import Cancel, Shared, Slot
from .worker import Fetcher, LocalHelpers, Work

WATCH_INTERVAL = 0.1
_REASON_BYTES = 1024


class _Server(multiprocessing.managers.Server):
    """A manager server that a thread of the parent runs, and that stops:
    the standard accepter loops forever, even on a closed listener."""

    stopped = False
    listener: Any
    address: Any

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.stop_event = threading.Event()  # serve_forever's, which serve_client reads

    def accepter(self) -> None:
        while not self.stopped:
            try:
                connection = self.listener.accept()
            except Exception:  # a client that failed to authenticate, or stop()
                continue
            threading.Thread(target=self.handle_request, args=(connection,),
                             daemon=True).start()

    def handle_request(self, connection: Any) -> None:
        try:
            super().handle_request(connection)
        except SystemExit:  # serve_client's way to end at EOF; caught here before 3.11
            pass

    def stop(self) -> None:
        self.stopped = True
        self.stop_event.set()
        # A blocked accept() is not woken by closing the socket: knock once.
        try:
            with socket.socket(socket.AF_UNIX) as knock:
                knock.connect(self.address)
        except OSError:
            pass
        self.listener.close()


class _Services(multiprocessing.managers.BaseManager):
    """The typeids a child asks the parent's server for."""


for _typeid in ("names", "gates", "limiter", "hosts"):
    _Services.register(_typeid)


@dataclass
class _Spec:
    """What a child needs to start: picklable, for fork and forkserver alike."""

    number: int
    settings: Settings
    root: Path
    threads: int
    jobs: Any
    events: Any
    """This child's end of its event pipe."""
    stop: Any
    """Shared memory: the run's stop reason; empty while it runs."""
    paused: Any
    address: Any
    authkey: bytes


class ProcessWorkers:
    """The parent's side: N children, each with ``threads`` worker threads."""

    lost_reason = "worker process died"
    requeue_lost = True

    def __init__(self, settings: Settings, root: Path, processes: int, threads: int,
                 names: Names, gates: HostGates, limiter: RateLimiter | None,
                 hosts: HostScheduler[Job] | None = None) -> None:
        self.settings = settings
        self.root = root
        self.processes = processes
        self.threads = threads
        # fork is quick, but safe only while this process has no other
        # thread (a lock held by one would stay held in the child).
        start = "fork" if threading.active_count() == 1 else "forkserver"
        self._context = multiprocessing.get_context(start)
        self._later = multiprocessing.get_context("forkserver")
        self.events = _Inbox()
        self._stop: Any = self._context.RawArray("c", _REASON_BYTES)
        self._paused: Any = self._context.RawValue("i", 0)
        registry: Any = type("Registry", (multiprocessing.managers.BaseManager,), {})
        registry.register("names", callable=lambda: names, exposed=("claim",))
        registry.register("gates", callable=lambda: gates, exposed=("pause", "remaining"))
        registry.register("limiter", callable=lambda: limiter, exposed=("book",))
        registry.register("hosts", callable=lambda: hosts, exposed=("borrow", "give_back"))
        self._authkey = secrets.token_bytes(32)
        self._server = _Server(registry._registry, None, self._authkey, "pickle")
        self._children: list[Any] = []
        self._queues: list[Any] = []
        self._held: list[dict[int, Job]] = []
        self._owner: dict[int, int] = {}
        self._stopping = False
        for number in range(processes):
            self._queues.append(None)
            self._held.append({})
            self._children.append(None)
            self._spawn(number, self._context)
        self._accepter = threading.Thread(target=self._server.accepter,
                                          name="downloader-services", daemon=True)
        self._accepter.start()

    def __len__(self) -> int:
        return self.processes * self.threads

    def _spawn(self, number: int, context: Any) -> None:
        self._queues[number] = jobs = context.Queue()
        # If a child dies, nothing waits on what this queue holds.
        jobs.cancel_join_thread()
        reader, writer = context.Pipe(duplex=False)
        spec = _Spec(number, self.settings, self.root, self.threads, jobs, writer,
                     self._stop, self._paused, self._server.address, self._authkey)
        child = context.Process(target=_child_main, args=(spec,),
                                name=f"downloader-process-{number}", daemon=True)
        child.start()
        writer.close()  # the child's end
        self.events.add(reader)
        self._children[number] = child

    def submit(self, job: Job) -> None:
        number = min(range(self.processes), key=lambda n: len(self._held[n]))
        self._held[number][job.index] = job
        self._owner[job.index] = number
        self._queues[number].put(job)

    def done(self, index: int) -> None:
        number = self._owner.pop(index, None)
        if number is not None:
            self._held[number].pop(index, None)

    def reap(self) -> list[Job]:
        """The jobs of children that died; each is replaced."""
        lost: list[Job] = []
        if self._stopping:
            return lost
        for number, child in enumerate(self._children):
            if child.is_alive():
                continue
            for index, job in self._held[number].items():
                self._owner.pop(index, None)
                lost.append(job)
            self._held[number] = {}
            # Its queue may hold jobs it never took: they are in ``lost``.
            self._spawn(number, self._later)
        return lost

    def grow(self, count: int) -> None:
        raise NotImplementedError("-j auto grows threads in one process only")

    def expire(self, now: float) -> None:
        """Each child watches its own ``--max-time`` deadlines."""

    def cut_all(self, reason: str) -> None:
        """Stop every child's transfers now (``.part`` files are kept)."""
        if not self._stop.value:
            self._stop.value = (reason.encode("utf-8")[:_REASON_BYTES - 1] or b"interrupted")

    def drain(self) -> list[Job]:
        """Jobs handed out that no child has started (as far as we know:
        the rest end with a result from the child)."""
        return []

    def shutdown(self, timeout: float | None = None) -> None:
        self._stopping = True
        for jobs in self._queues:
            jobs.put(None)
        deadline = None if timeout is None else time.monotonic() + timeout
        for child in self._children:
            child.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        for child in self._children:
            if child.is_alive():  # stuck past the deadline: stop it the hard way
                child.kill()
                child.join(1)
        self._server.stop()
        self._accepter.join(1)
        self.events.close()


class _Inbox:
    """The children's event pipes, read as one queue (``get``/``get_nowait``
    as ``queue.Queue`` has them). A pipe whose child died is dropped."""

    def __init__(self) -> None:
        self._readers: list[Any] = []  # multiprocessing.connection.Connection
        self._ready: collections.deque[Any] = collections.deque()

    def add(self, reader: Any) -> None:
        self._readers.append(reader)

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        if not self._ready:
            self._collect(timeout if block else 0)
        if not self._ready:
            raise queue.Empty
        return self._ready.popleft()

    def get_nowait(self) -> Any:
        return self.get(block=False)

    def _collect(self, timeout: float | None) -> None:
        ready: list[Any] = multiprocessing.connection.wait(self._readers, timeout)
        for reader in ready:
            try:
                while True:
                    self._ready.append(reader.recv())
                    if not reader.poll():
                        break
            except (EOFError, OSError):  # its child is gone
                self._readers.remove(reader)
                reader.close()

    def close(self) -> None:
        for reader in self._readers:
            reader.close()
        self._readers = []


# -- the child -----------------------------------------------------------------

class _RemoteGates:
    """The parent's host pauses, seen from a child. A shared counter says
    whether any host was ever paused, so the common case asks nobody."""

    def __init__(self, gates: Any, paused: Any) -> None:
        self._gates = gates
        self._paused = paused

    def pause(self, host: Hashable, seconds: float) -> None:
        self._gates.pause(host, seconds)
        self._paused.value = 1

    def wait(self, host: Hashable, cancelled: threading.Event,
             deadline: float | None = None) -> None:
        if not self._paused.value:
            return
        while True:
            remaining = self._gates.remaining(host)
            if deadline is not None:
                remaining = min(remaining, deadline - time.monotonic())
            if remaining <= 0 or cancelled.wait(remaining):
                return


class _RemoteLimiter:
    """The parent's token bucket, seen from a child."""

    def __init__(self, limiter: Any, rate: int) -> None:
        self._limiter = limiter
        self.rate = float(rate)

    def consume(self, nbytes: int, cancelled: threading.Event) -> None:
        wait = self._limiter.book(nbytes)
        if wait > 0:
            cancelled.wait(wait)


def _child_main(spec: _Spec) -> None:
    # The parent alone answers Ctrl-C and SIGTERM (a terminal sends SIGINT
    # to the whole process group); it tells the children to stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    services = _Services(address=spec.address, authkey=spec.authkey)
    services.connect()
    settings = spec.settings
    remote: Any = services
    limiter = None
    if settings.limit_rate:
        limiter = _RemoteLimiter(remote.limiter(), settings.limit_rate)
    cancelled = Cancel()
    post_lock = threading.Lock()  # the pipe has one writer: this child's threads take turns

    def post(event: object) -> None:
        with post_lock:
            spec.events.send(event)

    shared = Shared(settings, spec.root, remote.names(),
                    RetryPolicy(settings.retries, settings.retry_wait),
                    _RemoteGates(remote.gates(), spec.paused), limiter, cancelled, post)
    if settings.per_host is not None and settings.split > 1:
        shared.hosts = remote.hosts()  # one count for every child's connections
    fetcher = Fetcher(shared)
    local: queue.Queue[Work | None] = queue.Queue()
    first = spec.number * spec.threads
    pool: Pool[Work, Slot] = Pool(fetcher, fetcher.crashed, post,
                                  lambda n: Slot(first + n), leaving=fetcher.close, jobs=local)
    shared.helpers = LocalHelpers(pool)  # a split file's ranges stay in its process
    pool.grow(spec.threads)

    def feed() -> None:
        while True:
            job = spec.jobs.get()
            if job is None:
                return
            local.put(job)

    feeder = threading.Thread(target=feed, name="downloader-feeder", daemon=True)
    feeder.start()
    parent = multiprocessing.parent_process()
    while feeder.is_alive():
        orphaned = parent is not None and not parent.is_alive()
        if not cancelled.is_set() and (spec.stop.value or orphaned):
            cancelled.stop(spec.stop.value.decode("utf-8", "replace") or "interrupted")
            for slot in pool.slots:
                slot.handle.cut()
        if orphaned:
            return  # nobody to report to: the .part files stay for the next run
        feeder.join(WATCH_INTERVAL)
        now = time.monotonic()
        for slot in pool.slots:
            slot.handle.expire(now)
    pool.shutdown()
    spec.events.close()
