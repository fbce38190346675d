"""One rich console and progress-bar factory for the whole package."""

from __future__ import annotations

import time

from rich.console import Console
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TaskID, TextColumn,
                           TimeElapsedColumn, TimeRemainingColumn)

# Human output goes to stderr so that `--json` on stdout stays machine-readable.
console = Console(stderr=True, soft_wrap=True)  # long error lines stay on one line, greppable

LOG_EVERY_S = 30.0


class _Progress(Progress):
    """A rich progress bar that, when stderr is not a terminal (CI logs, nohup), prints a
    plain status line every `LOG_EVERY_S` seconds instead of staying silent until the end."""

    _last_log = 0.0

    def update(self, task_id: TaskID, **kwargs) -> None:
        super().update(task_id, **kwargs)
        if self.console.is_terminal or self.disable:
            return
        now = time.monotonic()
        if now - self._last_log >= LOG_EVERY_S:
            self._last_log = now
            task = self._tasks[task_id]
            total = f"/{task.total:.0f}" if task.total else ""
            status = task.fields.get("status", "")
            self.console.print(f"{task.description}: {task.completed:.0f}{total} "
                               f"({task.elapsed or 0:.0f}s) {status}", highlight=False)

    def advance(self, task_id: TaskID, advance: float = 1) -> None:
        self.update(task_id, advance=advance)


def progress(transient: bool = False, disable: bool = False) -> Progress:
    """A progress bar with count, elapsed and remaining time (add tasks with `status=""`)."""
    return _Progress(
        SpinnerColumn(), TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TimeElapsedColumn(), TimeRemainingColumn(), TextColumn("{task.fields[status]}"),
        console=console, transient=transient, disable=disable,
    )
