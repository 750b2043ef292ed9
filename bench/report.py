"""RESULTS.md, results.json and chart.png from one invocation's runs."""

from __future__ import annotations

import json
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path

from common import CONCURRENCY
from datasets import DataSet
from runner import Run
from tools import TOOLS


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
    """Per data set, a row per tool that ran or was skipped there; only runs
    that passed verification count."""
    peers = {t.name: t.peer for t in TOOLS}
    out: dict[str, list[Row]] = {}
    for ds in data.datasets:
        rows = []
        for name in data.tools:
            mine = [r for r in data.runs if r.dataset == ds.name and r.tool == name]
            good = [r for r in mine if r.ok]
            if not mine and name not in data.skipped.get(ds.name, {}):
                continue  # an opt-in tool of another set
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


def reference(rows: list[Row], ds: DataSet) -> tuple[Row | None, str]:
    """The row ratios are taken against: the set's named reference tool, or
    else the fastest peer that never failed (or, when no peer ran, the
    fastest tool at all)."""
    clean = [r for r in rows if not r.failed and r.median is not None]
    named = next((r for r in clean if r.tool == ds.reference), None)
    if named:
        return named, named.tool
    peers = [r for r in clean if r.peer]
    pick = peers or clean
    if not pick:
        return None, ""
    best = min(pick, key=lambda r: r.median or 0.0)
    return best, ("best peer" if peers else "fastest tool (no peer ran)")


def per_round(row: Row, ref: Row) -> float | None:
    """The median of row's wall ÷ ref's wall in the same round: each ratio is
    of two runs made minutes apart at most, which a shared, drifting machine
    disturbs less than a ratio of medians."""
    ref_wall = {r.round: r.wall for r in ref.good}
    ratios = [g.wall / ref_wall[g.round] for g in row.good if g.round in ref_wall]
    return statistics.median(ratios) if ratios else None


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
        "÷ best peer: median wall ÷ the best peer's median wall (below 1 = faster than every peer); "
        "a set that names a reference tool (issue 11's targets) has ÷ that tool instead, and its median "
        "of per-round ratios (÷ … per round).",
        "",
    ]
    bars = data.notes.get("bars")
    if bars:
        lines += [f"`--progress bar` draws when stderr is not a terminal (checked once, untimed): {bars}", ""]

    for ds in data.datasets:
        rows = table[ds.name]
        best, label = reference(rows, ds)
        paired = bool(ds.reference)
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
        if paired:
            head.append(f"÷ {label or 'best peer'} per round")
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
                if paired:
                    cells.append(_fmt(per_round(r, best) if best else None, ".2f"))
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
        for own in (r for r in rows if r.tool in ("downloader", "downloader-split")):
            if own.median and best and best.median and (best.peer or best.tool == ds.reference) and not own.failed:
                verdict = "faster" if own.median < best.median else "slower"
                against = "the reference" if best.tool == ds.reference else "the best peer"
                lines += ["", f"`{own.tool}` vs {against} (`{best.tool}`): "
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
    # tab10 repeats after 10 tools (pypdl came out in downloader's colour).
    cmap = plt.get_cmap("tab10" if len(names) <= 10 else "tab20")
    top = 1.0
    for i, name in enumerate(names):
        xs, ys, failed_x, skipped_x = [], [], [], []
        for j, ds in enumerate(sets):
            rows = table[ds]
            best, _ = reference(rows, next(d for d in data.datasets if d.name == ds))
            row = next((r for r in rows if r.tool == name), None)
            if row is None:
                continue  # not listed on this set
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
        ax.bar(xs, ys, width, label=name if xs else "_nolegend_", color=cmap(i % cmap.N), edgecolor="black",
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
    ax.set_ylabel("wall time ÷ the reference's (log scale, lower is better)")
    ax.set_title("Median wall time relative to the best peer or the set's reference, "
                 f"{_runs(data.runs_per_tool)}{_runs_exceptions(data)}, concurrency 16")
    ax.legend(fontsize=7, ncol=min(5, len(names)), loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)

