from __future__ import annotations

import sys

from .cli import main

# Guarded: a worker process started by forkserver or spawn imports this
# module again (as __mp_main__), and must not run a second download.
if __name__ == "__main__":
    sys.exit(main())
