"""The library's entry point: ``download_all``."""
from __future__ import annotations

import inspect
from collections.abc import Iterable
from concurrent.futures import Executor
from pathlib import Path
from typing import Any

from .engine import run
from .entries import EntryLike, from_library
from .progress import Reporter, make_reporter
from .results import Summary
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
    items = from_library(urls)
    if progress is True or progress is False:
        progress = "auto" if progress else "none"
    if executor is not None or shard_size is not None or shard is not None:
        from .cluster import sharded
        return sharded(items, checked, progress, executor=executor, shard_size=shard_size,
                       shard=shard)
    reporter = Reporter() if progress == "none" else make_reporter(progress)
    summary, interruption = run(items, checked, reporter)
    if interruption is not None:
        raise interruption
    return summary


def _signature() -> inspect.Signature:
    """``download_all``'s real keywords, for ``help()`` and editors: the
    settings are defined once, in ``Settings``."""
    own = list(inspect.signature(download_all).parameters.values())[:-1]
    keyword = inspect.Parameter.KEYWORD_ONLY
    extra = [inspect.Parameter(spec.name, keyword, default=spec.default)
             for spec in public_settings() if spec.name != "dest"]
    return inspect.Signature([*own, *extra], return_annotation="Summary")


download_all.__signature__ = _signature()  # type: ignore[attr-defined]
