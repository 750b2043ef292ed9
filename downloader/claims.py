"""Name claims that hold across machines: one small file per name on DEST.

Within one run, ``naming.Names`` settles collisions in memory. The shards of
a sharded run execute in other processes, on other machines, at other
times, so there the claims live in ``DEST/.downloader/claims/LIST/``, one
folder per list (the same list run again, or cut into ``--shard K/N``
jobs, sees its own claims; another list starts afresh, as another plain
run would). A claim is made with ``link()``, which creates a file whole or
fails if it exists, on local and network file systems alike (NFS has made
``O_EXCL`` atomic only since v3; ``link`` has been, always).

Each claim records its owner (the entry's key), so a shard that runs again
after its worker died gets the very names it had: its ``.part`` files are
resumed, never started again under a second name.
"""
from __future__ import annotations

import hashlib
import os
import secrets
import threading
from pathlib import Path

from .naming import PART_SUFFIX, STATE_DIR_NAME, Names, numbered

CLAIMS_DIR = "claims"
_FOLDER = "\0folder"  # the owner a folder's claim records


def claims_root(root: Path, list_id: str) -> Path:
    """The claims of one list on DEST ``root``."""
    return root / STATE_DIR_NAME / CLAIMS_DIR / list_id


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:40]


def _name_key(relative: str) -> str:
    """One key for ``x``, ``x.part`` and ``x.part.part``: ``x.part`` is where
    ``x`` is downloaded, so neither may be another entry's file."""
    while relative.endswith(PART_SUFFIX) and len(relative) > len(PART_SUFFIX):
        relative = relative[: -len(PART_SUFFIX)]
    return relative


class FileClaims(Names):
    """``Names`` whose claims are files under ``claims_root``.

    ``preclaimed`` are names the shard settled before its run (``out=``
    targets, files an earlier attempt finished); the planner's claims of
    them, which carry no owner, are granted as they are.
    """

    def __init__(self, folder: Path) -> None:
        super().__init__()
        self.folder = folder
        self.preclaimed: set[str] = set()
        self._lock = threading.Lock()
        # A shard's own numbering (bounded by its size): where to start
        # probing for the next file of a name.
        self._last_number: dict[str, int] = {}

    def _path(self, kind: str, text: str) -> Path:
        digest = _digest(text)
        return self.folder / digest[:2] / f"{kind}-{digest[2:]}"

    def owned(self, owner: str) -> str | None:
        """The name ``owner`` claimed before, if any."""
        try:
            return self._path("o", owner).read_text("utf-8", "surrogatepass")
        except FileNotFoundError:
            return None

    def claim(self, relative: str, owner: str | None = None) -> str:
        with self._lock:
            if owner is None:
                if relative in self.preclaimed:
                    return relative
                owner = f"\0anonymous {secrets.token_hex(8)}"
            mine = self.owned(owner)
            if mine is not None:
                return mine
            folder = relative.rpartition("/")[0]
            while folder:
                holder = self._create("n", _name_key(folder), _FOLDER)
                if holder != _FOLDER:
                    raise ValueError(f"{folder} is another entry's file, not a folder")
                folder = folder.rpartition("/")[0]
            n = self._last_number.get(relative, 0)
            while True:
                candidate = numbered(relative, n) if n else relative
                key = _name_key(candidate)
                if key != STATE_DIR_NAME and self._create("n", key, owner) == owner:
                    break
                n += 1
            self._last_number[relative] = n
            self._create("o", owner, candidate)
            return candidate

    def _create(self, kind: str, key: str, content: str) -> str:
        """Create the claim file for ``key`` holding ``content``, unless it
        exists; return what the claim file holds now."""
        target = self._path(kind, key)
        target.parent.mkdir(parents=True, exist_ok=True)
        scratch = target.with_name(f".{target.name}.{secrets.token_hex(4)}")
        scratch.write_text(content, "utf-8", "surrogatepass")
        try:
            os.link(scratch, target)
            return content
        except FileExistsError:
            return target.read_text("utf-8", "surrogatepass")
        finally:
            scratch.unlink()
