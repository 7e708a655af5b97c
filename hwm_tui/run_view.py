"""What the dashboard knows about a run: its events, reduced to chart series,
warnings and progress. Fed live from a trainer, from a followed metrics file,
or all at once from a past run's metrics.jsonl; never touches tensors."""

from __future__ import annotations

import copy
import dataclasses
import math
from typing import Iterable

from hwm_core.events import (CheckpointEvent, Event, EvalEvent, StartEvent, StateEvent, StepEvent,
                             WarningEvent)
from hwm_core.progress import RunProgress

from .series import Series, SmoothedSeries


class RunView:
    def __init__(self) -> None:
        self.progress = RunProgress()
        self.start: StartEvent | None = None  # the latest start: a resume starts again
        self.first_step = 0  # where the charts' x axis begins: the first start's step
        self.loss = SmoothedSeries(weight=0.95)
        self.val_loss = Series(64)
        self.val_acc = Series(64)
        self.lr = Series()
        self.grad_pre = Series()
        self.grad_post = Series()
        self.warnings: list[WarningEvent] = []
        self.checkpoints: list[CheckpointEvent] = []
        self.version = 0  # bumps whenever a chart has something new to show

    def add(self, event: Event) -> None:
        self.progress.add(event)
        if isinstance(event, StepEvent):
            self.loss.append(event.step, event.loss)
            self.lr.append(event.step, event.lr)
            self.grad_pre.append(event.step, event.grad_norm_pre_clip)
            self.grad_post.append(event.step, event.grad_norm_post_clip)
            self.version += 1
        elif isinstance(event, EvalEvent):
            self.val_loss.append(event.step, event.val_loss)
            self.val_acc.append(event.step, event.val_token_acc)
            self.version += 1
        elif isinstance(event, WarningEvent):
            self.warnings.append(event)
        elif isinstance(event, CheckpointEvent):
            self.checkpoints.append(event)
        elif isinstance(event, StartEvent):
            if self.start is None:
                self.first_step = event.start_step
            self.start = event
            self.version += 1

    def add_all(self, events: Iterable[Event]) -> None:
        for event in events:
            try:
                self.add(event)
            except (TypeError, ValueError):  # a hand-edited line ("step": null): skipped like a torn one
                pass

    def copy(self) -> "RunView":
        """An independent copy: a reader extends it while the screen still draws this one."""
        other = copy.copy(self)
        other.progress = dataclasses.replace(self.progress, warnings=dict(self.progress.warnings))
        for name in ("loss", "val_loss", "val_acc", "lr", "grad_pre", "grad_post"):
            setattr(other, name, getattr(self, name).copy())
        other.warnings, other.checkpoints = list(self.warnings), list(self.checkpoints)
        return other

    @property
    def max_steps(self) -> int:
        return self.progress.max_steps

    @property
    def codebook_size(self) -> int:
        return self.start.codebook_size if self.start else 64000

    @property
    def random_guess_loss(self) -> float:
        return math.log(self.codebook_size)

    def best_val(self) -> tuple[int, float] | None:
        y = self.val_loss.y
        if not len(y):
            return None
        i = int(y.argmin())
        return int(self.val_loss.x[i]), float(y[i])

    def warning_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for w in self.warnings:
            counts[w.kind] = counts.get(w.kind, 0) + 1
        return counts


def final_state_label(event: StateEvent) -> str:
    return {"completed": "finished", "interrupted": "stopped"}.get(event.state, event.state)
