"""Progress for logs: plain stderr lines at a fixed interval where a live bar cannot draw.

Rich draws nothing while a bar runs when stderr is a file or a pipe (nohup, CI,
``2> train.log``), so every progress display in rewardhedge pairs its rich bar
with a :class:`LogProgress` and uses whichever fits the console: the bar on a
terminal, lines such as ::

    finetune: step 120/460 (26%) | 3.4 pairs/s | loss 0.612 | elapsed 4:51 | ETA 13:40

otherwise, on the first update, at least every ``REWARDHEDGE_LOG_EVERY_S``
seconds (default 30; 0 prints every update) and at the end. Standard library only,
so any stage of the package may use it.
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any, TextIO

LOG_EVERY_ENV = "REWARDHEDGE_LOG_EVERY_S"
DEFAULT_EVERY_S = 30.0
LOOK_AHEAD = 1.5
"""How many times the last update's gap the next one is assumed to take (see ``update``)."""


def log_every_s() -> float:
    """Seconds between progress lines: ``$REWARDHEDGE_LOG_EVERY_S``, else 30 (a value that
    is not a number ≥ 0 is ignored)."""
    try:
        value = float(os.environ.get(LOG_EVERY_ENV, ""))
    except ValueError:
        return DEFAULT_EVERY_S
    return value if math.isfinite(value) and value >= 0 else DEFAULT_EVERY_S


def draws_live(console: Any) -> bool:
    """Whether a rich ``Console`` can draw a live bar (a terminal or a notebook)."""
    return bool(console.is_terminal or getattr(console, "is_jupyter", False))


def format_duration(seconds: float) -> str:
    """``4:51`` or ``1:02:03``."""
    s = max(round(seconds), 0)
    h, rest = divmod(s, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def eta_seconds(elapsed: float, done: float, total: float) -> float | None:
    """Seconds left at the pace so far: ``elapsed`` seconds did ``done`` of ``total``
    units; ``None`` before the first unit."""
    if done <= 0:
        return None
    return elapsed / done * max(total - done, 0)


def format_rate(per_second: float, unit: str) -> str:
    """``3.4 pairs/s``, or ``12.5 s/epoch`` below one ``unit`` a second."""
    if 0 < per_second < 1:
        return f"{1 / per_second:,.1f} s/{unit.removesuffix('s')}"
    return f"{per_second:,.1f} {unit}/s"


def format_line(
    label: str,
    done: float,
    total: float | None,
    elapsed: float,
    *,
    noun: str = "",
    fields: Sequence[str] = (),
    eta: float | None = None,
    finished: bool = False,
) -> str:
    """One progress line: ``label: noun done/total (pct%) | fields… | elapsed | ETA``;
    ``ETA ?`` while unknown, ``done`` at the end."""
    count = f"{done:g}" if total is None else f"{done:g}/{total:g}"
    if total:
        count += f" ({min(done / total, 1.0):.0%})"
    parts = [f"{label}: {noun + ' ' if noun else ''}{count}", *fields]
    parts.append(f"elapsed {format_duration(elapsed)}")
    if finished:
        parts.append("done")
    elif total is not None:
        parts.append("ETA ?" if eta is None else f"ETA {format_duration(eta)}")
    return " | ".join(parts)


class LogProgress:
    """Timed plain-text progress lines on stderr (a no-op unless ``enabled``).

    ``update(done, total, *fields)`` prints on the first call, whenever ``every_s``
    seconds have passed since the last line, and when ``done`` reaches ``total``;
    :meth:`close` prints the final state if that line has not been printed. With
    ``unit`` the line carries the rate ``unit/s`` (once it is known). Rate and ETA are measured from
    the creation (or the last :meth:`restart`) to the latest update.
    """

    def __init__(
        self,
        label: str,
        *,
        total: float | None = None,
        noun: str = "",
        unit: str | None = None,
        enabled: bool = True,
        every_s: float | None = None,
        stream: TextIO | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.label, self.noun, self.unit, self.enabled = label, noun, unit, enabled
        self.every_s = log_every_s() if every_s is None else every_s
        self.stream = stream
        self.clock = clock
        self.created = self._t0 = clock()
        self._base = 0.0
        self.done = 0.0
        self.total = total
        self.fields: tuple[str, ...] = ()
        self._last_line: float | None = None
        self._last_update: float | None = None
        self._finished = False

    def restart(self, done: float) -> None:
        """Measure rate and ETA from now and ``done`` on (e.g. after a resume or a warm-up)."""
        self._t0, self._base = self.clock(), done

    def update(self, done: float, total: float | None = None, *fields: str) -> None:
        """Record progress; print a line when it is due."""
        self.done, self.fields = done, fields
        if total is not None:
            self.total = total
        if not self.enabled or self._finished:
            return
        now = self.clock()
        # Look one update ahead: print now if waiting for the next update (taken as 1.5x
        # as far off as this one was: step times vary) would let more than every_s pass
        # without a line, so slow steps still get a line at least every every_s seconds
        # (with plain 1x look-ahead, HH fine-tuning logs showed gaps of 31-32 s).
        gap = 0.0 if self._last_update is None else now - self._last_update
        self._last_update = now
        at_end = self.total is not None and done >= self.total
        due = self._last_line is None or now - self._last_line + LOOK_AHEAD * gap >= self.every_s
        if at_end or due:
            self._emit(now, finished=at_end)

    def advance(self, k: float = 1) -> None:
        """``update(done + k)``."""
        self.update(self.done + k)

    def close(self) -> None:
        """Print the final state unless the end line is out already."""
        if self.enabled and not self._finished and self._last_line is not None:
            self._emit(self.clock(), finished=True)

    def line(self, now: float, *, finished: bool = False) -> str:
        """The line for the current state at time ``now``."""
        window, span = now - self._t0, self.done - self._base
        fields = list(self.fields)
        if self.unit is not None and span > 0 and window > 0:
            fields.insert(0, format_rate(span / window, self.unit))
        eta = None
        if self.total is not None and window > 0:
            eta = eta_seconds(window, span, self.total - self._base)
        return format_line(
            self.label,
            self.done,
            self.total,
            now - self.created,
            noun=self.noun,
            fields=fields,
            eta=eta,
            finished=finished,
        )

    def _emit(self, now: float, *, finished: bool) -> None:
        stream = self.stream or sys.stderr
        stream.write(self.line(now, finished=finished) + "\n")
        stream.flush()
        self._last_line = now
        self._finished = finished
