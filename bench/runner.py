"""One timed run of one tool on one data set, and the checks around it."""

from __future__ import annotations

import argparse
import ctypes
import os
import shutil
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from common import DISK, KiB, MiB, SHM, TIME, human_size, log
from datasets import DataSet
from expected import Expected, TinyFiles
from proctree import TreeSampler, alive
from servers import Server
from tools import TOOLS, Inputs, Tool


@dataclass
class Run:
    tool: str
    dataset: str
    round: int
    wall: float
    cpu: float  # user + sys seconds of the process and its waited-for children
    rss_mib: float  # peak resident set size of the largest single process (GNU time)
    exit_code: int
    ok: bool
    problem: str = ""
    stderr_tail: str = ""
    tree_rss_mib: float = 0.0  # peak of the summed RSS over the tool's processes (sampled)
    tree_pss_mib: float = 0.0  # the summed PSS at that peak
    procs: int = 0  # most processes of the tool seen at once
    samples: int = 0  # how many times the tree was sampled
    sync_s: float | None = None  # disk sets: syncfs of DEST's file system right after the tool exited
    first_request_s: float | None = None  # tool start -> the server's first request (Python servers)
    server_requests: int | None = None  # requests the server counted during the run
    server_cpu: float | None = None  # the server's user + sys seconds during the run


def dest_root(ds: DataSet) -> Path:
    """Where `ds`'s download folders go: RAM, or a disk for the disk sets."""
    return (DISK if ds.dest == "disk" else SHM) / "runs"


def source(ds: DataSet) -> Path | None:
    """The folder nginx serves `ds`'s files from (None: its server computes them)."""
    return SHM / "data" / ds.folder if ds.server == "nginx" else None


def run_tool(tool: Tool, ds: DataSet, lst: Path, cfg: Path, exp: Expected | TinyFiles, rnd: int,
             server: Server | None, args: argparse.Namespace, ca: Path | None = None) -> Run:
    runs_dir = SHM / "runs"
    dest = dest_root(ds) / f"{ds.name}-{tool.name}-{rnd}"
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    errlog = runs_dir / f"{ds.name}-{tool.name}-{rnd}.stderr"
    argv = tool.command(Inputs(lst, cfg, dest, source(ds), ca), ds.extra_args(tool.name))
    timefile = runs_dir / f"{ds.name}-{tool.name}-{rnd}.time"
    # GNU time is the tool's parent only for its peak RSS (see _peak_rss_kib).
    argv = [TIME, "-v", "-o", str(timefile), *argv]
    timeout = max(args.timeout, ds.count * ds.per_file_timeout)
    if ds.dest == "disk":
        # Untimed: the write-back that earlier runs (and their deletion) left
        # behind must not land in this tool's run.
        syncfs(dest)
    stats = server is not None and server.has_stats
    if stats:
        assert server is not None
        server.stats()  # count afresh from here
        server_cpu0 = server.cpu()

    with open(os.devnull if tool.stderr_null else errlog, "wb") as err:
        # CLOCK_MONOTONIC, the clock the servers stamp the first request with.
        started = time.monotonic()
        t0 = time.perf_counter()
        # Own session, so that a timeout can kill the whole process group,
        # and the tree sampler can tell the tool's processes by session id.
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
            cwd=runs_dir, start_new_session=True,
        )
        sampler = TreeSampler(session=proc.pid, exclude=proc.pid).start()
        timed_out = threading.Event()

        def on_timeout() -> None:
            timed_out.set()
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

        timer = threading.Timer(timeout, on_timeout)
        timer.start()
        try:
            # wait4 rather than Popen.wait: it also returns the child's rusage
            # (CPU of all its threads and of any children it waited for).
            _, status, ru = os.wait4(proc.pid, 0)
        except BaseException:
            # Ctrl-C or SIGTERM of the driver: the tool is in its own session
            # and did not get the signal, so take it down before leaving.
            on_timeout()
            proc.wait()
            sampler.stop()
            raise
        finally:
            timer.cancel()
        wall = time.perf_counter() - t0
    proc.returncode = code = os.waitstatus_to_exitcode(status)  # tell Popen it was reaped
    peak = sampler.stop()
    strays = _kill_strays(proc.pid)
    sync_s = syncfs(dest) if ds.dest == "disk" else None

    first_request_s = server_requests = server_cpu = None
    if stats:
        assert server is not None
        server_cpu = server.cpu() - server_cpu0
        counted = server.stats()
        server_requests = int(counted["requests"] or 0)
        first = counted["first_request_monotonic"]
        first_request_s = None if first is None else float(first) - started

    # CPU from wait4: microsecond resolution, and it covers GNU time's
    # waited-for child (the tool) plus time's own ~1 ms.
    cpu = ru.ru_utime + ru.ru_stime
    rss_kib = _peak_rss_kib(timefile)
    timefile.unlink(missing_ok=True)

    tail = ""
    if not tool.stderr_null and errlog.exists():
        tail = "\n".join(errlog.read_text(errors="replace").strip().splitlines()[-8:])
        errlog.unlink()

    if timed_out.is_set():
        problem = f"killed after the {timeout:g} s timeout"
    else:
        checked = time.perf_counter()
        problem = exp.verify(dest)
        if time.perf_counter() - checked > 5:
            log(f"      (verified {ds.count:,} files in {time.perf_counter() - checked:.1f} s, untimed)")
        if not problem and code != 0:
            problem = f"files are right but exit status was {code}"
        if not problem and strays:
            problem = f"left {strays} process(es) running after it exited (killed)"
    if not args.keep:
        shutil.rmtree(dest, ignore_errors=True)
    return Run(
        tool.name, ds.name, rnd, wall, cpu, rss_kib / 1024, code, not problem, problem, tail if problem else "",
        # The tree's sum is never below its largest process: when sampling
        # missed the peak (a run of a few ms), GNU time's figure is the floor.
        tree_rss_mib=max(peak.rss / MiB, rss_kib / 1024 if rss_kib == rss_kib else 0.0),
        tree_pss_mib=peak.pss / MiB, procs=peak.procs, samples=peak.samples,
        sync_s=sync_s, first_request_s=first_request_s, server_requests=server_requests, server_cpu=server_cpu,
    )


def _kill_strays(session: int) -> int:
    """Kill what is left of the tool's session after it exited; how many there were.

    A tool that exits while its worker processes run on would otherwise go on
    loading the machine through the next tool's run, unmeasured.
    """
    strays = [pid for pid in TreeSampler(session, exclude=session).members() if alive(pid)]
    for pid in strays:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return len(strays)


_libc = ctypes.CDLL(None, use_errno=True)


def syncfs(folder: Path) -> float:
    """syncfs(2) the file system holding `folder`; the seconds it took.

    Not os.sync(): that would also wait for every other file system's dirty
    data, which has nothing to do with the tool.
    """
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        t0 = time.perf_counter()
        if _libc.syncfs(fd) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"syncfs {folder}: {os.strerror(err)}")
        return time.perf_counter() - t0
    finally:
        os.close(fd)


def filesystem(path: Path) -> tuple[str, str, str]:
    """(type, device, mount point) of the file system holding `path`, from /proc/mounts."""
    path = path.resolve()
    best = ("?", "?", "/")
    with open("/proc/mounts") as f:
        for line in f:
            device, mount, fstype = line.split()[:3]
            mount = mount.replace("\\040", " ")
            inside = path == Path(mount) or Path(mount) in path.parents
            if inside and len(mount) >= len(best[2]):
                best = (fstype, device, mount)
    return best


def _peak_rss_kib(path: Path) -> float:
    """The tool's peak RSS from GNU time -v's report (nan if it wrote none).

    Not wait4's ru_maxrss: Linux carries the RSS high-water mark across
    exec(), so a child forked from this driver reports at least the driver's
    own RSS (~20 MiB, far more once matplotlib or a data set is loaded).
    GNU time is a small C program, so its child's figure is the tool's own.
    """
    try:
        for line in path.read_text().splitlines():
            key, _, value = line.strip().rpartition(": ")
            if key == "Maximum resident set size (kbytes)":
                return float(value)
    except (OSError, ValueError):
        pass
    return float("nan")


def check_bars_draw(lst: Path, cfg: Path, ca: Path | None) -> str:
    """downloader-bars sends stderr to /dev/null, so check once, untimed, that
    --progress bar really draws when stderr is not a terminal; otherwise that
    row would silently measure a downloader that draws nothing."""
    tool = next(t for t in TOOLS if t.name == "downloader-bars")
    short = SHM / "lists" / "bars-check.txt"
    short.write_text("".join(lst.read_text().splitlines(keepends=True)[:5]))
    dest = SHM / "runs" / "bars-check"
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    try:
        out = subprocess.run(tool.command(Inputs(short, cfg, dest, None, ca), []), stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
    finally:
        shutil.rmtree(dest, ignore_errors=True)
    if out.returncode != 0:
        return f"NOT CHECKED: exit status {out.returncode}: {out.stderr.decode(errors='replace')[-300:]}"
    if not out.stderr.strip():
        return "NO: `--progress bar` wrote nothing to a non-terminal stderr, so that row measures no drawing"
    n = len(short.read_text().splitlines())
    return f"yes: {len(out.stderr):,} bytes on stderr for {n} files with stderr not a terminal"



def check_destination(ds: DataSet) -> str:
    """Make `ds`'s download root; refuse a disk set whose "disk" is RAM.

    Returns a line for RESULTS.md saying where the downloads went.
    """
    root = dest_root(ds)
    root.mkdir(parents=True, exist_ok=True)
    fstype, device, mount = filesystem(root)
    if ds.dest == "disk" and fstype in ("tmpfs", "ramfs"):
        raise SystemExit(f"bench: {ds.name} must download to a disk, but {root} is on {fstype}; "
                         "set BENCH_DISK to a folder on a real file system")
    if ds.server == "tiny":
        # A file costs tmpfs at least a page of RAM and an inode, whatever its size.
        st = os.statvfs(root)
        need, free = ds.count * 8 * KiB, st.f_bavail * st.f_frsize
        if free < need or st.f_favail < ds.count * 1.1:
            raise SystemExit(f"bench: {ds.name} needs about {human_size(need)} and {ds.count:,} inodes "
                             f"free under {root}; it has {human_size(free)} and {st.f_favail:,}")
    return f"{root} ({fstype} on {device}, mounted at {mount})"

