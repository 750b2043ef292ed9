"""Deterministic file contents shared by the data generator and the latency server.

Both sides must agree on every byte so that the driver can check each download
against a known SHA-256, whichever server sent it. The bytes are pseudo-random
(incompressible, so no layer can cheat by compressing) and differ per file (so
a tool that writes file 7's body under file 8's name is caught).
"""

from __future__ import annotations

import random

# Bump to invalidate data sets cached under /dev/shm by an older generator.
CONTENT_VERSION = 1
_SEED = 20240101
_HEADER = 8  # each file starts with its index, big-endian
_SPREAD = 4096  # files start at different offsets of the shared pool
_STEP = 1 << 20


class ContentPool:
    """One pseudo-random buffer; file i is its index plus a slice of the buffer.

    Generating 256 MiB of fresh randomness per file would be slow; slicing one
    buffer at a per-file offset is as fast as a memory copy and still gives
    every file different bytes.
    """

    def __init__(self, max_size: int) -> None:
        self.max_size = max_size
        # In 1 MiB steps: randbytes(n) goes through one n*8-bit integer,
        # which overflows a C int from 256 MiB on.
        rng, n = random.Random(_SEED), max_size + _SPREAD
        self._pool = b"".join(rng.randbytes(min(_STEP, n - i)) for i in range(0, n, _STEP))

    def file_bytes(self, index: int, size: int) -> bytes:
        if size > self.max_size:
            raise ValueError(f"size {size} exceeds the pool's {self.max_size}")
        if size <= _HEADER:
            return index.to_bytes(_HEADER, "big")[-size:] if size else b""
        off = (index * 2654435761) % _SPREAD  # Knuth's multiplicative hash
        return index.to_bytes(_HEADER, "big") + self._pool[off : off + size - _HEADER]


def file_name(index: int) -> str:
    """The name every tool saves file `index` under (the URL's last segment)."""
    return f"f{index:05d}.bin"


# The millions set: bodies small enough that a request's fixed cost is all
# there is, and of varying length, so a file cut short or saved under a
# neighbour's name is caught by its size alone.
TINY_MIN, TINY_MAX = 16, 64
_TINY_POOL = ContentPool(TINY_MAX)


def tiny_size(index: int) -> int:
    return TINY_MIN + ((index * 2654435761) >> 8) % (TINY_MAX - TINY_MIN + 1)


def tiny_bytes(index: int) -> bytes:
    """File `index` of the millions set: computed, never stored, on either side."""
    return _TINY_POOL.file_bytes(index, tiny_size(index))
