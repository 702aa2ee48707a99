"""A rich progress bar on stderr (timed plain lines when stderr is not a terminal), or nothing."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rewardhedge.progress_log import LogProgress, draws_live


@contextmanager
def progress_bar(total: int, description: str, enabled: bool) -> Iterator[Callable[[int], None]]:
    """Yield ``advance(k)``; draws a bar with texts/s and ETA only when ``enabled``
    (on a non-terminal, a :class:`~rewardhedge.progress_log.LogProgress` line every 30 s)."""
    if not enabled or total <= 0:
        yield lambda k: None
        return
    from rich.console import Console

    console = Console(stderr=True)
    if not draws_live(console):
        log = LogProgress(description, total=total, unit="texts")
        yield log.advance
        log.close()
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        ProgressColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )
    from rich.text import Text

    class _RateColumn(ProgressColumn):
        def render(self, task):  # type: ignore[no-untyped-def]
            speed = task.finished_speed or task.speed
            if not speed and task.elapsed:
                speed = task.completed / task.elapsed
            return Text("? texts/s" if not speed else f"{speed:,.1f} texts/s")

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        _RateColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console) as prog:
        task = prog.add_task(description, total=total)
        yield lambda k: prog.advance(task, k)
