"""The progress bars of the ``gwtwin`` commands and of ``gwtwin run`` (rich)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def progress_bar(console=None, quiet: bool = False):
    """The rich progress bar every long command shows (description, bar, done/total, time)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    return Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        disable=quiet,
    )


def stage_callback(bar) -> Callable[[str, int, int], None]:
    """A ``progress(stage, done, total)`` callback drawing one bar per stage on ``bar``."""
    tasks: dict[str, Any] = {}

    def progress(stage: str, done: int, total: int) -> None:
        if stage not in tasks:
            tasks[stage] = bar.add_task(stage, total=total)
        bar.update(tasks[stage], completed=done, total=total)

    return progress
