"""The tools under test: how each is started on a URL list."""

from __future__ import annotations

import functools
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Callable  # noqa: UP035 (3.9 needs typing's Callable)

from common import BENCH, PY, VENV_BIN


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

