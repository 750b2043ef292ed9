"""``-j auto``: how many workers a run should have."""
from __future__ import annotations

from collections.abc import Callable, Sized

AUTO_START, AUTO_MAX, AUTO_WINDOW = 2, 64, 0.5
# A finished file counts as this many bytes of work, so that many small
# files register as throughput too.
AUTO_FILE_WEIGHT = 64 * 1024


class AutoScaler:
    """``-j auto``: double the workers while each doubling raises
    throughput by 10 % or more, then hold.

    Latency-bound lists climb to many workers; CPU-bound ones (many tiny
    files on a fast link, where more threads only fight over the GIL)
    stop after a step. Windows start at the first finished work, so
    start-up costs don't pass for a slow pool.
    """

    def __init__(self, pool: Sized, work_done: Callable[[], int]) -> None:
        self.pool = pool  # read only: the run grows it
        self.work_done = work_done
        self.window_start: float | None = None
        self.done_at_start = 0
        self.best = 0.0
        self.stopped = False

    def tick(self, now: float, waiting: int) -> int:
        """Measure the last window; return how many workers to add."""
        if self.stopped:
            return 0
        done = self.work_done()
        if self.window_start is None:
            if done:
                self.window_start, self.done_at_start = now, done
            return 0
        if now - self.window_start < AUTO_WINDOW:
            return 0
        rate = (done - self.done_at_start) / (now - self.window_start)
        self.window_start, self.done_at_start = now, done
        size = len(self.pool)
        if rate < self.best * 1.1 or size >= AUTO_MAX:
            self.stopped = True
            return 0
        self.best = rate
        return min(size, AUTO_MAX - size) if waiting > size else 0
