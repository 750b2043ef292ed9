"""Peak memory of a whole process tree, sampled from /proc while it runs.

GNU time's "Maximum resident set size" is the largest single process's peak;
a downloader that runs several worker processes needs the sum. The kernel
keeps no high-water mark for a sum, so a thread samples it: every INTERVAL it
finds the processes of the tool's session and adds up their resident sets.

The tree is the tool's *session*: the driver starts GNU time with
start_new_session=True, so time's PID is the session id, and every process it
and the tool fork (threads, multiprocessing workers, a forkserver) inherits
it unless it calls setsid() itself, which none of the benchmarked tools do.
This kernel has no /proc/PID/task/TID/children, so descendants are found by
session rather than by walking parent links.

RSS counts a page shared by two processes (a forked child's copy-on-write
heap, shared libraries) once in each: the sum overstates a forked pool's real
footprint. PSS splits each shared page between its users, so the PSS sum is
what the tree really costs; reading it (/proc/PID/smaps_rollup walks the page
tables, ~0.4 ms a process) is too slow for every sample, so it is read only
when the RSS sum reaches a new peak by at least PSS_STEP: the PSS reported is
the tree's at (within PSS_STEP of) its RSS peak.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass

INTERVAL = 0.05  # seconds between samples
# ... but every 5 ms during the first quarter second, so that a tool that is
# done in 30 ms (curl on a small set) is still seen at least a few times.
EARLY_INTERVAL, EARLY = 0.005, 0.25
PSS_STEP = 1 << 20  # bytes the RSS peak must grow by before PSS is read again
_PAGE = os.sysconf("SC_PAGE_SIZE")


@dataclass
class TreePeak:
    rss: int = 0  # bytes: the largest sum of RSS over the tree seen in one sample
    pss: int = 0  # bytes: the tree's PSS sum at that peak
    procs: int = 0  # the most processes seen at once (GNU time not counted)
    samples: int = 0


def _stat(pid: int) -> list[bytes]:
    """The fields of /proc/PID/stat after comm: state, ppid, pgrp, session, ...
    ([] if the process is gone)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return []
    # comm, in parentheses, may hold spaces and parentheses: cut at the last ")".
    return data[data.rfind(b")") + 2 :].split()


def _session(pid: int) -> int | None:
    fields = _stat(pid)
    return int(fields[3]) if fields else None


def alive(pid: int) -> bool:
    """Running or sleeping: neither gone nor a zombie waiting to be reaped."""
    fields = _stat(pid)
    return bool(fields) and fields[0] not in (b"Z", b"X")


def _rss(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm", "rb") as f:
            return int(f.read().split()[1]) * _PAGE
    except (OSError, IndexError, ValueError):
        return 0  # gone since it was listed


def _pss(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup", "rb") as f:
            for line in f:
                if line.startswith(b"Pss:"):
                    return int(line.split()[1]) * 1024
    except (OSError, IndexError, ValueError):
        pass
    return 0


class TreeSampler:
    """Samples the processes of session `session`, except `exclude`, until stopped."""

    def __init__(self, session: int, exclude: int, interval: float = INTERVAL) -> None:
        self.session, self.exclude, self.interval = session, exclude, interval
        self.peak = TreePeak()
        self._member: dict[int, bool] = {}  # pid -> in the tree (looked up once per pid)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="tree-sampler", daemon=True)

    def start(self) -> TreeSampler:
        self._thread.start()
        return self

    def stop(self) -> TreePeak:
        self._stop.set()
        self._thread.join()
        return self.peak

    def _loop(self) -> None:
        early_until = time.monotonic() + EARLY
        while True:
            self.sample()
            wait = EARLY_INTERVAL if time.monotonic() < early_until else self.interval
            if self._stop.wait(min(wait, self.interval)):
                return

    def members(self) -> list[int]:
        """The PIDs in the tree now (zombies included: they hold no memory)."""
        listed = {int(n) for n in os.listdir("/proc") if n.isdigit()}
        # Forget the dead, so that a reused PID is looked at afresh.
        for pid in self._member.keys() - listed:
            del self._member[pid]
        out = []
        for pid in listed:
            member = self._member.get(pid)
            if member is None:
                member = self._member[pid] = pid != self.exclude and _session(pid) == self.session
            if member:
                out.append(pid)
        return out

    def sample(self) -> None:
        pids = self.members()
        rss = sum(_rss(pid) for pid in pids)
        peak = self.peak
        peak.samples += 1
        peak.procs = max(peak.procs, len(pids))
        if rss > peak.rss:
            if rss >= peak.rss + PSS_STEP or not peak.pss:
                peak.pss = sum(_pss(pid) for pid in pids)
            peak.rss = rss
