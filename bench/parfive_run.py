"""Download a URL list with parfive (aiohttp), the way its docs suggest.

    python bench/parfive_run.py LIST DIR [-j 16] [--default-splits] [--cacert FILE]

max_conn=16 files in flight and max_splits=1 (one connection per file), to
match every other tool's concurrency of 16; with --default-splits, parfive's
own default instead (max_splits=5: five byte ranges of a file at once), for
the throttled set. No progress bars. Exit status 1 if any download failed.
"""

from __future__ import annotations

import argparse
import os
import ssl
import sys
from typing import Any

from parfive import Downloader, SessionConfig


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="parfive baseline")
    ap.add_argument("list")
    ap.add_argument("dest")
    ap.add_argument("-j", "--workers", type=int, default=16)
    ap.add_argument("--default-splits", action="store_true", help="parfive's default max_splits, not 1")
    ap.add_argument("--cacert", help="trust the CA certificates in this PEM file (HTTPS sets)")
    args = ap.parse_args(argv)
    with open(args.list, encoding="utf-8") as f:
        urls = [ln.split()[0] for ln in f if ln.strip() and not ln.lstrip().startswith("#")]
    os.makedirs(args.dest, exist_ok=True)

    splits: dict[str, Any] = {} if args.default_splits else {"max_splits": 1}
    # Extra keyword arguments of enqueue_file go to aiohttp's request: ssl= is
    # how aiohttp is told which CA to trust.
    extra: dict[str, Any] = {"ssl": ssl.create_default_context(cafile=args.cacert)} if args.cacert else {}
    # file_progress=False as well: progress=False alone still builds per-file bars.
    dl = Downloader(
        max_conn=args.workers,
        progress=False,
        overwrite=True,
        config=SessionConfig(file_progress=False),
        **splits,
    )
    for url in urls:
        dl.enqueue_file(url, path=args.dest, **extra)
    results = dl.download()
    for err in list(results.errors)[:10]:
        print(f"{err.url}: {err.exception}", file=sys.stderr)
    if results.errors:
        print(f"{len(results.errors)} of {len(urls)} failed", file=sys.stderr)
    return 1 if results.errors else 0


if __name__ == "__main__":
    raise SystemExit(main())
