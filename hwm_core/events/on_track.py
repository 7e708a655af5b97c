"""Is a run on track? Its training loss against the band its preset says a healthy run
shows at a few steps (config `[expected]`).

At each named step the mean of the last (up to) `WINDOW` training losses is judged:
inside the band "on track", above it "behind" (the loss falls slower than it should),
below it "ahead". Step 0 is the run's first step. The band travels in the run's
start event, only when the run trains on the data it was measured on, so every view
(dashboard, headless line, history) judges from metrics.jsonl alone, the same way.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Any

WINDOW = 10  # losses averaged: one step's loss is noisy at batch 4
ON_TRACK, BEHIND, AHEAD = "on track", "behind", "ahead"


@dataclass(frozen=True)
class LossBand:
    """Training loss of a healthy run between low[i] and high[i] at steps[i]."""

    data: str  # what it was measured on: "real" or "synthetic"
    steps: tuple[int, ...]
    low: tuple[float, ...]
    high: tuple[float, ...]
    grad_norm_low: float = 0.0
    grad_norm_high: float = 0.0  # 0: no range named

    def to_json(self) -> dict[str, Any]:
        return {
            "data": self.data,
            "steps": list(self.steps),
            "loss_low": list(self.low),
            "loss_high": list(self.high),
            "grad_norm_low": self.grad_norm_low,
            "grad_norm_high": self.grad_norm_high,
        }

    @classmethod
    def from_json(cls, value: Any) -> LossBand | None:
        """None for no band, or one this version cannot read (a hand-edited line)."""
        if not isinstance(value, dict):
            return None
        try:
            band = cls(
                str(value["data"]),
                tuple(int(s) for s in value["steps"]),
                tuple(float(v) for v in value["loss_low"]),
                tuple(float(v) for v in value["loss_high"]),
                float(value.get("grad_norm_low", 0.0)),
                float(value.get("grad_norm_high", 0.0)),
            )
        except (KeyError, TypeError, ValueError):
            return None
        if not (len(band.steps) == len(band.low) == len(band.high)) or not band.steps:
            return None
        return band

    def describe(self) -> str:
        """e.g. `loss 10.9-11.3 at step 0, 9-10 at 100, 7-8 at 1000 (real data); pre-clip norms 0.1-10`."""
        parts = [
            f"{lo:g}-{hi:g} at {'step ' if i == 0 else ''}{s}"
            for i, (s, lo, hi) in enumerate(zip(self.steps, self.low, self.high))
        ]
        text = f"loss {', '.join(parts)} ({self.data} data)"
        if self.grad_norm_high:
            text += f"; pre-clip norms {self.grad_norm_low:g}-{self.grad_norm_high:g}"
        return text


@dataclass(frozen=True)
class Verdict:
    step: int  # the band's step
    at_step: int  # the run's step it was judged at
    loss: float  # the mean of the last losses
    low: float
    high: float
    word: str  # on track / behind / ahead

    def describe(self) -> str:
        return f"{self.word} at step {self.step}: loss {self.loss:.2f}, expected {self.low:g}-{self.high:g}"


def judge(loss: float, low: float, high: float) -> str:
    if loss > high:
        return BEHIND
    if loss < low:
        return AHEAD
    return ON_TRACK


@dataclass
class OnTrack:
    """Fold a run's steps against its band: `verdicts` grows as the run passes each step."""

    band: LossBand | None = None
    verdicts: list[Verdict] = field(default_factory=list)
    _recent: deque[float] = field(default_factory=lambda: deque(maxlen=WINDOW))
    _first_step: int | None = None

    def start(self, band: LossBand | None, start_step: int, resumed: bool) -> None:
        """A (re)start: a resume keeps what it judged up to its checkpoint's step."""
        self.band = band
        if not resumed:
            self.verdicts, self._first_step = [], None
        else:
            self.verdicts = [v for v in self.verdicts if v.at_step <= start_step]
        self._recent.clear()

    def step(self, step: int, loss: float) -> Verdict | None:
        """The verdict this step reaches, if it reaches one."""
        if self.band is None:
            return None
        if math.isfinite(loss):
            self._recent.append(loss)
        if self._first_step is None:
            self._first_step = step
        judged = {v.step for v in self.verdicts}
        for band_step, low, high in zip(self.band.steps, self.band.low, self.band.high):
            due = step == self._first_step if band_step == 0 else step >= band_step
            if band_step in judged or not due or not self._recent:
                continue
            if band_step > 0 and step > band_step + WINDOW:
                continue  # a resume past it: not judged on losses from elsewhere
            mean = sum(self._recent) / len(self._recent)
            verdict = Verdict(band_step, step, mean, low, high, judge(mean, low, high))
            self.verdicts.append(verdict)
            return verdict
        return None

    @property
    def latest(self) -> Verdict | None:
        return self.verdicts[-1] if self.verdicts else None

    def copy(self) -> OnTrack:
        other = OnTrack(self.band, list(self.verdicts))
        other._recent.extend(self._recent)
        other._first_step = self._first_step
        return other
