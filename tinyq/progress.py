"""Progress bars for long work (calibration, range search, AdaRound, QAT, builds, benchmarks)."""

from __future__ import annotations

import contextlib
import sys

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

_quiet = False


def set_quiet(value: bool) -> None:
    global _quiet
    _quiet = value


@contextlib.contextmanager
def progress(quiet: bool = False):
    """A rich progress bar on stderr; silent when asked to be, or when stderr is not a terminal
    and nobody asked for it (scripts and tests)."""
    from rich.console import Console

    disable = quiet or _quiet
    console = Console(stderr=True)
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        disable=disable,
        transient=not sys.stderr.isatty(),
    ) as bar:
        yield bar
