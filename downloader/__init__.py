"""downloader: a concurrent bulk web downloader.

    from downloader import download_all
    summary = download_all(["https://example.org/a.csv"], dest="downloads")
"""
from __future__ import annotations

__version__ = "0.2.0"

from .entries import Entry
from .errors import DestinationError, DestinationLocked, DownloaderError
from .results import Result, Summary
from .library import download_all, iter_download

__all__ = [
    "DestinationError",
    "DestinationLocked",
    "DownloaderError",
    "Entry",
    "Result",
    "Summary",
    "__version__",
    "download_all",
    "iter_download",
]
