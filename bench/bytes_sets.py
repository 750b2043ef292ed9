"""The byte path's sets side by side in one run: this checkout's downloader,
a base checkout's (``--base DIR``, e.g. ``git archive`` of the commit
before), wget2, aria2c and, on the disk sets, the durable-write floor
(``dd conv=fsync`` of the same files, one after the other).

    BENCH_SHM=/dev/shm/dlbench-bytes BENCH_DISK=/var/tmp/dlbench-bytes \\
        .venv/bin/python bench/bytes_sets.py --base /tmp/base [--runs 3] [--sets a,b]

Sets: large (4 × 256 MiB into RAM), large-disk and small-disk (2,000 ×
16 KiB) onto a disk, medium-tls (200 × 1 MiB) and large-tls from nginx over
TLS (a self-signed certificate made for the run). It uses bench.py's data,
runner (GNU time, the process-tree RSS sampler, verification) and tools,
and bytepath.py's nginx with HTTPS; until bench.py has these sets itself.
"""
from __future__ import annotations

import argparse
import os
import signal
import statistics
import sys
import tempfile
from pathlib import Path

import bench
import bytepath
from bench import SHM, VENV_BIN, DataSet, Tool, make_data, run_tool, write_lists

SETS = {
    "large": DataSet("large", 4, 256 << 20),
    "large-disk": DataSet("large-disk", 4, 256 << 20, dest="disk", source="large"),
    "small-disk": DataSet("small-disk", 2000, 16 << 10, dest="disk", source="small"),
    "medium-tls": DataSet("medium-tls", 200, 1 << 20, source="medium"),
    "large-tls": DataSet("large-tls", 4, 256 << 20, source="large"),
}
OPTIONS = ["-j", "16", "--progress", "none", "-q"]


# A diagnostic, not a tool anyone should run: what the fsyncs cost.
NO_SYNC = "import os, runpy; os.fsync = lambda fd: None; runpy.run_module('downloader', run_name='__main__')"


def downloader(pythonpath: Path, cert: str, sync: bool = True) -> Tool:
    run = ["-m", "downloader"] if sync else ["-c", NO_SYNC]
    return Tool("", lambda lst, _c, dest: [
        "env", f"PYTHONPATH={pythonpath}", f"REQUESTS_CA_BUNDLE={cert}",
        bench.PY, *run, "-i", str(lst), "-d", str(dest), *OPTIONS])


def tools(base: Path, cert: str, disk: bool) -> list[Tool]:
    peers = {t.name: t for t in bench.TOOLS}
    ca = f"--ca-certificate={cert}"
    chosen = [
        Tool("downloader", downloader(bench.ROOT, cert).argv, peer=False),
        Tool("downloader-base", downloader(base, cert).argv, peer=False),
        Tool("downloader-nosync", downloader(bench.ROOT, cert, sync=False).argv, peer=False),
        Tool("wget2", lambda lst, c, dest: [*peers["wget2"].argv(lst, c, dest), ca]),
        Tool("aria2c", lambda lst, c, dest: [*peers["aria2c"].argv(lst, c, dest), ca]),
    ]
    if disk:
        # The same bytes made durable, the simplest way: what no
        # downloader can beat by much.
        chosen.append(Tool("dd-fsync", lambda lst, _c, dest: [
            "sh", "-c", 'while read -r url; do f=${url##*/}; '
            f'dd if={SHM}/data/"$DIR"/"$f" of={dest}/"$f" bs=1M conv=fsync status=none; '
            f'done < {lst}']))
    return chosen


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", type=Path, required=True)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--sets", default=",".join(SETS))
    parser.add_argument("--timeout", type=float, default=600)
    args = parser.parse_args()
    args.keep = False
    sets = [SETS[name] for name in args.sets.split(",")]
    tmp = Path(tempfile.mkdtemp(prefix="bytes-nginx-"))
    tmp.chmod(0o755)
    expected = {ds.name: make_data(ds) for ds in sets}
    (SHM / "runs").mkdir(parents=True, exist_ok=True)
    nginx, bases = bytepath.start_nginx(SHM / "data", tmp)
    cert = str(tmp / "cert.pem")
    rows = []
    try:
        for ds in sets:
            scheme = "https" if ds.name.endswith("-tls") else "http"
            lst, cfg = write_lists(ds, f"{bases[scheme]}/{ds.folder}")
            chosen = tools(args.base, cert, ds.dest == "disk")
            runs: dict[str, list[bench.Run]] = {t.name: [] for t in chosen}
            os.environ["DIR"] = ds.folder  # for the dd loop
            for rnd in range(args.runs):
                for tool in chosen[rnd % len(chosen):] + chosen[:rnd % len(chosen)]:
                    run = run_tool(tool, ds, lst, cfg, expected[ds.name], rnd, None, args)
                    print(f"{ds.name} {tool.name} #{rnd}: {run.wall:.2f} s, cpu {run.cpu:.2f} s, "
                          f"rss {run.tree_rss_mib:.0f} MiB, {'ok' if run.ok else run.problem}",
                          file=sys.stderr, flush=True)
                    runs[tool.name].append(run)
            reference = "dd-fsync" if ds.dest == "disk" and ds.name != "small-disk" else "wget2"
            ref = statistics.median(r.wall for r in runs[reference])
            for name, done in runs.items():
                wall = statistics.median(r.wall for r in done)
                rows.append((ds.name, name, f"{wall:.2f}", f"{wall / ref:.2f}× {reference}",
                             f"{statistics.median(r.cpu for r in done):.2f}",
                             f"{max(r.tree_rss_mib for r in done):.0f}",
                             "ok" if all(r.ok for r in done) else "FAILED"))
    finally:
        nginx.send_signal(signal.SIGQUIT)
        nginx.wait(10)
    print(f"| set | tool | wall s (median of {args.runs}) | ratio | CPU s | peak RSS MiB | files |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
