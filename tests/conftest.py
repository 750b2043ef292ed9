from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Callable, Dict, Iterator, Optional

import pytest

TESTS_DIR = Path(__file__).resolve().parent
REPO_ROOT = TESTS_DIR.parent
if str(TESTS_DIR) not in sys.path:  # so `from httpserver import ...` works under any import mode
    sys.path.insert(0, str(TESTS_DIR))

from httpserver import FaultServer  # noqa: E402
from proxyserver import ForwardProxy  # noqa: E402


@pytest.fixture
def server() -> Iterator[FaultServer]:
    srv = FaultServer().start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def proxy() -> Iterator[ForwardProxy]:
    """A loopback forward proxy (plain HTTP, to 127.0.0.1 only)."""
    srv = ForwardProxy().start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def cli(tmp_path: Path) -> Callable[..., subprocess.CompletedProcess]:
    """Run ``python -m downloader ARGS`` in tmp_path; ``env`` entries overlay os.environ
    (a None value removes the variable)."""

    def run(*args: str, input: Optional[str] = None, timeout: float = 60,
            env: Optional[Dict[str, Optional[str]]] = None) -> subprocess.CompletedProcess:
        full = dict(os.environ)
        # cwd is tmp_path, so make the in-repo package importable even if not installed.
        full["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), full.get("PYTHONPATH")]))
        for key, value in (env or {}).items():
            if value is None:
                full.pop(key, None)
            else:
                full[key] = value
        return subprocess.run([sys.executable, "-m", "downloader", *map(str, args)], input=input,
                              capture_output=True, text=True, timeout=timeout, cwd=tmp_path, env=full)

    return run
