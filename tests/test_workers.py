"""Whatever happens in a worker, every entry ends with a result and the run
ends; a cut meant for one job never lands on the next; sessions close."""
from __future__ import annotations

import socket
import threading
import time

import pytest

from downloader import download_all
from downloader.pool import Pool
from downloader.session import SocketHandle, _Session


def test_a_cut_after_the_deadline_never_reaches_the_next_job() -> None:
    first, peer1 = socket.socketpair()
    second, peer2 = socket.socketpair()
    handle = SocketHandle()
    try:
        handle.begin(deadline=time.monotonic() - 1)  # a job whose time is up
        handle.attach(first)
        handle.end()  # ... but it ended before the watchdog looked
        handle.begin(deadline=None)  # the next job, on another connection
        handle.attach(second)
        handle.expire(time.monotonic())
        assert not handle.was_cut
        peer2.sendall(b"x")
        assert second.recv(1) == b"x"  # still open

        handle.end()
        handle.begin(deadline=time.monotonic() - 1)
        handle.attach(second)
        handle.expire(time.monotonic())
        assert handle.was_cut
        assert second.recv(1) == b""  # shut down: a blocked read returns at once
    finally:
        for s in (first, peer1, second, peer2):
            s.close()


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_worker_whose_failure_handler_raises_loses_no_job() -> None:
    events: list[object] = []

    def run(job: int, slot: int) -> object:
        if job == 2:
            raise RuntimeError("the job fails")
        return ("done", job)

    def crashed(job: int, slot: int, exc: BaseException) -> object:
        raise RuntimeError("and so does its failure handler")

    pool: Pool[int, int] = Pool(run, crashed, events.append, lambda n: n)
    pool.grow(1)
    for job in range(5):
        pool.jobs.put(job)
    lost: list[int] = []
    deadline = time.monotonic() + 10
    while len(events) + len(lost) < 5 and time.monotonic() < deadline:
        lost += pool.reap()
        time.sleep(0.01)
    pool.shutdown(timeout=5)
    assert lost == [2]
    assert sorted(e[1] for e in events) == [0, 1, 3, 4]  # type: ignore[index]


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_dead_worker_still_ends_its_entry_and_the_run(server, tmp_path, monkeypatch):
    urls = [server.add(f"/f{n}.bin", b"x" * 10) for n in range(6)]

    def broken(self):
        raise RuntimeError("bug")

    def broken_describe(exc):
        raise RuntimeError("another bug")

    monkeypatch.setattr("downloader.transfer.Transfer.run", broken)
    monkeypatch.setattr("downloader.worker.describe", broken_describe)
    done = threading.Event()
    outcome = {}

    def work() -> None:
        outcome["summary"] = download_all(urls, tmp_path / "d", workers=2)
        done.set()

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    assert done.wait(30), "the run hung"
    results = outcome["summary"].results
    assert len(results) == 6
    assert all(r.status == "failed" and r.error.startswith("internal error") for r in results)


def test_an_internal_error_keeps_attempts_and_http_status(server, tmp_path, monkeypatch):
    url = server.add("/a.bin", b"x" * 10)

    def broken(self, *args, **kwargs):
        raise RuntimeError("a bug of ours")

    monkeypatch.setattr("downloader.transfer.Transfer._receive", broken)
    (result,) = download_all([url], tmp_path / "d").results
    assert (result.status, result.attempts, result.http_status) == ("failed", 1, 200)
    assert result.error == "internal error: a bug of ours"


def test_each_worker_closes_its_session_when_it_ends(server, tmp_path, monkeypatch):
    urls = [server.add(f"/f{n}.bin", b"x" * 10, delay=0.05) for n in range(8)]
    opened: list[_Session] = []
    closed: list[_Session] = []
    real_init, real_close = _Session.__init__, _Session.close

    def init(self, *args, **kwargs):
        real_init(self, *args, **kwargs)
        opened.append(self)

    def close(self):
        closed.append(self)
        real_close(self)

    monkeypatch.setattr(_Session, "__init__", init)
    monkeypatch.setattr(_Session, "close", close)
    assert download_all(urls, tmp_path / "d", workers=4).ok
    assert opened and sorted(map(id, closed)) == sorted(map(id, opened))


@pytest.mark.parametrize("workers", [1, 3])
def test_worker_threads_are_gone_after_the_run(server, tmp_path, workers):
    urls = [server.add(f"/f{n}.bin", b"x") for n in range(5)]
    assert download_all(urls, tmp_path / "d", workers=workers).ok
    assert not [t for t in threading.enumerate() if t.name.startswith("downloader-")]
