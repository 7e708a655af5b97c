"""The history screen's table of runs: its columns, how each sorts, and a run's cells."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

from rich.text import Text

from hwm_core.figures import format_duration
from hwm_core.runs.history import RunSummary

from ..style import STATUS_STYLES

# (column label, key, sort value); status early, so it shows in 80 columns
COLUMNS: list[tuple[str, str, Callable[[RunSummary], Any]]] = [
    ("id", "id", lambda s: s.id),
    ("status", "status", lambda s: s.status),
    ("preset", "preset", lambda s: s.preset),
    ("started", "started", lambda s: s.started or 0.0),
    ("duration", "duration", lambda s: s.duration_s or 0.0),
    ("steps", "steps", lambda s: s.step),
    ("last val", "last_val", lambda s: _sortable(s.last_val_loss)),
    ("best val", "best_val", lambda s: _sortable(s.best_val_loss)),
    ("warn", "warnings", lambda s: s.warning_count),
]
NEWEST_FIRST = {"started", "duration", "steps", "warnings"}  # columns whose natural order is descending
SORT_DEFAULT = 3


def _sortable(value: float | None) -> float:
    return value if value is not None and math.isfinite(value) else math.inf


def _loss(value: float | None) -> str:
    return f"{value:.4f}" if value is not None and math.isfinite(value) else "-"


def _started(value: float | None) -> str:
    return time.strftime("%m-%d %H:%M", time.localtime(value)) if value else "-"


def row_cells(s: RunSummary, current_run: str | None, marked: bool = False) -> tuple:
    name = Text(s.id, style="bold" if s.id == current_run else "")
    if s.id == current_run:
        name.append(" ◀", style="bold cyan")
    if marked:
        name.stylize("reverse")
        name.append(" ●", style="bold magenta")
    return (
        name,
        Text(s.status, style=STATUS_STYLES.get(s.status, "")),
        s.preset,
        _started(s.started),
        format_duration(s.duration_s),
        f"{s.step}/{s.max_steps}",
        _loss(s.last_val_loss),
        _loss(s.best_val_loss),
        Text(str(s.warning_count), style="yellow" if s.warning_count else ""),
    )
