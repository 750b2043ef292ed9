"""The baselines a user would write by hand with `requests`.

    python bench/naive.py seq  LIST DIR        # one Session, one file at a time
    python bench/naive.py pool LIST DIR -j 16  # ThreadPoolExecutor, a Session per thread
    ... --cacert FILE                          # HTTPS: trust this CA (verify=FILE)

They answer "is the downloader worth it over twenty lines of code?". They do
what such code usually does and nothing more: no retries, no .part files, no
resume, no verification; the file name is the URL's last path segment. Exit
status 1 if any download failed (the first errors are printed on stderr).
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import requests

CHUNK = 1024 * 1024  # iter_content(1 MiB): large reads, few Python-level loops
TIMEOUT = 60

_local = threading.local()
# verify= for HTTPS: True (the system's CAs) or the --cacert file. Passed on
# each request, not set as Session.verify: requests lets REQUESTS_CA_BUNDLE
# from the environment override a session's own setting.
_verify: bool | str = True


def _session() -> requests.Session:
    # requests.Session is not documented as thread-safe, so the usual pattern
    # is one per thread; it also gives each thread its own keep-alive pool.
    s = getattr(_local, "session", None)
    if s is None:
        s = _local.session = requests.Session()
    return s


def fetch(url: str, dest: str) -> int:
    name = os.path.basename(urlsplit(url).path) or "index.html"
    with _session().get(url, stream=True, timeout=TIMEOUT, verify=_verify) as r:
        r.raise_for_status()
        n = 0
        with open(os.path.join(dest, name), "wb") as f:
            for chunk in r.iter_content(CHUNK):
                f.write(chunk)
                n += len(chunk)
    return n


def read_list(path: str) -> list[str]:
    with open(path, encoding="utf-8") as f:
        return [ln.split()[0] for ln in f if ln.strip() and not ln.lstrip().startswith("#")]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="naive requests baselines")
    ap.add_argument("mode", choices=["seq", "pool"])
    ap.add_argument("list")
    ap.add_argument("dest")
    ap.add_argument("-j", "--workers", type=int, default=16)
    ap.add_argument("--cacert", help="trust the CA certificates in this PEM file (HTTPS sets)")
    args = ap.parse_args(argv)
    global _verify
    _verify = args.cacert or True
    urls = read_list(args.list)
    os.makedirs(args.dest, exist_ok=True)

    errors: list[str] = []
    if args.mode == "seq":
        for url in urls:
            try:
                fetch(url, args.dest)
            except Exception as exc:  # a baseline reports and carries on
                errors.append(f"{url}: {exc}")
    else:
        with ThreadPoolExecutor(args.workers) as pool:
            futures = {pool.submit(fetch, url, args.dest): url for url in urls}
            for fut, url in futures.items():
                failure = fut.exception()
                if failure is not None:
                    errors.append(f"{url}: {failure}")
    for line in errors[:10]:
        print(line, file=sys.stderr)
    if errors:
        print(f"{len(errors)} of {len(urls)} failed", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    raise SystemExit(main())
