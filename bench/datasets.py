"""The data sets: how many files of what size, from which server, into RAM or disk."""

from __future__ import annotations

import functools
from dataclasses import dataclass

from common import CONCURRENCY, KiB, MiB, human_size
from content import TINY_MAX, TINY_MIN, tiny_size

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
    tls: bool = False  # nginx over HTTPS, with a certificate made for the run
    rate: str = ""  # nginx's limit_rate: a cap per connection, as a CDN or mirror sets it
    # Opt-in tools (not in the default --tools) that run on this set unless
    # --tools is given, e.g. dd-floor on the disk set.
    opt_in: tuple[str, ...] = ()
    # The tool its ratio column is against (issue 11's targets name one per
    # set); empty: the fastest peer.
    reference: str = ""

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
        where = f"latency server, {self.delay * 1000:.0f} ms per request" if self.slow else self._nginx()
        into = "downloads on disk" if self.dest == "disk" else "downloads in RAM"
        return f"{self.count:,} × {human_size(self.size)} = {human_size(self.total)}, {where}, {into}"

    def _nginx(self) -> str:
        how = "nginx over HTTPS (HTTP/1.1)" if self.tls else "nginx, sendfile"
        return f"{how}, limit_rate {self.rate} per connection" if self.rate else how


# Tools that run the millions set, and why the others do not.
MILLIONS_TOOLS = ("downloader", "downloader-P1", "downloader-P2", "downloader-Pauto", "aria2c", "wget2", "curl")
MILLIONS_SKIP = (
    "not run on the millions set, to keep it affordable: the naive baselines would add about 20 minutes "
    "each (1.1 ms a file here) to show what the small set already shows, parfive sends a HEAD before "
    "each GET (2 million requests) and makes every task up front, and downloader-bars and downloader-auto "
    "add nothing the -j 16 and -P rows do not show"
)

# The big-file sets run the tools their question is about; the rest are
# listed as skipped, with these reasons.
THROTTLED_TOOLS = ("downloader", "downloader-split", "aria2c", "pypdl", "parfive", "wget2", "curl")
THROTTLED_SKIP = (
    "not run on the throttled set: two files on capped connections take one stream 16 s whatever its "
    "client does, which the downloader, wget2 and curl rows show; the other variants and baselines add nothing"
)
LARGE_DISK_TOOLS = ("downloader", "downloader-split", "dd-floor", "aria2c", "wget2", "curl")
LARGE_DISK_SKIP = (
    "not run on the large-disk set: it compares downloader with the durable-write floor, the peers "
    "that fetch big files fastest stand beside it; the variants and baselines are in the large set"
)
TLS_TOOLS = ("downloader", "downloader-split", "naive-pool", "aria2c", "wget2", "curl", "parfive", "pypdl")
TLS_LARGE_TOOLS = tuple(t for t in TLS_TOOLS if t != "parfive")
TLS_SKIP = (
    "not run on the HTTPS sets: downloader's other variants take the same TLS path, and naive-pool stands "
    "for the hand-written requests loop"
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
        # Issue 11's big-file sets.
        DataSet("throttled", 2, 128 * MiB, rate="8m", tools=THROTTLED_TOOLS, skip_why=THROTTLED_SKIP,
                opt_in=("downloader-split", "pypdl"), reference="aria2c",
                # The splitters with their splitting on: aria2c as issue 11
                # names it, parfive with its default max_splits (5); pypdl
                # splits by default (5 segments).
                tool_args=(("aria2c", ("-x8", "-s8")), ("parfive", ("--default-splits",))),
                note="one connection is capped at 8 MiB/s, as CDNs and mirrors do: only a tool that fetches "
                     "byte ranges of a file at once can go faster (16 s a file on one stream)"),
        DataSet("large-disk", 4, 256 * MiB, source="large", dest="disk", tools=LARGE_DISK_TOOLS,
                skip_why=LARGE_DISK_SKIP, opt_in=("dd-floor",), reference="dd-floor",
                note="the large set written to a disk; dd-floor is the same bytes copied from RAM with "
                     "`dd conv=fsync`, the least a durable write of them costs. The peers do not fsync, "
                     "so their times are not durable times (see the sync after column)"),
        DataSet("medium-tls", 200, 1 * MiB, source="medium", tls=True, tools=TLS_TOOLS, skip_why=TLS_SKIP,
                reference="aria2c", note="the medium set over HTTPS"),
        DataSet("large-tls", 4, 256 * MiB, source="large", tls=True, tools=TLS_LARGE_TOOLS,
                skip_why=TLS_SKIP + "; parfive reads 1 KiB at a time (7.8 s on the plain large set)",
                reference="wget2", note="the large set over HTTPS"),
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
    "throttled": ["throttled"],
    "large-disk": ["large-disk"],
    "medium-tls": ["medium-tls"],
    "large-tls": ["large-tls"],
    "tiny": ["tiny", "tiny-latency"],
    "all": ["small", "small-disk", "medium", "large", "latency"],
    # Worker processes (-P): per-request cost in RAM and on disk, requests in
    # flight, and a list of millions, in one invocation.
    "scaling": ["small", "small-disk", "latency", "millions"],
    "processes": ["small", "small-disk", "latency"],
    # Shards on a Dask cluster (--cluster): per-request cost and requests in flight.
    "cluster": ["small", "latency"],
    # Issue 11: big files over throttled connections, to a disk, and over TLS.
    "bigfiles": ["throttled", "large-disk", "medium-tls", "large-tls"],
}
