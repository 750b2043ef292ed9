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
sys.path.insert(0, str(BENCH))
from common import CONCURRENCY, DISK, ROOT, SHM, log  # noqa: E402
from datasets import DATASETS, SELECTIONS, DataSet  # noqa: E402
from expected import make_data, write_lists  # noqa: E402
from report import Report, write_report  # noqa: E402
from runner import Run, check_bars_draw, check_destination, run_tool  # noqa: E402
from servers import Server, start_nginx, start_python_server  # noqa: E402
from tools import DEFAULT_TOOLS, TOOL_NAMES, TOOLS, Tool, downloader_help, unsupported  # noqa: E402


def rotations(tools: Sequence[Tool], runs: int) -> Iterator[tuple[int, list[Tool]]]:
    """Round r runs every tool once, starting at a different tool each round,
    so no tool is always first (cold) or always right after a heavy one."""
    n = len(tools)
    for r in range(runs):
        k = r % n
        yield r + 1, list(tools[k:]) + list(tools[:k])



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
    started = time.time()
    not_supported = {t.name: why for t in tools if (why := unsupported(t))}
    for name, why in not_supported.items():
        log(f"== {name}: {why}; not run")
    try:
        for ds in sets:  # before any run: a wrong BENCH_DISK should not cost a set's runs first
            destinations[ds.name] = check_destination(ds)
        if any(d.server == "nginx" for d in sets):
            nginx = start_nginx(SHM / "data")
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
