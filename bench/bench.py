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
import dataclasses
import datetime as _dt
import importlib.metadata
import os
import platform
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator, Sequence  # noqa: UP035 (3.9)

BENCH = Path(__file__).resolve().parent
# This checkout's downloader is the one measured, whatever package the venv
# has installed: the driver imports it from here (version, help), and so do
# the tools it starts, through PYTHONPATH.
sys.path[:0] = [str(BENCH), str(BENCH.parent)]
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(BENCH.parent), os.environ.get("PYTHONPATH")]))
from common import CONCURRENCY, DISK, ROOT, SHM, holding, log  # noqa: E402
from datasets import DATASETS, SELECTIONS, DataSet  # noqa: E402
from expected import make_data, write_lists  # noqa: E402
from report import Report, write_report  # noqa: E402
from runner import Run, check_bars_draw, check_destination, run_tool  # noqa: E402
from servers import Server, make_certificate, start_nginx, start_python_server  # noqa: E402
from tools import DEFAULT_TOOLS, TOOL_NAMES, TOOLS, Tool, downloader_help, unsupported  # noqa: E402


def rotations(tools: Sequence[Tool], runs: int) -> Iterator[tuple[int, list[Tool]]]:
    """Round r runs every tool once, starting at a different tool each round,
    so no tool is always first (cold) or always right after a heavy one."""
    n = len(tools)
    for r in range(runs):
        k = r % n
        yield r + 1, list(tools[k:]) + list(tools[:k])



def tools_for(ds: DataSet, chosen: list[str] | None) -> list[Tool]:
    """The tools `ds` is run or listed with: --tools, or else the default ones
    and the set's own opt-in ones (a tool the set does not allow is listed
    as skipped, not left out)."""
    names = chosen if chosen is not None else [*DEFAULT_TOOLS, *ds.opt_in]
    return [t for t in TOOLS if t.name in names]


def skip_reason(tool: Tool, ds: DataSet) -> str:
    """Why `tool` does not run on `ds` ('' if it does); not a failure."""
    if why := unsupported(tool):
        return why
    if not ds.allows(tool.name):
        return ds.skip_why
    if tool.static_only and ds.server != "nginx":
        return "it copies the set's files, and this set's bodies are made by its server"
    return ""


def bench(args: argparse.Namespace) -> Report:
    sets = [_sized(DATASETS[n], args) for n in args.sets]
    SHM.mkdir(parents=True, exist_ok=True)
    (SHM / "runs").mkdir(exist_ok=True)
    runs: list[Run] = []
    notes: dict[str, str] = {}
    skipped: dict[str, dict[str, str]] = {}
    destinations: dict[str, str] = {}
    # One nginx per kind the sets ask for: plain, HTTPS, throttled.
    nginxes: dict[tuple[bool, str], Server] = {}
    ca: Path | None = None  # the HTTPS sets' CA, made once per invocation
    started = time.time()
    listed = [t for t in TOOLS if any(t in tools_for(ds, args.tools) for ds in sets)]
    for tool in listed:
        if why := unsupported(tool):
            log(f"== {tool.name}: {why}; not run")
    dask: subprocess.Popen[str] | None = None
    try:
        if any(t.name == "downloader-cluster" and not unsupported(t) for t in listed):
            dask = subprocess.Popen([sys.executable, str(Path(__file__).parent / "dask_cluster.py")],
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    stderr=subprocess.DEVNULL, text=True)
            assert dask.stdout is not None
            os.environ["BENCH_DASK"] = dask.stdout.readline().split()[-1]
        for ds in sets:  # before any run: a wrong BENCH_DISK should not cost a set's runs first
            destinations[ds.name] = check_destination(ds)
        for ds in sets:
            log(f"== {ds.name}: {ds.describe()}")
            log(f"   downloads into {destinations[ds.name]}")
            tools = tools_for(ds, args.tools)
            skipped[ds.name] = {t.name: why for t in tools if (why := skip_reason(t, ds))}
            for name, why in skipped[ds.name].items():
                if not why.startswith("option not supported"):
                    log(f"   skipped {name}: {why}")
            todo = [t for t in tools if t.name not in skipped[ds.name]]
            exp = make_data(ds)
            if ds.tls and ca is None:
                ca = make_certificate(SHM / "tls")
            own = start_python_server(ds) if ds.server != "nginx" else None
            try:
                if own:
                    server, base = own, f"{own.base}/f"
                else:
                    kind = (ds.tls, ds.rate)
                    if kind not in nginxes:
                        nginxes[kind] = start_nginx(SHM / "data", tls=ca.parent if ds.tls and ca else None,
                                                    rate=ds.rate)
                    server = nginxes[kind]
                    base = f"{server.base}/{ds.folder}"
                lst, cfg = write_lists(ds, base)
                set_ca = ca if ds.tls else None
                if any(t.name == "downloader-bars" for t in todo) and "bars" not in notes:
                    notes["bars"] = check_bars_draw(lst, cfg, set_ca)
                    log(f"   downloader-bars draws without a terminal: {notes['bars']}")
                for rnd, order in rotations(todo, ds.runs_for(args.runs)):
                    for tool in order:
                        run = run_tool(tool, ds, lst, cfg, exp, rnd, server, args, set_ca)
                        runs.append(run)
                        log_run(run)
            finally:
                if own:
                    own.stop()
    finally:
        if dask is not None:
            dask.communicate(timeout=30)  # stdin closed: it shuts down
        for nginx in nginxes.values():
            nginx.stop()
        shutil.rmtree(SHM / "runs", ignore_errors=True)
        shutil.rmtree(SHM / "lists", ignore_errors=True)
        shutil.rmtree(SHM / "tls", ignore_errors=True)
        shutil.rmtree(DISK / "runs", ignore_errors=True)
        if not args.keep_data:
            shutil.rmtree(SHM / "data", ignore_errors=True)
    return Report(
        command=" ".join(["bench/run.sh", *args.argv]),
        started=_dt.datetime.fromtimestamp(started).isoformat(timespec="seconds"),
        duration_s=round(time.time() - started, 1),
        runs_per_tool=args.runs,
        concurrency=CONCURRENCY,
        datasets=sets,
        tools=[t.name for t in listed],
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


def _first_line(argv: list[str]) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "not installed"
    text = (out.stdout or out.stderr).strip()
    return text.splitlines()[0] if text else "?"


def _dist_version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


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
        "downloader --split": "yes" if "--split" in downloader_help() else "no: --help has no --split",
        "requests": pyver("requests"),
        "parfive": pyver("parfive"),
        "pypdl": _dist_version("pypdl"),
        "aiohttp": pyver("aiohttp"),
        "nginx": _first_line(["nginx", "-v"]),
        "openssl": _first_line(["openssl", "version"]),
        "aria2c": _first_line(["aria2c", "--version"]),
        "wget2": _first_line(["wget2", "--version"]),
        "curl": _first_line(["curl", "--version"]),
    }


# ---------------------------------------------------------------- main


def parse_args(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="bench/run.sh", description=__doc__.splitlines()[0])
    ap.add_argument("set", nargs="?", default="all",
                    help=f"a selection, or several joined by commas: {', '.join(SELECTIONS)} (default: all)")
    ap.add_argument("--runs", type=int, default=3, help="timed runs per tool and data set (default 3)")
    ap.add_argument("--tools",
                    help=f"comma-separated subset of: {', '.join(TOOL_NAMES)} "
                         f"(default: all but {', '.join(n for n in TOOL_NAMES if n not in DEFAULT_TOOLS)}, "
                         "plus the opt-in tools a set names, e.g. dd-floor on large-disk)")
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
    chosen = [n.strip() for n in args.set.split(",") if n.strip()]
    unknown = [n for n in chosen if n not in SELECTIONS]
    if unknown or not chosen:
        ap.error(f"unknown selection {', '.join(unknown) or repr(args.set)}; choose from {', '.join(SELECTIONS)}")
    args.sets = list(dict.fromkeys(name for n in chosen for name in SELECTIONS[n]))  # in order, once each
    tools = None if args.tools is None else [t.strip() for t in args.tools.split(",") if t.strip()]
    unknown = sorted(set(tools or ()) - set(TOOL_NAMES))
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
    with holding(SHM, DISK):
        data = bench(args)
    write_report(data, args.out)
    failed = sum(1 for r in data.runs if not r.ok)
    log(f"wrote {args.out / 'RESULTS.md'} and chart.png ({failed} failed runs)")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
