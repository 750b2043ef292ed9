"""The library's entry points: ``download_all`` and ``iter_download``."""
from __future__ import annotations

import inspect
from collections.abc import Iterable, Iterator
from concurrent.futures import Executor
from pathlib import Path
from typing import Any

from .runs import Run, run
from .entries import EntryLike, from_library
from .progress import Reporter, make_reporter
from .results import Result, Summary, Tally
from .settings import Settings, public_settings


def download_all(urls: Iterable[EntryLike], dest: str | Path = "downloads", *,
                 progress: str | bool = "none", executor: Executor | None = None,
                 shard_size: int | None = None, shard: tuple[int, int] | None = None,
                 **settings: Any) -> Summary:
    """Download every URL in ``urls`` into ``dest``; return a ``Summary``.

    ``settings`` are the command line's, as keywords (``workers``,
    ``retries``, ``timeout``, ``per_host``, ...: see ``Settings``).
    Failed downloads are results, never exceptions. Raises ``ValueError``
    for nonsense arguments, ``TypeError`` for a lone string or an unknown
    keyword, ``DestinationError`` / ``DestinationLocked`` when the run
    cannot start. KeyboardInterrupt stops the pool (keeping ``.part``
    files) and is re-raised.

    ``executor`` (any ``concurrent.futures.Executor`` whose workers can
    import ``downloader``, such as a Dask client's ``get_executor()``),
    ``shard_size`` or ``shard=(K, N)`` make it a sharded run (README, "Many
    machines"): the Summary then holds the failures and ``counts``.
    """
    checked = Settings.build(dest, **settings)
    # The caller holds the whole list anyway: check every value before the
    # first request, as the summary will hold a result for each.
    items = list(from_library(urls))
    if executor is not None or shard_size is not None or shard is not None:
        from .cluster import sharded
        if progress is True or progress is False:
            progress = "auto" if progress else "none"
        return sharded(items, checked, progress, executor=executor, shard_size=shard_size,
                       shard=shard)
    summary, interruption = run(items, checked, _reporter(progress))
    if interruption is not None:
        raise interruption
    return summary


def iter_download(urls: Iterable[EntryLike], dest: str | Path = "downloads", *,
                  progress: str | bool = "none", **settings: Any) -> Iterator[Result]:
    """Download every URL in ``urls`` into ``dest``, yielding each
    ``Result`` as it finishes (in the order they finish, not input order).

    ``urls`` may be a generator of unknown length: it is read as the pool
    needs work, and nothing is kept per finished entry, so memory stays
    flat however long it is. Settings and errors are ``download_all``'s;
    a value that is no entry raises ``TypeError`` when it is reached.
    Leaving early (``break``, ``close()``; ``contextlib.closing`` makes it
    prompt) stops the pool, keeps ``.part`` files for the next run and
    releases DEST. KeyboardInterrupt stops it the same way, yields the
    results of the entries in flight, and is re-raised.
    """
    checked = Settings.build(dest, **settings)  # nonsense fails here, not at next()
    runner = Run(from_library(urls), checked, _reporter(progress),
                 tally=Tally(keep_failures=False))
    return _results(runner)


def _results(runner: Run) -> Iterator[Result]:
    for outcome in runner:
        yield outcome.result
    if runner.interruption is not None:
        raise runner.interruption


def _reporter(progress: str | bool) -> Reporter:
    if progress is True or progress is False:
        progress = "auto" if progress else "none"
    return Reporter() if progress == "none" else make_reporter(progress)


def _signature(function: Any, returns: str) -> inspect.Signature:
    """The real keywords, for ``help()`` and editors: the settings are
    defined once, in ``Settings``."""
    own = list(inspect.signature(function).parameters.values())[:-1]
    keyword = inspect.Parameter.KEYWORD_ONLY
    extra = [inspect.Parameter(spec.name, keyword, default=spec.default)
             for spec in public_settings() if spec.name != "dest"]
    return inspect.Signature([*own, *extra], return_annotation=returns)


download_all.__signature__ = _signature(download_all, "Summary")  # type: ignore[attr-defined]
iter_download.__signature__ = _signature(iter_download,  # type: ignore[attr-defined]
                                         "Iterator[Result]")
