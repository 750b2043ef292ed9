"""``--dry-run``: what a run would fetch and where; no request, no file.

Entries are placed by the real run's ``Planner``, so duplicates, clashing
``out=`` paths and ``--if-exists skip`` come out as they would. What DEST
already holds (files, ``.part`` files, the state database) is read and
never written: DEST, its state folder and its lock are not created.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from .entries import Item
from .naming import PART_SUFFIX, Names
from .plan import Job, Planner, Repeat
from .scratch import Scratch
from .redact import shown_url
from .results import SKIPPED, Result
from .settings import Settings
from .state import StateDB, check_dest

FETCH, SKIP, REPEAT, ERROR = "fetch", "skip", "repeat", "error"
NAME_FROM_SERVER = "(name from the server)"


@dataclass(frozen=True)
class Step:
    """What the run would do with one entry."""

    where: str
    action: str
    """``fetch``, ``skip``, ``repeat`` (of an earlier entry) or ``error``."""
    url: str
    """As shown: credentials masked."""
    detail: str
    """The target relative to DEST (with a note), or what is wrong."""

    def line(self) -> str:
        return "\t".join((self.where, self.action, self.url, self.detail))


def plan_steps(items: Iterable[Item], settings: Settings,
               warn: Callable[[str], None]) -> Iterator[Step]:
    """One ``Step`` per item, in input order, as each is planned.
    ``DestinationError`` (at the first step) when the run could not start."""
    root = check_dest(settings.dest)
    db = StateDB(root, warn, read_only=True)
    try:
        scratch = Scratch()
        try:
            planner = Planner(settings, root, db, Names(scratch), scratch)
            for index, item in enumerate(items):
                yield _step(item, planner.place(index, item), settings, root)
        finally:
            scratch.close()
    finally:
        db.close()


def _step(item: Item, placed: Job | Result | Repeat, settings: Settings, root: Path) -> Step:
    url = shown_url(item.url)
    if isinstance(placed, Repeat):
        return Step(item.where, REPEAT, url, f"(same as {placed.first_where})")
    if isinstance(placed, Result):
        if placed.status == SKIPPED and placed.path is not None:
            return Step(item.where, SKIP, url, f"{_relative(placed.path, root)} (exists)")
        error = placed.error or "not a valid entry"
        return Step(item.where, ERROR, url, error.removeprefix(f"{item.where}: "))
    return Step(item.where, FETCH, url, _target(placed, settings, root))


def _target(job: Job, settings: Settings, root: Path) -> str:
    if job.relative is None:
        return NAME_FROM_SERVER
    note = ""
    if job.verify_existing:
        note = " (exists: kept if its sha256 matches)"
    elif (root / job.relative).is_file():
        note = {"update": " (exists: fetched if the server has a newer one)",
                "overwrite": " (exists: fetched again)"}.get(settings.if_exists, "")
    elif job.part is not None and job.part.path == job.relative \
            and (root / (job.relative + PART_SUFFIX)).is_file():
        note = f" (resumes {job.relative}{PART_SUFFIX} where the server allows)"
    return job.relative + note


def _relative(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


class StepCounts:
    """How many steps of each kind a dry run planned."""

    def __init__(self) -> None:
        self.counts = {action: 0 for action in (FETCH, SKIP, REPEAT, ERROR)}

    def add(self, step: Step) -> None:
        self.counts[step.action] += 1

    @property
    def bad(self) -> int:
        return self.counts[ERROR]

    def line(self) -> str:
        counts = self.counts
        return (f"dry run: {counts[FETCH]} to fetch, {counts[SKIP]} to skip, "
                f"{counts[REPEAT]} repeated, {counts[ERROR]} bad; nothing was downloaded")
