"""The tools under test: how each is started on a URL list."""

from __future__ import annotations

import functools
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Callable  # noqa: UP035 (3.9 needs typing's Callable)

from common import BENCH, CONCURRENCY, PY, VENV_BIN


@dataclass(frozen=True)
class Inputs:
    """What a tool is started on, for one run."""

    url_list: Path  # one URL a line
    curl_config: Path  # the same URLs as curl -K lines
    dest: Path  # the download folder
    source: Path | None  # the set's files as nginx serves them (static sets), for dd-floor
    ca: Path | None  # HTTPS sets: the run's CA certificate, which the tool must trust


@dataclass(frozen=True)
class Tool:
    name: str
    argv: Callable[[Inputs], list[str]]
    peer: bool = True  # False for downloader's own variants and the dd floor
    stderr_null: bool = False  # the bars variant: drawing cost counts, output does not matter
    default: bool = True  # in --tools when it is not given
    needs: str = ""  # an option that `downloader --help` must show, else the tool is not run
    # How the tool is told to trust the CA of the HTTPS sets ("{ca}": its
    # file). Every tool verifies the certificate; none is run insecure.
    trust: tuple[str, ...] = ()
    static_only: bool = False  # copies the set's files, so needs a set nginx serves from SHM/data

    def command(self, inputs: Inputs, extra: list[str]) -> list[str]:
        """Its argv for one run: its own options, the CA if any, then the set's `extra`."""
        ca = [arg.format(ca=inputs.ca) for arg in self.trust] if inputs.ca else []
        return [*self.argv(inputs), *ca, *extra]


def _downloader(*extra: str) -> Callable[[Inputs], list[str]]:
    return lambda i: [str(VENV_BIN / "downloader"), "-i", str(i.url_list), "-d", str(i.dest), *extra]


def _script(name: str, *extra: str) -> Callable[[Inputs], list[str]]:
    """One of the Python baselines in bench/."""
    return lambda i: [PY, str(BENCH / name), *extra, str(i.url_list), str(i.dest)]


def _dd_floor(i: Inputs) -> list[str]:
    # The same bytes, written as durably as downloader writes them (each file
    # fsynced before dd exits), by the simplest program there is: a copy
    # from RAM, CONCURRENCY files at once like the tools (4 on large-disk).
    # xargs exits non-zero if any dd failed.
    script = (
        'sed "s#.*/##" "$1" | xargs -P "$4" -I{} '
        'dd if="$2/{}" of="$3/{}" bs=4M conv=fsync status=none'
    )
    return ["sh", "-c", script, "dd-floor", str(i.url_list), str(i.source), str(i.dest), str(CONCURRENCY)]


_QUIET = ("--progress", "none", "-q")
_DOWNLOADER_CA = ("--ca-bundle", "{ca}")
_SCRIPT_CA = ("--cacert", "{ca}")

TOOLS: list[Tool] = [
    Tool("downloader", _downloader("-j", "16", *_QUIET), peer=False, trust=_DOWNLOADER_CA),
    # No -q: quiet mode turns the bars off, and drawing them is the point.
    Tool("downloader-bars", _downloader("-j", "16", "--progress", "bar"), peer=False, stderr_null=True,
         trust=_DOWNLOADER_CA),
    Tool("downloader-auto", _downloader("-j", "auto", *_QUIET), peer=False, trust=_DOWNLOADER_CA),
    # Worker processes. -P 2 and -P auto (2 here) run 8 threads each, so the
    # run keeps 16 requests in flight like every other tool. Opt-in: they
    # are reported as "option not supported" where -P does not exist.
    Tool("downloader-P1", _downloader("-P", "1", "-j", "16", *_QUIET),
         peer=False, default=False, needs="--processes", trust=_DOWNLOADER_CA),
    Tool("downloader-P2", _downloader("-P", "2", "-j", "8", *_QUIET),
         peer=False, default=False, needs="--processes", trust=_DOWNLOADER_CA),
    Tool("downloader-Pauto", _downloader("-P", "auto", "-j", "8", *_QUIET),
         peer=False, default=False, needs="--processes", trust=_DOWNLOADER_CA),
    # One file in 8 byte ranges at once (issue 11), like aria2c -x8 -s8.
    # Opt-in, and "option not supported" until --split exists.
    Tool("downloader-split", _downloader("-j", "16", "--split", "8", *_QUIET),
         peer=False, default=False, needs="--split", trust=_DOWNLOADER_CA),
    # Shards on a 2-worker Dask LocalCluster (bench/dask_cluster.py, started
    # once per bench run), 8 threads each: 16 in flight, like every peer.
    Tool("downloader-cluster", lambda i: _downloader(
        "--cluster", os.environ["BENCH_DASK"], "--shard-size", "200", "-j", "8", *_QUIET)(i),
         peer=False, default=False, needs="--cluster", trust=_DOWNLOADER_CA),
    Tool("naive-seq", _script("naive.py", "seq"), trust=_SCRIPT_CA),
    Tool("naive-pool", lambda i: [*_script("naive.py", "pool")(i), "-j", "16"], trust=_SCRIPT_CA),
    Tool(
        "aria2c",
        lambda i: [
            "aria2c", "--no-conf=true", "-j16", "-x1", "-i", str(i.url_list), f"--dir={i.dest}",
            "--allow-overwrite=true", "--auto-file-renaming=false",
            "--console-log-level=warn", "--summary-interval=0",
        ],
        trust=("--ca-certificate={ca}",),
    ),
    Tool(
        "wget2",
        # --robots=off: wget2 fetches /robots.txt first by default.
        # -nd: never make host/path folders.
        lambda i: [
            "wget2", "--max-threads=16", "-i", str(i.url_list), "-P", str(i.dest), "-q", "-nd", "--robots=off",
        ],
        trust=("--ca-certificate={ca}",),
    ),
    Tool(
        "curl",
        # --no-progress-meter: curl 7.88 in -Z mode still draws its parallel
        # meter under -s. -K: the URLs as `url = "..."` lines, no argv limit.
        # --parallel-immediate: without it curl waits to see whether the
        # first connection to a host can multiplex, and then queues that
        # host's HTTP/1.1 transfers on it one after another (2 throttled
        # files took it 32 s, not 16).
        lambda i: [
            "curl", "-Z", "--parallel-max", "16", "--parallel-immediate", "--remote-name-all",
            "--output-dir", str(i.dest),
            "--no-progress-meter", "-sS", "--fail", "-K", str(i.curl_config),
        ],
        trust=("--cacert", "{ca}"),
    ),
    Tool("parfive", lambda i: [*_script("parfive_run.py")(i), "-j", "16"], trust=_SCRIPT_CA),
    # Opt-in: a throttled-set peer (its default is 5 segments a file).
    Tool("pypdl", lambda i: [*_script("pypdl_run.py")(i), "-j", "16"], default=False, trust=_SCRIPT_CA),
    # The durable-write floor of the disk sets: not a downloader, not a peer.
    Tool("dd-floor", _dd_floor, peer=False, default=False, static_only=True),
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

