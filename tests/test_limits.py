"""Pure tests of the shared limits: per-host scheduling, host pauses, rate cap."""
from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from downloader.limits import HostGates, HostScheduler, RateLimiter, origin

A = ("https", "a.example", 443)
B = ("https", "b.example", 443)
SLACK = 0.02  # timer granularity, for lower bounds only


def in_thread(target: Callable[[], None]) -> threading.Thread:
    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread


def take_all(scheduler: HostScheduler) -> list:
    taken = []
    while (item := scheduler.take()) is not None:
        taken.append(item)
    return taken


# --- origin() -----------------------------------------------------------------

@pytest.mark.parametrize("url, expected", [
    ("http://example.org/a", ("http", "example.org", 80)),
    ("https://example.org/a", ("https", "example.org", 443)),
    ("https://example.org:8443/a", ("https", "example.org", 8443)),
    ("http://example.org:443/a", ("http", "example.org", 443)),
    ("HTTPS://EXAMPLE.org/a", ("https", "example.org", 443)),
    ("https://user:pw@example.org/a", ("https", "example.org", 443)),
    ("http://127.0.0.1:8000/", ("http", "127.0.0.1", 8000)),
])
def test_origin(url: str, expected: tuple[str, str, int]) -> None:
    assert origin(url) == expected


def test_default_port_is_the_same_origin_as_explicit() -> None:
    assert origin("https://example.org/a") == origin("https://example.org:443/b")
    assert origin("http://example.org/a") != origin("https://example.org/a")


# --- HostScheduler ------------------------------------------------------------

def test_no_limit_hands_out_every_job() -> None:
    scheduler: HostScheduler[str] = HostScheduler(None)
    jobs = [(A, "a1"), (B, "b1"), (A, "a2"), (A, "a3"), (B, "b2")]
    for host, job in jobs:
        scheduler.add(host, job)
    assert len(scheduler) == 5
    taken = take_all(scheduler)
    assert sorted(taken) == sorted(jobs)
    assert len(scheduler) == 0


def test_jobs_for_one_host_come_out_in_order() -> None:
    scheduler: HostScheduler[int] = HostScheduler(None)
    for n in range(5):
        scheduler.add(A, n)
    assert [job for _, job in take_all(scheduler)] == [0, 1, 2, 3, 4]


def test_limit_holds_a_host_until_done() -> None:
    scheduler: HostScheduler[str] = HostScheduler(2)
    for job in ("a1", "a2", "a3"):
        scheduler.add(A, job)
    assert scheduler.take() == (A, "a1")
    assert scheduler.take() == (A, "a2")
    assert scheduler.take() is None
    assert len(scheduler) == 1
    scheduler.done(A)
    assert scheduler.take() == (A, "a3")
    assert scheduler.take() is None


def test_a_full_host_does_not_hold_back_another() -> None:
    scheduler: HostScheduler[str] = HostScheduler(1)
    for host, job in [(A, "a1"), (A, "a2"), (A, "a3"), (B, "b1"), (B, "b2")]:
        scheduler.add(host, job)
    first, second = scheduler.take(), scheduler.take()
    assert {first, second} == {(A, "a1"), (B, "b1")}
    assert scheduler.take() is None
    scheduler.done(B)
    assert scheduler.take() == (B, "b2")
    assert scheduler.take() is None
    scheduler.done(A)
    assert scheduler.take() == (A, "a2")


def test_jobs_added_later_respect_the_limit() -> None:
    scheduler: HostScheduler[str] = HostScheduler(1)
    scheduler.add(A, "a1")
    assert scheduler.take() == (A, "a1")
    scheduler.add(A, "a2")
    assert scheduler.take() is None
    scheduler.add(B, "b1")
    assert scheduler.take() == (B, "b1")
    scheduler.done(A)
    assert scheduler.take() == (A, "a2")


def test_drain_returns_what_was_not_handed_out() -> None:
    scheduler: HostScheduler[str] = HostScheduler(1)
    for host, job in [(A, "a1"), (A, "a2"), (B, "b1"), (B, "b2")]:
        scheduler.add(host, job)
    handed = {job for _, job in take_all(scheduler)}
    assert handed == {"a1", "b1"}
    assert sorted(scheduler.drain()) == ["a2", "b2"]
    assert len(scheduler) == 0
    scheduler.done(A)
    scheduler.done(B)
    assert scheduler.take() is None


# --- HostGates ----------------------------------------------------------------

def test_unpaused_host_does_not_wait() -> None:
    gates = HostGates()
    done = threading.Event()
    thread = in_thread(lambda: (gates.wait(A, threading.Event()), done.set()))
    assert done.wait(5)
    thread.join(5)


def test_pause_holds_that_host_for_its_duration() -> None:
    gates = HostGates()
    gates.pause(A, 0.1)
    started = time.monotonic()
    gates.wait(A, threading.Event())
    assert time.monotonic() - started >= 0.1 - SLACK


def test_a_shorter_pause_does_not_shorten_a_longer_one() -> None:
    gates = HostGates()
    gates.pause(A, 0.1)
    gates.pause(A, 0.001)
    started = time.monotonic()
    gates.wait(A, threading.Event())
    assert time.monotonic() - started >= 0.1 - SLACK


def test_pause_on_one_host_leaves_others_free() -> None:
    gates = HostGates()
    gates.pause(A, 30)
    done = threading.Event()
    in_thread(lambda: (gates.wait(B, threading.Event()), done.set()))
    assert done.wait(5)


def test_cancel_ends_a_long_pause() -> None:
    gates = HostGates()
    gates.pause(A, 30)
    cancelled, done = threading.Event(), threading.Event()
    thread = in_thread(lambda: (gates.wait(A, cancelled), done.set()))
    assert not done.wait(0.05)  # really waiting
    cancelled.set()
    assert done.wait(5)
    thread.join(5)


def test_already_cancelled_does_not_wait() -> None:
    gates = HostGates()
    gates.pause(A, 30)
    cancelled, done = threading.Event(), threading.Event()
    cancelled.set()
    in_thread(lambda: (gates.wait(A, cancelled), done.set()))
    assert done.wait(5)


# --- RateLimiter --------------------------------------------------------------

@pytest.mark.parametrize("burst", [0.05, 0.2])
def test_rate_limiter_holds_the_rate(burst: float) -> None:
    rate, chunk, chunks = 100_000, 5_000, 9  # 45 KB at 100 KB/s: 0.45 s of data
    limiter = RateLimiter(rate, burst_seconds=burst)
    started = time.monotonic()
    for _ in range(chunks):
        limiter.consume(chunk, threading.Event())
    elapsed = time.monotonic() - started
    assert elapsed >= chunk * chunks / rate - burst - SLACK


def test_rate_limiter_burst_is_not_doubled_by_idling() -> None:
    # An idle bucket refills to one burst, not more: N bytes still take N/R - burst.
    rate, chunk, chunks, burst = 100_000, 5_000, 6, 0.1  # 0.3 s of data
    limiter = RateLimiter(rate, burst_seconds=burst)
    time.sleep(burst * 1.5)  # deliberately idle longer than the burst
    started = time.monotonic()
    for _ in range(chunks):
        limiter.consume(chunk, threading.Event())
    elapsed = time.monotonic() - started
    assert elapsed >= chunk * chunks / rate - burst - SLACK


def test_rate_is_shared_by_threads() -> None:
    rate, chunk, per_thread, threads = 200_000, 4_000, 5, 4  # 80 KB: 0.4 s of data
    burst = 0.05
    limiter = RateLimiter(rate, burst_seconds=burst)
    cancelled = threading.Event()

    def worker() -> None:
        for _ in range(per_thread):
            limiter.consume(chunk, cancelled)

    started = time.monotonic()
    workers = [in_thread(worker) for _ in range(threads)]
    for thread in workers:
        thread.join(5)
    elapsed = time.monotonic() - started
    assert elapsed >= chunk * per_thread * threads / rate - burst - SLACK


def test_rate_limiter_wait_is_cut_short_by_cancel() -> None:
    limiter = RateLimiter(1_000)
    cancelled, done = threading.Event(), threading.Event()
    cancelled.set()
    in_thread(lambda: (limiter.consume(1_000_000, cancelled), done.set()))  # 1000 s of data
    assert done.wait(5)
