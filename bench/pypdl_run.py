"""Download a URL list with pypdl (aiohttp), with its splitting defaults.

    python bench/pypdl_run.py LIST DIR [-j 16] [--cacert FILE]

pypdl's own defaults for each file: multisegment=True with segments=5 (five
byte ranges at once, written to separate segment files and joined at the
end), which is what the throttled set compares. max_concurrent=16 files in
flight, like every other tool's concurrency. No progress display. Exit
status 1 if any download failed.
"""

from __future__ import annotations

import argparse
import logging
import os
import ssl
import sys

from pypdl import Pypdl


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="pypdl baseline")
    ap.add_argument("list")
    ap.add_argument("dest")
    ap.add_argument("-j", "--workers", type=int, default=16)
    ap.add_argument("--cacert", help="trust the CA certificates in this PEM file (HTTPS sets)")
    args = ap.parse_args(argv)
    with open(args.list, encoding="utf-8") as f:
        urls = [ln.split()[0] for ln in f if ln.strip() and not ln.lstrip().startswith("#")]
    os.makedirs(args.dest, exist_ok=True)

    # pypdl's default logger appends to ./pypdl.log; send its warnings to stderr
    # instead, where the driver keeps them for a failed run's report.
    logger = logging.getLogger("pypdl-bench")
    logger.addHandler(logging.StreamHandler(sys.stderr))
    logger.setLevel(logging.WARNING)
    # Extra keyword arguments of a task go to aiohttp's request: ssl= is how
    # aiohttp is told which CA to trust (it does not read REQUESTS_CA_BUNDLE).
    extra = {"ssl": ssl.create_default_context(cafile=args.cacert)} if args.cacert else {}
    tasks = [{"url": url, "file_path": os.path.join(args.dest, os.path.basename(url)), **extra} for url in urls]
    dl = Pypdl(max_concurrent=args.workers, logger=logger)
    dl.start(tasks=tasks, display=False, block=True)
    failed = list(dl.failed)
    for item in failed[:10]:
        print(f"failed: {item}", file=sys.stderr)
    if failed or len(dl.success) != len(urls):
        print(f"{len(urls) - len(dl.success)} of {len(urls)} failed", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
