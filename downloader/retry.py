"""When to try again, and how long to wait first.

``RetryPolicy`` is an immutable value in the manner of urllib3's ``Retry``:
exponential backoff ``wait * 2**(n-1)``, capped, with +-50 % jitter;
``Retry-After`` (seconds or an HTTP date) wins when the server sends it.
"""
from __future__ import annotations

import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
# Statuses whose Retry-After speaks for the whole host, not one request.
HOST_PAUSE_STATUSES = frozenset({429, 503})
_SECONDS = re.compile(r"[0-9]+")


@dataclass(frozen=True)
class RetryPolicy:
    retries: int = 3
    """Extra attempts after the first."""
    wait: float = 1.0
    """Backoff before the first retry, in seconds."""
    max_wait: float = 60.0
    """Cap on any one exponential backoff."""
    max_retry_after: float = 300.0
    """Cap on a server's Retry-After: a cron job must still end."""

    def allows(self, attempts: int) -> bool:
        """Whether another attempt may follow ``attempts`` made so far."""
        return attempts <= self.retries

    def delay(self, attempts: int, retry_after: float | None = None,
              rand: Callable[[], float] = random.random) -> float:
        """Seconds to wait after ``attempts`` attempts (1 for the first)."""
        if retry_after is not None:
            return max(0.0, min(retry_after, self.max_retry_after))
        # The exponent is capped first: 2**1024 does not fit in a float.
        backoff = min(self.max_wait, self.wait * 2.0 ** min(attempts - 1, 64))
        return backoff * (0.5 + rand())


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """``Retry-After`` as seconds from now: delta-seconds or an HTTP date.

    Anything else is None, as if absent: the header comes from the server,
    and a bad one must not cost more than a normal backoff. Never raises.
    """
    if not value:
        return None
    value = value.strip()
    # ASCII only: "²".isdigit() is true, and float() refuses it.
    if _SECONDS.fullmatch(value):
        return float(value)  # thousands of digits make inf: the policy caps it
    try:
        when = parsedate_to_datetime(value)
        if when is None:  # how Python before 3.10 said "unparsable"
            return None
        return max(0.0, when.timestamp() - (time.time() if now is None else now))
    except (TypeError, ValueError, IndexError, OverflowError, OSError):
        return None
