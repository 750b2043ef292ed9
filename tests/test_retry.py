"""Pure tests of the retry policy and Retry-After parsing."""
from __future__ import annotations

import random
from email.utils import formatdate

import pytest

from downloader.retry import RetryPolicy, parse_retry_after

NOW = 1_767_225_600.0  # 2026-01-01T00:00:00Z: a fixed "now" for HTTP dates
LOW, MID, HIGH = (lambda: 0.0), (lambda: 0.5), (lambda: 0.999999)


@pytest.mark.parametrize("retries, attempts, allowed", [
    (3, 1, True), (3, 4, False), (0, 1, False), (1, 1, True),
])
def test_allows_counts_retries_after_the_first_attempt(retries: int, attempts: int,
                                                       allowed: bool) -> None:
    assert RetryPolicy(retries=retries).allows(attempts) is allowed


def test_total_attempts_are_one_plus_retries() -> None:
    policy = RetryPolicy(retries=4)
    attempts = 1
    while policy.allows(attempts):
        attempts += 1
    assert attempts == 5


def test_delay_doubles_each_attempt() -> None:
    wait = 0.25
    policy = RetryPolicy(retries=10, wait=wait, max_wait=1e9)
    delays = [policy.delay(n, rand=MID) for n in range(1, 6)]
    assert delays[0] == pytest.approx(wait)
    assert [b / a for a, b in zip(delays, delays[1:])] == pytest.approx([2.0] * 4)


@pytest.mark.parametrize("attempts", [1, 2, 5])
def test_jitter_stays_within_fifty_percent(attempts: int) -> None:
    policy = RetryPolicy(retries=10, wait=1.0, max_wait=1e9)
    base = 2 ** (attempts - 1)
    assert policy.delay(attempts, rand=LOW) == pytest.approx(0.5 * base)
    assert policy.delay(attempts, rand=HIGH) < 1.5 * base
    rng = random.Random(7)
    samples = [policy.delay(attempts, rand=rng.random) for _ in range(500)]
    assert all(0.5 * base <= s <= 1.5 * base for s in samples)
    assert len(set(samples)) > 1  # it really is jittered


def test_backoff_is_capped_at_max_wait() -> None:
    policy = RetryPolicy(retries=50, wait=1.0, max_wait=5.0)
    assert policy.delay(10, rand=MID) == pytest.approx(5.0)
    assert policy.delay(10, rand=HIGH) <= 1.5 * 5.0


def test_cap_holds_for_very_many_retries() -> None:
    # 2**1100 does not fit a float: the cap must apply without overflowing.
    policy = RetryPolicy(retries=5000, wait=1.0, max_wait=60.0)
    assert policy.delay(1100, rand=MID) == pytest.approx(60.0)


@pytest.mark.parametrize("retry_after, expected", [(7.0, 7.0), (0.0, 0.0)])
@pytest.mark.parametrize("rand", [LOW, HIGH])
def test_retry_after_wins_over_backoff(retry_after: float, expected: float, rand) -> None:
    policy = RetryPolicy(retries=3, wait=1.0, max_wait=60.0)
    assert policy.delay(3, retry_after=retry_after, rand=rand) == expected


def test_retry_after_is_capped() -> None:
    policy = RetryPolicy(max_retry_after=300.0)
    assert policy.delay(1, retry_after=86_400.0, rand=MID) == 300.0


def test_policy_is_immutable() -> None:
    with pytest.raises(AttributeError):
        RetryPolicy().retries = 9  # type: ignore[misc]


@pytest.mark.parametrize("value, expected", [
    ("120", 120.0),
    ("  5 ", 5.0),
    (formatdate(NOW + 30, usegmt=True), 30.0),
    (formatdate(NOW + 3600, usegmt=True), 3600.0),
    (formatdate(NOW - 30, usegmt=True), 0.0),
])
def test_parse_retry_after(value: str, expected: float) -> None:
    assert parse_retry_after(value, now=NOW) == pytest.approx(expected)


@pytest.mark.parametrize("value", [
    None, "", "soon", "-5", "+5", "1.5", "1_000", "1e3", "Wed, 99 Foo 2015 25:61:00 GMT",
    # Bytes a server may send, as requests decodes them (Latin-1):
    # "\u00b2".isdigit() and "\u0663".isdigit() are true, and float() refuses both.
    "\u00b2", "\u00b9\u00b3", "\u0663", "\x00", "5\x00",
    "Wed, 21 Oct 99999 07:28:00 GMT", "Wed, 21 Oct 2015 07:28:00 +9999",
])
def test_parse_retry_after_garbage_is_none(value: str | None) -> None:
    """Neither whole seconds nor an HTTP date: None, as if absent, never an exception."""
    assert parse_retry_after(value, now=NOW) is None


def test_parse_retry_after_of_thousands_of_digits_is_capped_by_the_policy() -> None:
    seconds = parse_retry_after("9" * 5000, now=NOW)
    assert seconds is not None and seconds > 1e9
    assert RetryPolicy(max_retry_after=300.0).delay(1, retry_after=seconds) == 300.0
