"""Benchmark driver: `downloader` against other bulk downloaders on loopback.

    python bench/bench.py [SET] [--runs N] [--tools a,b] [--millions-count N]

Normally started by bench/run.sh, which installs the tools first. For each
data set it makes deterministic files under /dev/shm, serves them from
127.0.0.1 (nginx for the static sets, bench/latency_server.py for the slow
ones, bench/tiny_server.py for the millions set), runs every tool --runs
times, round-robin, into a download folder in RAM or on disk as the set says,
checks every download, and writes RESULTS.md, results.json and chart.png.
See bench/README.md.
"""

from __future__ import annotations

import argparse
import ctypes
import dataclasses
import datetime as _dt
import functools
import hashlib
import http.client
import json
import os
import platform
import select
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Sequence  # noqa: UP035 (3.9 needs typing's Callable)

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))
from content import CONTENT_VERSION, TINY_MAX, TINY_MIN, ContentPool, file_name, tiny_bytes, tiny_size  # noqa: E402
from proctree import TreeSampler, alive  # noqa: E402
from tiny_server import STATS_PATH  # noqa: E402

# Everything big lives in RAM: disk speed is not what is being measured, and
# tmpfs makes every tool's write cost the same memory copy.
SHM = Path(os.environ.get("BENCH_SHM", "/dev/shm/dlbench"))
# Except for the sets whose point is the disk: their download folders go here
# (a real file system, checked at start; never tmpfs).
DISK = Path(os.environ.get("BENCH_DISK", "/var/tmp/dlbench"))
PY = sys.executable  # the project venv's python (run.sh starts us with it)
VENV_BIN = Path(PY).parent
CONCURRENCY = 16
TIME = "/usr/bin/time"  # GNU time, for -v
KiB, MiB = 1024, 1024 * 1024


# ---------------------------------------------------------------- data sets


@dataclass(frozen=True)
class DataSet:
    name: str
    count: int
    size: int  # bytes per file (0: the millions set's 16-64 bytes, content.tiny_size)
    delay: float = 0.0  # > 0: served by the latency server, each answer this late
    note: str = ""
    server: str = "nginx"  # nginx (files under SHM/data), latency, or tiny (computed bodies)
    dest: str = "ram"  # where each tool's download folder is: "ram" (SHM) or "disk" (DISK)
    source: str = ""  # nginx: the data folder to serve, when shared with another set
    # Only these tools run it (empty: all); the others are listed as skipped, with why.
    tools: tuple[str, ...] = ()
    skip_why: str = ""
    # Options one tool needs for this set only, added after its usual ones.
    tool_args: tuple[tuple[str, tuple[str, ...]], ...] = ()
    per_file_timeout: float = 0.0  # a run may take count × this, if above --timeout
    runs: int | None = None  # runs per tool, when not --runs

    @functools.cached_property
    def total(self) -> int:
        if self.server == "tiny":
            return sum(tiny_size(i) for i in range(self.count))
        return self.count * self.size

    @property
    def slow(self) -> bool:
        return self.delay > 0

    @property
    def folder(self) -> str:
        """Its data's folder under SHM/data and in nginx's URLs."""
        return self.source or self.name

    def runs_for(self, default: int) -> int:
        return self.runs if self.runs is not None else default

    def allows(self, tool: str) -> bool:
        return not self.tools or tool in self.tools

    def extra_args(self, tool: str) -> list[str]:
        return [arg for name, args in self.tool_args if name == tool for arg in args]

    @property
    def ideal(self) -> float | None:
        """Best possible wall time with CONCURRENCY requests always in flight."""
        if not self.slow:
            return None
        return -(-self.count // CONCURRENCY) * self.delay

    def describe(self) -> str:
        if self.server == "tiny":
            return (f"{self.count:,} × {TINY_MIN}–{TINY_MAX} B = {human_size(self.total)}, "
                    "tiny server (any path, no delay), downloads in RAM")
        where = f"latency server, {self.delay * 1000:.0f} ms per request" if self.slow else "nginx, sendfile"
        into = "downloads on disk" if self.dest == "disk" else "downloads in RAM"
        return f"{self.count:,} × {human_size(self.size)} = {human_size(self.total)}, {where}, {into}"


# Tools that run the millions set, and why the others do not.
MILLIONS_TOOLS = ("downloader", "downloader-P1", "downloader-P2", "downloader-Pauto", "aria2c", "wget2", "curl")
MILLIONS_SKIP = (
    "not run on the millions set, to keep it affordable: the naive baselines would add about 20 minutes "
    "each (1.1 ms a file here) to show what the small set already shows, parfive sends a HEAD before "
    "each GET (2 million requests) and makes every task up front, and downloader-bars and downloader-auto "
    "add nothing the -j 16 and -P rows do not show"
)


DATASETS: dict[str, DataSet] = {
    d.name: d
    for d in (
        DataSet("small", 2000, 16 * KiB, note="per-request overhead dominates"),
        DataSet("small-disk", 2000, 16 * KiB, source="small", dest="disk",
                note="the small set, but every download folder on a disk: creating and fsyncing files costs "
                     "what it costs outside RAM"),
        DataSet("medium", 200, 1 * MiB),
        DataSet("large", 4, 256 * MiB, note="byte-copying speed; only 4 of the 16 slots are used"),
        DataSet("latency", 400, 64 * KiB, 0.2, note="requests in flight dominate", server="latency"),
        DataSet("millions", 1_000_000, 0, server="tiny", tools=MILLIONS_TOOLS, skip_why=MILLIONS_SKIP,
                # Without it aria2c makes every download object up front, about
                # 12 KiB a URL: 12 GB for a million, more than this machine has.
                # Its manual offers the option for lists with "a lot of URIs".
                tool_args=(("aria2c", ("--deferred-input=true",)),),
                per_file_timeout=0.006,
                note="a list of millions: reading it, queueing it, and a request and a file per line; "
                     "the request's fixed cost is all there is"),
        DataSet("tiny", 50, 4 * KiB, note="smoke test"),
        DataSet("tiny-latency", 20, 64 * KiB, 0.05, note="smoke test", server="latency"),
    )
}
SELECTIONS: dict[str, list[str]] = {
    "small": ["small"],
    "small-disk": ["small-disk"],
    "medium": ["medium"],
    "large": ["large"],
    "latency": ["latency"],
    "millions": ["millions"],
    "tiny": ["tiny", "tiny-latency"],
    "all": ["small", "small-disk", "medium", "large", "latency"],
    # Worker processes (-P): per-request cost in RAM and on disk, requests in
    # flight, and a list of millions, in one invocation.
    "scaling": ["small", "small-disk", "latency", "millions"],
    "processes": ["small", "small-disk", "latency"],
    # Shards on a Dask cluster (--cluster): per-request cost and requests in flight.
    "cluster": ["small", "latency"],
}


def human_size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:g} {unit}" if n == int(n) else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError


@dataclass
class Expected:
    """What a correct download of a data set looks like: a manifest."""

    files: dict[str, tuple[int, str]]  # name -> (size, sha256 hex)

    @property
    def total(self) -> int:
        return sum(size for size, _ in self.files.values())

    def verify(self, dest: Path) -> str:
        """'' if `dest` holds exactly the expected files with the expected bytes."""
        found: dict[str, int] = {}
        for dirpath, dirnames, filenames in os.walk(dest):
            rel = Path(dirpath).relative_to(dest)
            if rel == Path("."):
                # downloader's own run state (lock + SQLite), documented; not a download.
                dirnames[:] = [d for d in dirnames if d != ".downloader"]
            for fn in filenames:
                p = Path(dirpath) / fn
                found[str(p.relative_to(dest))] = p.stat().st_size
        missing = sorted(set(self.files) - set(found))
        extra = sorted(set(found) - set(self.files))
        problems: list[str] = []
        if missing:
            problems.append(f"{len(missing)} of {len(self.files)} files missing (e.g. {', '.join(missing[:3])})")
        if extra:
            problems.append(f"{len(extra)} unexpected files (e.g. {', '.join(extra[:3])})")
        wrong_size = [n for n, s in found.items() if n in self.files and s != self.files[n][0]]
        if wrong_size:
            n = wrong_size[0]
            problems.append(f"{len(wrong_size)} files of the wrong size (e.g. {n}: {found[n]} != {self.files[n][0]})")
        got_total = sum(s for n, s in found.items() if n in self.files)
        if got_total != self.total:
            problems.append(f"total {got_total:,} bytes != {self.total:,}")
        if problems:
            return "; ".join(problems)
        # Sizes and total agree: now the bytes themselves (outside the timed part).
        for name, (_, digest) in self.files.items():
            h = hashlib.sha256()
            with open(dest / name, "rb") as f:
                for block in iter(lambda: f.read(4 * MiB), b""):  # hashlib.file_digest is 3.11+
                    h.update(block)
            if h.hexdigest() != digest:
                return f"content differs from the server's (e.g. {name})"
        return ""


@dataclass
class TinyFiles:
    """The millions set's files: computed from their index, never listed.

    A manifest of a million names and digests would cost the driver hundreds
    of MiB; every file's bytes are cheap to compute again (content.tiny_bytes),
    so each downloaded file is read whole and compared byte for byte, which
    checks its size and content at once (stronger than a size + SHA-256 check).
    """

    count: int
    total: int

    def verify(self, dest: Path) -> str:
        problems: list[str] = []
        extra: list[str] = []
        listed = 0
        # scandir: names and types from the directory itself, no stat per file.
        with os.scandir(dest) as entries:
            for entry in entries:
                if entry.name == ".downloader" and entry.is_dir(follow_symlinks=False):
                    continue  # downloader's own run state, documented
                index = _tiny_index(entry.name)
                if index is None or index >= self.count or not entry.is_file(follow_symlinks=False):
                    extra.append(entry.name)
                else:
                    listed += 1
        missing: list[str] = []
        wrong_size: list[str] = []
        wrong_bytes: list[str] = []
        got_total = 0
        for i in range(self.count):
            name = file_name(i)
            try:
                with open(os.path.join(dest, name), "rb") as f:
                    body = f.read(TINY_MAX + 1)
            except FileNotFoundError:
                missing.append(name)
                continue
            got_total += len(body)
            want = tiny_bytes(i)
            if body != want:
                (wrong_size if len(body) != len(want) else wrong_bytes).append(name)
        if missing:
            problems.append(f"{len(missing)} of {self.count} files missing (e.g. {', '.join(missing[:3])})")
        if extra:
            problems.append(f"{len(extra)} unexpected files (e.g. {', '.join(sorted(extra)[:3])})")
        if wrong_size:
            problems.append(f"{len(wrong_size)} files of the wrong size (e.g. {wrong_size[0]})")
        if got_total != self.total:
            problems.append(f"total {got_total:,} bytes != {self.total:,}")
        if wrong_bytes:
            problems.append(f"{len(wrong_bytes)} files whose content differs from the server's (e.g. {wrong_bytes[0]})")
        if not problems and listed != self.count:  # cannot happen once none is missing; say so if it does
            problems.append(f"{listed} files listed, {self.count} expected")
        return "; ".join(problems)


def _tiny_index(name: str) -> int | None:
    if not (name.startswith("f") and name.endswith(".bin") and name[1:-4].isdigit()):
        return None
    index = int(name[1:-4])
    return index if file_name(index) == name else None


def make_data(ds: DataSet) -> Expected | TinyFiles:
    """The expected files of `ds`; nginx's sets are written under SHM/data too.

    A static set made by an earlier run with the same generator is reused
    (its manifest records the digests), so repeated runs start quickly.
    """
    pool: ContentPool | None = None
    if ds.server == "tiny":
        return TinyFiles(ds.count, ds.total)
    if ds.server == "latency":  # nothing on disk: the latency server makes the bytes
        pool = ContentPool(ds.size)
        return Expected({file_name(i): _digest(pool.file_bytes(i, ds.size), ds.size) for i in range(ds.count)})

    folder = SHM / "data" / ds.folder
    manifest = folder / "manifest.json"
    want = {"version": CONTENT_VERSION, "count": ds.count, "size": ds.size}
    if manifest.exists():
        saved = json.loads(manifest.read_text())
        if {k: saved.get(k) for k in want} == want and all(
            (folder / name).is_file() and (folder / name).stat().st_size == ds.size for name in saved["sha256"]
        ):
            return Expected({name: (ds.size, h) for name, h in saved["sha256"].items()})

    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    _world_readable(folder)
    pool = ContentPool(ds.size)
    files: dict[str, tuple[int, str]] = {}
    for i in range(ds.count):
        body = pool.file_bytes(i, ds.size)
        path = folder / file_name(i)
        path.write_bytes(body)
        path.chmod(0o644)
        files[file_name(i)] = _digest(body, ds.size)
    # manifest.json sits beside the data but no URL list names it.
    manifest.write_text(json.dumps({**want, "sha256": {n: h for n, (_, h) in files.items()}}))
    return Expected(files)


def _digest(body: bytes, size: int) -> tuple[int, str]:
    return size, hashlib.sha256(body).hexdigest()


def _world_readable(folder: Path) -> None:
    # nginx's worker runs as an unprivileged user: it needs to traverse every
    # folder from / down to the data.
    for p in [folder, *folder.parents]:
        if p == Path("/") or not str(p).startswith(str(SHM)):
            continue
        p.chmod(0o755)


def write_lists(ds: DataSet, base_url: str) -> tuple[Path, Path]:
    """The URL list (one per line) and curl's -K config for `ds`."""
    lists = SHM / "lists"
    lists.mkdir(parents=True, exist_ok=True)
    plain = lists / f"{ds.name}.txt"
    curlcfg = lists / f"{ds.name}.curl"
    # Line by line: a million URLs need not be in memory at once.
    with open(plain, "w") as lst, open(curlcfg, "w") as cfg:
        for i in range(ds.count):
            url = f"{base_url}/{file_name(i)}"
            lst.write(url + "\n")
            cfg.write(f'url = "{url}"\n')
    return plain, curlcfg


# ---------------------------------------------------------------- servers


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


NGINX_CONF = """\
# Written by bench/bench.py for one benchmark run; not a system config.
worker_processes 1;
worker_rlimit_nofile 16384;
daemon off;
master_process on;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;

events {{
    worker_connections 8192;
}}

http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 100000;
    keepalive_timeout 120s;
    types {{ }}
    default_type application/octet-stream;
    client_body_temp_path {tmp}/client_body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;

    server {{
        listen 127.0.0.1:{port} reuseport backlog=4096;
        root {root};
        location / {{ }}
    }}
}}
"""


class Server:
    """A server process we started, stopped by its own PID only."""

    def __init__(self, name: str, proc: subprocess.Popen[bytes], port: int, tmp: Path | None = None) -> None:
        self.name, self.proc, self.port, self.tmp = name, proc, port, tmp

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def has_stats(self) -> bool:
        """Whether it answers STATS_PATH (our Python servers; nginx does not)."""
        return self.name != "nginx"

    def stats(self) -> dict[str, float | int | None]:
        """Requests since the last call and the monotonic time of the first one
        (see bench/tiny_server.py); the count starts afresh."""
        # http.client, not urllib: no proxy from the environment can get in
        # the way of a loopback request.
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request("GET", STATS_PATH)
            return dict(json.loads(conn.getresponse().read()))
        finally:
            conn.close()

    def cpu(self) -> float:
        """The server process's user + system seconds so far."""
        with open(f"/proc/{self.proc.pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        # utime and stime are fields 14 and 15 of stat; 12 and 13 after the ")".
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        if self.proc.poll() is None:
            # nginx: SIGQUIT is the graceful shutdown of master and workers;
            # the latency server treats SIGTERM the same way.
            self.proc.send_signal(signal.SIGQUIT if self.name == "nginx" else signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.tmp is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)


def start_nginx(root: Path) -> Server:
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    tmp = Path(tempfile.mkdtemp(prefix="dlbench-nginx-"))
    tmp.chmod(0o755)
    port = free_port()
    conf = tmp / "nginx.conf"
    conf.write_text(NGINX_CONF.format(tmp=tmp, port=port, root=root))
    # -e: the startup error log, before the config's error_log is read;
    # otherwise nginx insists on /var/log/nginx/error.log.
    proc = subprocess.Popen(
        [nginx, "-p", str(tmp), "-c", str(conf), "-e", str(tmp / "error.log")],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    server = Server("nginx", proc, port, tmp)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            log = (tmp / "error.log").read_text() if (tmp / "error.log").exists() else ""
            server.stop()
            raise RuntimeError(f"nginx exited with {proc.returncode}:\n{log}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            pidfile = tmp / "nginx.pid"
            if pidfile.exists() and int(pidfile.read_text()) != proc.pid:
                raise RuntimeError("nginx.pid names another process: a stray nginx owns the port?")
            return server
        except OSError:
            time.sleep(0.05)
    server.stop()
    raise RuntimeError("nginx did not start listening within 10 s")


def start_python_server(ds: DataSet) -> Server:
    """The latency or the tiny server for `ds`, in a process of its own."""
    if ds.server == "latency":
        argv = [PY, str(BENCH / "latency_server.py"), "--port", "0", "--size", str(ds.size), "--delay", str(ds.delay)]
    else:
        argv = [PY, str(BENCH / "tiny_server.py"), "--port", "0"]
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], 30)
    line = proc.stdout.readline().decode() if ready else ""
    if not line.startswith("LISTENING "):
        Server(ds.server, proc, 0).stop()
        raise RuntimeError(f"{ds.server} server did not start: {line!r}")
    return Server(ds.server, proc, int(line.split()[1]))


# ---------------------------------------------------------------- tools


@dataclass(frozen=True)
class Tool:
    name: str
    # (url list, curl config, destination) -> argv
    argv: Callable[[Path, Path, Path], list[str]]
    peer: bool = True  # False for downloader's own variants
    stderr_null: bool = False  # the bars variant: drawing cost counts, output does not matter
    default: bool = True  # in --tools when it is not given
    needs: str = ""  # an option that `downloader --help` must show, else the tool is not run


def _downloader(*extra: str) -> Callable[[Path, Path, Path], list[str]]:
    return lambda lst, _cfg, dest: [str(VENV_BIN / "downloader"), "-i", str(lst), "-d", str(dest), *extra]


TOOLS: list[Tool] = [
    Tool("downloader", _downloader("-j", "16", "--progress", "none", "-q"), peer=False),
    # No -q: quiet mode turns the bars off, and drawing them is the point.
    Tool("downloader-bars", _downloader("-j", "16", "--progress", "bar"), peer=False, stderr_null=True),
    Tool("downloader-auto", _downloader("-j", "auto", "--progress", "none", "-q"), peer=False),
    # Worker processes. -P 2 and -P auto (2 here) run 8 threads each, so the
    # run keeps 16 requests in flight like every other tool. Opt-in: they
    # are reported as "option not supported" where -P does not exist.
    Tool("downloader-P1", _downloader("-P", "1", "-j", "16", "--progress", "none", "-q"),
         peer=False, default=False, needs="--processes"),
    Tool("downloader-P2", _downloader("-P", "2", "-j", "8", "--progress", "none", "-q"),
         peer=False, default=False, needs="--processes"),
    Tool("downloader-Pauto", _downloader("-P", "auto", "-j", "8", "--progress", "none", "-q"),
         peer=False, default=False, needs="--processes"),
    # Shards on a 2-worker Dask LocalCluster (bench/dask_cluster.py, started
    # once per bench run), 8 threads each: 16 in flight, like every peer.
    Tool("downloader-cluster", lambda lst, _c, dest: _downloader(
        "--cluster", os.environ["BENCH_DASK"], "--shard-size", "200", "-j", "8",
        "--progress", "none", "-q")(lst, _c, dest), peer=False, default=False, needs="--cluster"),
    Tool("naive-seq", lambda lst, _c, dest: [PY, str(BENCH / "naive.py"), "seq", str(lst), str(dest)]),
    Tool("naive-pool", lambda lst, _c, dest: [PY, str(BENCH / "naive.py"), "pool", str(lst), str(dest), "-j", "16"]),
    Tool(
        "aria2c",
        lambda lst, _c, dest: [
            "aria2c", "--no-conf=true", "-j16", "-x1", "-i", str(lst), f"--dir={dest}",
            "--allow-overwrite=true", "--auto-file-renaming=false",
            "--console-log-level=warn", "--summary-interval=0",
        ],
    ),
    Tool(
        "wget2",
        # --robots=off: wget2 fetches /robots.txt first by default.
        # -nd: never make host/path folders.
        lambda lst, _c, dest: [
            "wget2", "--max-threads=16", "-i", str(lst), "-P", str(dest), "-q", "-nd", "--robots=off",
        ],
    ),
    Tool(
        "curl",
        # --no-progress-meter: curl 7.88 in -Z mode still draws its parallel
        # meter under -s. -K: the URLs as `url = "..."` lines, no argv limit.
        lambda _l, cfg, dest: [
            "curl", "-Z", "--parallel-max", "16", "--remote-name-all", "--output-dir", str(dest),
            "--no-progress-meter", "-sS", "--fail", "-K", str(cfg),
        ],
    ),
    Tool("parfive", lambda lst, _c, dest: [PY, str(BENCH / "parfive_run.py"), str(lst), str(dest), "-j", "16"]),
]
TOOL_NAMES = [t.name for t in TOOLS]
DEFAULT_TOOLS = [t.name for t in TOOLS if t.default]


@functools.lru_cache(maxsize=None)
def downloader_help() -> str:
    try:
        out = subprocess.run([str(VENV_BIN / "downloader"), "--help"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"<downloader --help failed: {exc}>"
    return out.stdout + out.stderr


def unsupported(tool: Tool) -> str:
    """Why `tool` cannot run with this checkout's downloader ('' if it can)."""
    if tool.needs and tool.needs not in downloader_help():
        return f"option not supported: `downloader --help` does not mention {tool.needs}"
    return ""


# ---------------------------------------------------------------- one run


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


def run_tool(tool: Tool, ds: DataSet, lst: Path, cfg: Path, exp: Expected | TinyFiles, rnd: int,
             server: Server | None, args: argparse.Namespace) -> Run:
    runs_dir = SHM / "runs"
    dest = dest_root(ds) / f"{ds.name}-{tool.name}-{rnd}"
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    errlog = runs_dir / f"{ds.name}-{tool.name}-{rnd}.stderr"
    argv = tool.argv(lst, cfg, dest) + ds.extra_args(tool.name)
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


def check_bars_draw(lst: Path, cfg: Path) -> str:
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
        out = subprocess.run(tool.argv(short, cfg, dest), stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
    finally:
        shutil.rmtree(dest, ignore_errors=True)
    if out.returncode != 0:
        return f"NOT CHECKED: exit status {out.returncode}: {out.stderr.decode(errors='replace')[-300:]}"
    if not out.stderr.strip():
        return "NO: `--progress bar` wrote nothing to a non-terminal stderr, so that row measures no drawing"
    n = len(short.read_text().splitlines())
    return f"yes: {len(out.stderr):,} bytes on stderr for {n} files with stderr not a terminal"


# ---------------------------------------------------------------- driver


def rotations(tools: Sequence[Tool], runs: int) -> Iterator[tuple[int, list[Tool]]]:
    """Round r runs every tool once, starting at a different tool each round,
    so no tool is always first (cold) or always right after a heavy one."""
    n = len(tools)
    for r in range(runs):
        k = r % n
        yield r + 1, list(tools[k:]) + list(tools[:k])


@dataclass
class Report:
    """One invocation's results: what RESULTS.md, results.json and the chart show."""

    command: str
    started: str
    duration_s: float
    runs_per_tool: int
    concurrency: int
    datasets: list[DataSet]
    tools: list[str]
    notes: dict[str, str]
    environment: dict[str, str]
    runs: list[Run]
    # data set -> tool -> why it did not run there (not a failure)
    skipped: dict[str, dict[str, str]] = field(default_factory=dict)
    # data set -> where its download folders were, and on what file system
    destinations: dict[str, str] = field(default_factory=dict)


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


def bench(args: argparse.Namespace) -> Report:
    tools = [t for t in TOOLS if t.name in args.tools]
    sets = [_sized(DATASETS[n], args) for n in SELECTIONS[args.set]]
    SHM.mkdir(parents=True, exist_ok=True)
    (SHM / "runs").mkdir(exist_ok=True)
    runs: list[Run] = []
    notes: dict[str, str] = {}
    skipped: dict[str, dict[str, str]] = {}
    destinations: dict[str, str] = {}
    nginx: Server | None = None
    dask: subprocess.Popen[str] | None = None
    started = time.time()
    not_supported = {t.name: why for t in tools if (why := unsupported(t))}
    for name, why in not_supported.items():
        log(f"== {name}: {why}; not run")
    try:
        for ds in sets:  # before any run: a wrong BENCH_DISK should not cost a set's runs first
            destinations[ds.name] = check_destination(ds)
        if any(d.server == "nginx" for d in sets):
            nginx = start_nginx(SHM / "data")
        if any(t.name == "downloader-cluster" for t in tools) and "downloader-cluster" not in not_supported:
            dask = subprocess.Popen([PY, str(BENCH / "dask_cluster.py")], stdin=subprocess.PIPE,
                                    stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            assert dask.stdout is not None
            os.environ["BENCH_DASK"] = dask.stdout.readline().split()[-1]
        for ds in sets:
            log(f"== {ds.name}: {ds.describe()}")
            log(f"   downloads into {destinations[ds.name]}")
            skipped[ds.name] = {
                t.name: not_supported.get(t.name) or ds.skip_why
                for t in tools if t.name in not_supported or not ds.allows(t.name)
            }
            for name, why in skipped[ds.name].items():
                if name not in not_supported:
                    log(f"   skipped {name}: {why}")
            todo = [t for t in tools if t.name not in skipped[ds.name]]
            exp = make_data(ds)
            own = start_python_server(ds) if ds.server != "nginx" else None
            try:
                server = own or nginx
                assert server is not None
                base = f"{server.base}/{ds.folder}" if server is nginx else f"{server.base}/f"
                lst, cfg = write_lists(ds, base)
                if any(t.name == "downloader-bars" for t in todo) and "bars" not in notes:
                    notes["bars"] = check_bars_draw(lst, cfg)
                    log(f"   downloader-bars draws without a terminal: {notes['bars']}")
                for rnd, order in rotations(todo, ds.runs_for(args.runs)):
                    for tool in order:
                        run = run_tool(tool, ds, lst, cfg, exp, rnd, server, args)
                        runs.append(run)
                        log_run(run)
            finally:
                if own:
                    own.stop()
    finally:
        if dask is not None:
            dask.communicate(timeout=30)  # stdin closed: it shuts down
        if nginx:
            nginx.stop()
        shutil.rmtree(SHM / "runs", ignore_errors=True)
        shutil.rmtree(SHM / "lists", ignore_errors=True)
        shutil.rmtree(DISK / "runs", ignore_errors=True)
        if not args.keep_data:
            shutil.rmtree(SHM / "data", ignore_errors=True)
        for folder in (SHM, DISK):
            try:
                folder.rmdir()  # only if nothing else was left there
            except OSError:
                pass
    return Report(
        command=" ".join(["bench/run.sh", *args.argv]),
        started=_dt.datetime.fromtimestamp(started).isoformat(timespec="seconds"),
        duration_s=round(time.time() - started, 1),
        runs_per_tool=args.runs,
        concurrency=CONCURRENCY,
        datasets=sets,
        tools=[t.name for t in tools],
        notes=notes,
        environment=environment(),
        runs=runs,
        skipped=skipped,
        destinations=destinations,
    )


def _sized(ds: DataSet, args: argparse.Namespace) -> DataSet:
    """The millions set at --millions-count files and --millions-runs runs."""
    if ds.name != "millions":
        return ds
    return dataclasses.replace(ds, count=args.millions_count, runs=args.millions_runs)


def log_run(run: Run) -> None:
    status = "ok" if run.ok else f"FAILED: {run.problem}"
    extra = ""
    if run.sync_s is not None:
        extra += f"  sync {run.sync_s:5.2f} s"
    if run.first_request_s is not None:
        extra += f"  1st req {run.first_request_s:5.2f} s"
    if run.server_cpu is not None:
        extra += f"  server cpu {run.server_cpu:6.2f} s"
    log(f"   r{run.round} {run.tool:16} {run.wall:8.2f} s  cpu {run.cpu:7.2f} s  "
        f"rss {run.rss_mib:7.1f} MiB  tree {run.tree_rss_mib:7.1f} MiB/{run.procs}p{extra}  {status}")
    if not run.ok and run.stderr_tail:
        log("      " + run.stderr_tail.replace("\n", "\n      "))


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _first_line(argv: list[str]) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "not installed"
    text = (out.stdout or out.stderr).strip()
    return text.splitlines()[0] if text else "?"


def environment() -> dict[str, str]:
    def pyver(mod: str) -> str:
        try:
            return str(__import__(mod).__version__)
        except Exception:
            return "not installed"

    cpu = "?"
    try:
        cpu = next(ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name"))
    except (OSError, StopIteration):
        pass
    rev = _first_line(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"])
    dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--", "downloader"],
                           capture_output=True, text=True).stdout.strip()
    return {
        "cpu": f"{cpu}, {os.cpu_count()} cores",
        "kernel": platform.release(),
        "python": platform.python_version(),
        "downloader": f"{pyver('downloader')} (git {rev}{', downloader/ has uncommitted changes' if dirty else ''})",
        "downloader -P": "yes" if "--processes" in downloader_help() else "no: --help has no --processes",
        "requests": pyver("requests"),
        "parfive": pyver("parfive"),
        "aiohttp": pyver("aiohttp"),
        "nginx": _first_line(["nginx", "-v"]),
        "aria2c": _first_line(["aria2c", "--version"]),
        "wget2": _first_line(["wget2", "--version"]),
        "curl": _first_line(["curl", "--version"]),
    }


# ---------------------------------------------------------------- report


@dataclass
class Row:
    tool: str
    peer: bool
    ok_runs: int
    all_runs: int
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    rss: list[float] = field(default_factory=list)
    good: list[Run] = field(default_factory=list)  # the runs that passed
    skipped: str = ""  # why it did not run on this set

    @property
    def failed(self) -> bool:
        return self.ok_runs < self.all_runs

    @property
    def median(self) -> float | None:
        return statistics.median(self.wall) if self.wall else None


def summarize(data: Report) -> dict[str, list[Row]]:
    """Per data set, a row per tool; only runs that passed verification count."""
    peers = {t.name: t.peer for t in TOOLS}
    out: dict[str, list[Row]] = {}
    for ds in data.datasets:
        rows = []
        for name in data.tools:
            mine = [r for r in data.runs if r.dataset == ds.name and r.tool == name]
            good = [r for r in mine if r.ok]
            rows.append(Row(name, peers.get(name, True), len(good), len(mine),
                            [r.wall for r in good], [r.cpu for r in good], [r.rss_mib for r in good],
                            good, data.skipped.get(ds.name, {}).get(name, "")))
        out[ds.name] = rows
    return out


def _median_of(runs: list[Run], attr: str) -> float | None:
    values = [v for r in runs if (v := getattr(r, attr)) is not None]
    return statistics.median(values) if values else None


def _fmt(value: float | None, spec: str) -> str:
    return "—" if value is None else format(value, spec)


def reference(rows: list[Row]) -> tuple[Row | None, str]:
    """The row ratios are taken against: the fastest peer that never failed
    (or, when no peer ran, the fastest tool at all)."""
    clean = [r for r in rows if not r.failed and r.median is not None]
    peers = [r for r in clean if r.peer]
    pick = peers or clean
    if not pick:
        return None, ""
    best = min(pick, key=lambda r: r.median or 0.0)
    return best, ("best peer" if peers else "fastest tool (no peer ran)")


def _max_rss(values: list[float]) -> str:
    known = [v for v in values if v == v]  # nan: GNU time wrote no report
    return f"{max(known):.0f}" if known else "?"


def _runs(n: int) -> str:
    return f"{n} run" if n == 1 else f"{n} runs"


def _runs_exceptions(data: Report) -> str:
    odd = [f"{d.name}: {d.runs}" for d in data.datasets if d.runs is not None and d.runs != data.runs_per_tool]
    return f" ({', '.join(odd)})" if odd else ""


def write_report(data: Report, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(asdict(data), indent=1) + "\n")
    table = summarize(data)
    lines = [
        "# Benchmark results",
        "",
        f"`{data.command}` — started {data.started}, took {data.duration_s} s; "
        f"{_runs(data.runs_per_tool)} per tool and data set{_runs_exceptions(data)}, interleaved round-robin; "
        f"concurrency {data.concurrency} for every tool (`downloader-auto`: `-j auto`); "
        "servers and clients share this machine, on 127.0.0.1.",
        "",
        "What the columns mean: see bench/README.md. Wall, CPU: median over the runs that passed "
        "verification; min–max: their range; RSS: the highest peak over those runs; "
        "files/s, MB/s (10⁶ B/s): from the median wall time; "
        "÷ best peer: median wall ÷ the best peer's median wall (below 1 = faster than every peer).",
        "",
    ]
    bars = data.notes.get("bars")
    if bars:
        lines += [f"`--progress bar` draws when stderr is not a terminal (checked once, untimed): {bars}", ""]

    for ds in data.datasets:
        rows = table[ds.name]
        best, label = reference(rows)
        lines += [f"## {ds.name}: {ds.describe()}", ""]
        if ds.note:
            lines += [f"_{ds.note}._", ""]
        if ds.ideal:
            lines += [f"Ideal wall time with {CONCURRENCY} requests always in flight: "
                      f"{ds.ideal:.2f} s (÷ ideal column).", ""]
        lines += [f"Downloads into {data.destinations.get(ds.name, '?')}.", ""]
        for name, extra in ds.tool_args:
            if name in data.tools:
                lines += [f"`{name}` gets `{' '.join(extra)}` on this set.", ""]
        disk, stats, tiny = ds.dest == "disk", ds.server != "nginx", ds.server == "tiny"
        head = ["tool", "status", "wall median (s)", "min–max (s)", "CPU (s)", "peak RSS (MiB)",
                "tree RSS / PSS (MiB)", "procs", "files/s", "MB/s", f"÷ {label or 'best peer'}"]
        if ds.ideal:
            head.append("÷ ideal")
        if disk:
            head.append("sync after (s)")
        if stats:
            head.append("1st request (s)")
        if tiny:
            head += ["CPU/file (µs)", "server CPU (s)"]
        lines += ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|"]
        for r in sorted(rows, key=lambda r: (r.median is None, bool(r.skipped), r.median or 0.0)):
            status = "ok" if not r.failed else f"**FAILED** {r.all_runs - r.ok_runs}/{r.all_runs}"
            if r.skipped:
                status = "option not supported" if r.skipped.startswith("option not supported") else "skipped"
            if r.median is None:
                cells = [r.tool, status] + ["—"] * (len(head) - 2)
            else:
                med = r.median
                ratio = f"{med / best.median:.2f}" if best and best.median else "—"
                if best is r:
                    ratio = "**1.00**"
                pss = max(g.tree_pss_mib for g in r.good)
                tree = f"{max(g.tree_rss_mib for g in r.good):.0f} / {f'{pss:.0f}' if pss else '—'}"
                procs = max(g.procs for g in r.good)
                cells = [
                    r.tool, status, f"{med:.3f}", f"{min(r.wall):.3f}–{max(r.wall):.3f}",
                    f"{statistics.median(r.cpu):.2f}", _max_rss(r.rss), tree, str(procs) if procs else "—",
                    f"{ds.count / med:,.0f}", f"{ds.total / med / 1e6:,.1f}", ratio,
                ]
                if ds.ideal:
                    cells.append(f"{med / ds.ideal:.2f}")
                if disk:
                    cells.append(_fmt(_median_of(r.good, "sync_s"), ".2f"))
                if stats:
                    cells.append(_fmt(_median_of(r.good, "first_request_s"), ".3f"))
                if tiny:
                    cells += [f"{statistics.median(r.cpu) / ds.count * 1e6:,.0f}",
                              _fmt(_median_of(r.good, "server_cpu"), ".2f")]
            lines.append("| " + " | ".join(cells) + " |")
        reasons = sorted({why for r in rows if (why := r.skipped)})
        for why in reasons:
            names = ", ".join(f"`{r.tool}`" for r in rows if r.skipped == why)
            lines += ["", f"Not run: {names}: {why}."]
        own = next((r for r in rows if r.tool == "downloader"), None)
        if own and own.median and best and best.median and best.peer and not own.failed:
            verdict = "faster" if own.median < best.median else "slower"
            lines += ["", f"`downloader` vs the best peer (`{best.tool}`): "
                          f"{own.median / best.median:.2f}× the wall time ({verdict}), "
                          f"{statistics.median(own.cpu) / statistics.median(best.cpu):.2f}× the CPU."]
        failures = [r for r in data.runs if r.dataset == ds.name and not r.ok]
        if failures:
            lines += ["", "Failed runs (not counted above):", ""]
            for f in failures:
                lines.append(f"- `{f.tool}` run {f.round}: exit {f.exit_code}, {f.problem}")
                if f.stderr_tail:
                    lines += ["", "  ```", *("  " + ln for ln in f.stderr_tail.splitlines()), "  ```", ""]
        lines.append("")

    lines += ["## Environment", "", "| | |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in data.environment.items()]
    lines += ["", "Wall: time.perf_counter around spawn → os.wait4. CPU: user+sys from os.wait4's rusage "
              "(all threads, and children the tool waited for). Peak RSS: `/usr/bin/time -v`'s "
              "\"Maximum resident set size\", the largest single process. Tree RSS / PSS: the tool's "
              "processes summed, sampled from /proc every 50 ms (PSS at the RSS peak); procs: the most "
              "processes at once. Sync after: syncfs of DEST's file system once the tool exited. "
              "1st request: tool start → the first request the server saw. "
              "Every run's raw numbers are in results.json.", ""]
    (out / "RESULTS.md").write_text("\n".join(lines) + "\n")
    write_chart(data, table, out / "chart.png")


def write_chart(data: Report, table: dict[str, list[Row]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")  # no display on a server
    import matplotlib.pyplot as plt

    names = data.tools
    sets = list(table)
    fig, ax = plt.subplots(figsize=(max(7.0, 1.1 * len(names) * len(sets) * 0.35 + 3), 5.2))
    width = 0.8 / len(names)
    cmap = plt.get_cmap("tab10")
    top = 1.0
    for i, name in enumerate(names):
        xs, ys, failed_x, skipped_x = [], [], [], []
        for j, ds in enumerate(sets):
            rows = table[ds]
            best, _ = reference(rows)
            row = next(r for r in rows if r.tool == name)
            x = j - 0.4 + width * (i + 0.5)
            if row.skipped:
                skipped_x.append(x)
                continue
            if row.failed or row.median is None or not best or not best.median:
                failed_x.append(x)
                continue
            xs.append(x)
            ys.append(row.median / best.median)
        # A tool with no bar at all (not run anywhere) gets no legend entry:
        # matplotlib would show it in the default colour, not its own.
        ax.bar(xs, ys, width, label=name if xs else "_nolegend_", color=cmap(i % 10), edgecolor="black",
               linewidth=0.4)
        for x, y in zip(xs, ys):
            ax.text(x, y * 1.03, f"{y:.2f}", ha="center", va="bottom", fontsize=6, rotation=90)
            top = max(top, y)
        for x in failed_x:
            ax.text(x, 1.0, "FAILED", ha="center", va="bottom", fontsize=6, rotation=90, color="red")
        for x in skipped_x:
            ax.text(x, 1.0, "not run", ha="center", va="bottom", fontsize=6, rotation=90, color="grey")
    ax.axhline(1.0, color="grey", linewidth=0.8, linestyle="--")
    ax.set_yscale("log")  # the sequential loop is ~16x on latency; log keeps 1.1x visible
    ax.set_ylim(0.3, top * 2.2)
    # Plain numbers, not 10^0 / 10^1: readers compare ratios like 1.3x.
    ticks = [t for t in (0.5, 1, 2, 5, 10, 20, 50, 100, 200) if t <= top * 2.2]
    ax.set_yticks(ticks)
    ax.set_yticklabels([f"{t:g}×" for t in ticks])
    ax.minorticks_off()
    ax.set_xticks(range(len(sets)))
    ax.set_xticklabels(sets)
    ax.set_ylabel("wall time ÷ best peer's (log scale, lower is better)")
    ax.set_title(f"Median wall time relative to the best peer, {_runs(data.runs_per_tool)}{_runs_exceptions(data)}, "
                 "concurrency 16")
    ax.legend(fontsize=7, ncol=min(5, len(names)), loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)


# ---------------------------------------------------------------- main


def parse_args(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="bench/run.sh", description=__doc__.splitlines()[0])
    ap.add_argument("set", nargs="?", default="all", choices=list(SELECTIONS))
    ap.add_argument("--runs", type=int, default=3, help="timed runs per tool and data set (default 3)")
    ap.add_argument("--tools", default=",".join(DEFAULT_TOOLS),
                    help=f"comma-separated subset of: {', '.join(TOOL_NAMES)} "
                         f"(default: all but {', '.join(n for n in TOOL_NAMES if n not in DEFAULT_TOOLS)})")
    ap.add_argument("--timeout", type=float, default=600,
                    help="seconds before a run is killed and FAILED (the millions set allows at least 6 ms a file)")
    ap.add_argument("--millions-count", type=int, default=1_000_000, metavar="N",
                    help="URLs in the millions set (default 1,000,000)")
    ap.add_argument("--millions-runs", type=int, default=1, metavar="N",
                    help="runs per tool of the millions set, instead of --runs (default 1)")
    ap.add_argument("--out", type=Path, default=BENCH / "results", help="where RESULTS.md etc. go")
    ap.add_argument("--keep-data", action="store_true", help="keep the generated data in /dev/shm for next time")
    ap.add_argument("--keep", action="store_true", help="keep each run's download folder (debugging)")
    args = ap.parse_args(argv)
    args.argv = argv
    tools = [t.strip() for t in args.tools.split(",") if t.strip()]
    unknown = sorted(set(tools) - set(TOOL_NAMES))
    if unknown:
        ap.error(f"unknown tool(s) {', '.join(unknown)}; choose from {', '.join(TOOL_NAMES)}")
    if args.runs < 1 or args.millions_runs < 1:
        ap.error("--runs and --millions-runs must be at least 1")
    if args.millions_count < 1:
        ap.error("--millions-count must be at least 1")
    args.tools = tools
    return args


def _sigterm(signum: int, frame: object) -> None:
    # Unwind through the finally blocks, which stop the servers we started.
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    signal.signal(signal.SIGTERM, _sigterm)
    data = bench(args)
    write_report(data, args.out)
    failed = sum(1 for r in data.runs if not r.ok)
    log(f"wrote {args.out / 'RESULTS.md'} and chart.png ({failed} failed runs)")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
