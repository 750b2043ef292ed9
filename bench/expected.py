"""What a correct download of a data set holds, and the data and URL lists behind it."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from common import SHM, MiB
from content import CONTENT_VERSION, TINY_MAX, ContentPool, file_name, tiny_bytes
from datasets import DataSet


@dataclass
class Expected:
    """What a correct download of a data set looks like: a manifest."""

    files: dict[str, tuple[int, str]]  # name -> (size, sha256 hex)

    @property
    def total(self) -> int:
        return sum(size for size, _ in self.files.values())

    def verify(self, dest: Path) -> str:
        """'' if `dest` holds exactly the expected files with the expected bytes."""
        found: dict[str, int] = {}
        for dirpath, dirnames, filenames in os.walk(dest):
            rel = Path(dirpath).relative_to(dest)
            if rel == Path("."):
                # downloader's own run state (lock + SQLite), documented; not a download.
                dirnames[:] = [d for d in dirnames if d != ".downloader"]
            for fn in filenames:
                p = Path(dirpath) / fn
                found[str(p.relative_to(dest))] = p.stat().st_size
        missing = sorted(set(self.files) - set(found))
        extra = sorted(set(found) - set(self.files))
        problems: list[str] = []
        if missing:
            problems.append(f"{len(missing)} of {len(self.files)} files missing (e.g. {', '.join(missing[:3])})")
        if extra:
            problems.append(f"{len(extra)} unexpected files (e.g. {', '.join(extra[:3])})")
        wrong_size = [n for n, s in found.items() if n in self.files and s != self.files[n][0]]
        if wrong_size:
            n = wrong_size[0]
            problems.append(f"{len(wrong_size)} files of the wrong size (e.g. {n}: {found[n]} != {self.files[n][0]})")
        got_total = sum(s for n, s in found.items() if n in self.files)
        if got_total != self.total:
            problems.append(f"total {got_total:,} bytes != {self.total:,}")
        if problems:
            return "; ".join(problems)
        # Sizes and total agree: now the bytes themselves (outside the timed part).
        for name, (_, digest) in self.files.items():
            h = hashlib.sha256()
            with open(dest / name, "rb") as f:
                for block in iter(lambda: f.read(4 * MiB), b""):  # hashlib.file_digest is 3.11+
                    h.update(block)
            if h.hexdigest() != digest:
                return f"content differs from the server's (e.g. {name})"
        return ""


@dataclass
class TinyFiles:
    """The millions set's files: computed from their index, never listed.

    A manifest of a million names and digests would cost the driver hundreds
    of MiB; every file's bytes are cheap to compute again (content.tiny_bytes),
    so each downloaded file is read whole and compared byte for byte, which
    checks its size and content at once (stronger than a size + SHA-256 check).
    """

    count: int
    total: int

    def verify(self, dest: Path) -> str:
        problems: list[str] = []
        extra: list[str] = []
        listed = 0
        # scandir: names and types from the directory itself, no stat per file.
        with os.scandir(dest) as entries:
            for entry in entries:
                if entry.name == ".downloader" and entry.is_dir(follow_symlinks=False):
                    continue  # downloader's own run state, documented
                index = _tiny_index(entry.name)
                if index is None or index >= self.count or not entry.is_file(follow_symlinks=False):
                    extra.append(entry.name)
                else:
                    listed += 1
        missing: list[str] = []
        wrong_size: list[str] = []
        wrong_bytes: list[str] = []
        got_total = 0
        for i in range(self.count):
            name = file_name(i)
            try:
                with open(os.path.join(dest, name), "rb") as f:
                    body = f.read(TINY_MAX + 1)
            except FileNotFoundError:
                missing.append(name)
                continue
            got_total += len(body)
            want = tiny_bytes(i)
            if body != want:
                (wrong_size if len(body) != len(want) else wrong_bytes).append(name)
        if missing:
            problems.append(f"{len(missing)} of {self.count} files missing (e.g. {', '.join(missing[:3])})")
        if extra:
            problems.append(f"{len(extra)} unexpected files (e.g. {', '.join(sorted(extra)[:3])})")
        if wrong_size:
            problems.append(f"{len(wrong_size)} files of the wrong size (e.g. {wrong_size[0]})")
        if got_total != self.total:
            problems.append(f"total {got_total:,} bytes != {self.total:,}")
        if wrong_bytes:
            problems.append(f"{len(wrong_bytes)} files whose content differs from the server's (e.g. {wrong_bytes[0]})")
        if not problems and listed != self.count:  # cannot happen once none is missing; say so if it does
            problems.append(f"{listed} files listed, {self.count} expected")
        return "; ".join(problems)


def _tiny_index(name: str) -> int | None:
    if not (name.startswith("f") and name.endswith(".bin") and name[1:-4].isdigit()):
        return None
    index = int(name[1:-4])
    return index if file_name(index) == name else None


def make_data(ds: DataSet) -> Expected | TinyFiles:
    """The expected files of `ds`; nginx's sets are written under SHM/data too.

    A static set made by an earlier run with the same generator is reused
    (its manifest records the digests), so repeated runs start quickly.
    """
    pool: ContentPool | None = None
    if ds.server == "tiny":
        return TinyFiles(ds.count, ds.total)
    if ds.server == "latency":  # nothing on disk: the latency server makes the bytes
        pool = ContentPool(ds.size)
        return Expected({file_name(i): _digest(pool.file_bytes(i, ds.size), ds.size) for i in range(ds.count)})

    folder = SHM / "data" / ds.folder
    manifest = folder / "manifest.json"
    want = {"version": CONTENT_VERSION, "count": ds.count, "size": ds.size}
    if manifest.exists():
        saved = json.loads(manifest.read_text())
        if {k: saved.get(k) for k in want} == want and all(
            (folder / name).is_file() and (folder / name).stat().st_size == ds.size for name in saved["sha256"]
        ):
            return Expected({name: (ds.size, h) for name, h in saved["sha256"].items()})

    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    _world_readable(folder)
    pool = ContentPool(ds.size)
    files: dict[str, tuple[int, str]] = {}
    for i in range(ds.count):
        body = pool.file_bytes(i, ds.size)
        path = folder / file_name(i)
        path.write_bytes(body)
        path.chmod(0o644)
        files[file_name(i)] = _digest(body, ds.size)
    # manifest.json sits beside the data but no URL list names it.
    manifest.write_text(json.dumps({**want, "sha256": {n: h for n, (_, h) in files.items()}}))
    return Expected(files)


def _digest(body: bytes, size: int) -> tuple[int, str]:
    return size, hashlib.sha256(body).hexdigest()


def _world_readable(folder: Path) -> None:
    # nginx's worker runs as an unprivileged user: it needs to traverse every
    # folder from / down to the data.
    for p in [folder, *folder.parents]:
        if p == Path("/") or not str(p).startswith(str(SHM)):
            continue
        p.chmod(0o755)


def write_lists(ds: DataSet, base_url: str) -> tuple[Path, Path]:
    """The URL list (one per line) and curl's -K config for `ds`."""
    lists = SHM / "lists"
    lists.mkdir(parents=True, exist_ok=True)
    plain = lists / f"{ds.name}.txt"
    curlcfg = lists / f"{ds.name}.curl"
    # Line by line: a million URLs need not be in memory at once.
    with open(plain, "w") as lst, open(curlcfg, "w") as cfg:
        for i in range(ds.count):
            url = f"{base_url}/{file_name(i)}"
            lst.write(url + "\n")
            cfg.write(f'url = "{url}"\n')
    return plain, curlcfg

