"""The divergence guard: stop a run that has gone wrong before it burns hours.

Three rules, each with the step it fired at and what to change:
- after warm-up, the smoothed train loss climbs back above where the run started;
- the val loss rises K evaluations in a row;
- non-finite steps repeat (train.max_nonfinite_steps in a row; the trainer counts them).
A stopped run ends `diverged`: its checkpoints stay, and it resumes with changed
settings (a lower train.lr). The guard's state is rebuilt from the run's metrics on
a resume, so a resumed run is judged on its whole history.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..config.schema import HealthConfig

MIN_STEPS = 10  # the loss rule waits at least this long (and for warm-up)
LOSS_MARGIN = 0.01  # of the starting loss: a run that merely stalls there is not stopped
VAL_RISE_TOLERANCE = 1e-3  # a val loss this much higher (relative) than the last counts as a rise


@dataclass
class Divergence:
    rule: str
    step: int
    message: str


class DivergenceGuard:
    def __init__(self, health: HealthConfig, warmup_steps: int):
        self.health, self.warmup_steps = health, warmup_steps
        self.start_loss: float | None = None  # the run's first loss (the smoothed one starts there too)
        self.smoothed: float | None = None
        self.last_val: float | None = None
        self.val_rises = 0

    def step(self, step: int, loss: float) -> Divergence | None:
        if not math.isfinite(loss):
            return None  # non-finite steps have their own rule
        if self.start_loss is None:
            self.start_loss = loss
        w = self.health.divergence_smoothing
        self.smoothed = loss if self.smoothed is None else w * self.smoothed + (1 - w) * loss
        start = self.start_loss
        if (
            self.health.divergence_guard
            and step > max(self.warmup_steps, MIN_STEPS)
            and start is not None
            and self.smoothed > start * (1 + LOSS_MARGIN)
        ):
            return Divergence(
                "loss",
                step,
                f"diverged at step {step}: the smoothed train loss "
                f"({self.smoothed:.3f}) climbed back above the run's starting loss "
                f"({start:.3f}) after warm-up: lower train.lr (resume with --set "
                "train.lr=...) or raise train.warmup_steps",
            )
        return None

    def evaluation(self, step: int, val_loss: float) -> Divergence | None:
        if not math.isfinite(val_loss):
            return None
        rising = self.last_val is not None and val_loss > self.last_val * (1 + VAL_RISE_TOLERANCE)
        self.val_rises = self.val_rises + 1 if rising else 0
        self.last_val = val_loss
        limit = self.health.val_rises
        if self.health.divergence_guard and limit and self.val_rises >= limit:
            return Divergence(
                "val",
                step,
                f"diverged at step {step}: the val loss rose {self.val_rises} "
                f"evaluations in a row (to {val_loss:.3f}): lower train.lr (resume with "
                "--set train.lr=...), or it is overfitting: stop earlier",
            )
        return None

    def nonfinite(self, step: int, in_a_row: int) -> Divergence:
        return Divergence(
            "nonfinite",
            step,
            f"diverged at step {step}: {in_a_row} non-finite steps in a row: "
            "lower train.lr or check the data; the last good checkpoint is kept",
        )

    def replay(self, events) -> None:
        """A resumed run's history, judged as it happened (nothing is stopped by it)."""
        from ..events.types import EvalEvent, StepEvent

        for event in events:
            if isinstance(event, StepEvent) and not event.skipped:
                self.step(event.step, event.loss)
            elif isinstance(event, EvalEvent):
                self.evaluation(event.step, event.val_loss)
