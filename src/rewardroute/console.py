"""One rich console and progress-bar factory for the whole package."""

from __future__ import annotations

from rich.console import Console
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn,
                           TimeElapsedColumn, TimeRemainingColumn)

# Human output goes to stderr so that `--json` on stdout stays machine-readable.
console = Console(stderr=True, soft_wrap=True)  # long error lines stay on one line, greppable


def progress(transient: bool = False, disable: bool = False) -> Progress:
    """A progress bar with count, elapsed and remaining time (add tasks with `status=""`)."""
    return Progress(
        SpinnerColumn(), TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TimeElapsedColumn(), TimeRemainingColumn(), TextColumn("{task.fields[status]}"),
        console=console, transient=transient, disable=disable,
    )
