"""Download a URL list with parfive (aiohttp), the way its docs suggest.

    python bench/parfive_run.py LIST DIR [-j 16]

max_conn=16 files in flight and max_splits=1 (one connection per file), to
match every other tool's concurrency of 16. No progress bars. Exit status 1
if any download failed.
"""

from __future__ import annotations

import argparse
import os
import sys

from parfive import Downloader, SessionConfig


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="parfive baseline")
    ap.add_argument("list")
    ap.add_argument("dest")
    ap.add_argument("-j", "--workers", type=int, default=16)
    args = ap.parse_args(argv)
    with open(args.list, encoding="utf-8") as f:
        urls = [ln.split()[0] for ln in f if ln.strip() and not ln.lstrip().startswith("#")]
    os.makedirs(args.dest, exist_ok=True)

    # file_progress=False as well: progress=False alone still builds per-file bars.
    dl = Downloader(
        max_conn=args.workers,
        max_splits=1,
        progress=False,
        overwrite=True,
        config=SessionConfig(file_progress=False),
    )
    for url in urls:
        dl.enqueue_file(url, path=args.dest)
    results = dl.download()
    for err in list(results.errors)[:10]:
        print(f"{err.url}: {err.exception}", file=sys.stderr)
    if results.errors:
        print(f"{len(results.errors)} of {len(urls)} failed", file=sys.stderr)
    return 1 if results.errors else 0


if __name__ == "__main__":
    raise SystemExit(main())
