"""The two consoles: stdout carries the result only; notes, warnings and progress go to stderr."""

from __future__ import annotations

import os
import sys

from rich.console import Console


def stdout() -> Console:
    """A console on the current stdout; 200 columns when it is not a terminal, so piped tables do not wrap."""
    tty = sys.stdout.isatty()
    return Console(file=sys.stdout, highlight=False, width=None if tty or "COLUMNS" in os.environ else 200)


def stderr() -> Console:
    """A console on the current stderr."""
    return Console(file=sys.stderr, highlight=False)


def note(text: str) -> None:
    """A one-line note on stderr (kept out of stdout so JSON and CSV pipe cleanly)."""
    stderr().print(text, markup=False, highlight=False, soft_wrap=True)
