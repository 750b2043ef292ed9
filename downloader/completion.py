"""``--completion SHELL``: a completion script made from the command line's
own parser, so it never lags behind the options.

The scripts are written by shtab, the argparse completion generator the
tqdm maintainers keep. It is an optional extra (``pip install
'bulk-downloader[completion]'``): the downloader itself needs only requests
and tqdm, and a script is generated once, not on every run.
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

SHELLS = ("bash", "zsh", "fish")
INSTALL_HINT = "pip install 'bulk-downloader[completion]'"


class CompletionUnavailable(Exception):
    """shtab is not installed."""


def completion_script(parser: argparse.ArgumentParser, shell: str) -> str:
    """The completion script for ``shell``; ``CompletionUnavailable`` without shtab."""
    try:
        import shtab
    except ImportError:
        raise CompletionUnavailable(
            f"--completion needs the shtab package: {INSTALL_HINT}") from None
    # Options whose value is a file or a folder complete paths; the others
    # (numbers, sizes, headers) offer nothing rather than file names.
    for action in parser._actions:
        if action.metavar == "FILE":
            action.complete = shtab.FILE  # type: ignore[attr-defined]
        elif action.metavar == "DIR":
            action.complete = shtab.DIRECTORY  # type: ignore[attr-defined]
    return str(shtab.complete(parser, shell))


class CompletionAction(argparse.Action):
    """Print the script and exit, as ``--version`` does: no URL needed."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: str | Sequence[Any] | None, option_string: str | None = None) -> None:
        try:
            script = completion_script(parser, str(values))
        except CompletionUnavailable as exc:
            parser.exit(2, f"{parser.prog}: error: {exc}\n")
        sys.stdout.write(script if script.endswith("\n") else script + "\n")
        parser.exit()
