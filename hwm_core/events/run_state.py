"""A run's events folded into what every view shows of it: the one reducer.

The headless line, the dashboard (live or watching), the history screen and
`hwm-tui runs list/show` all read a run through `RunState.add`, so they can never
disagree about a step, a best val loss or a count of warnings.

- `progress`: where the run stands now (state, step, speed, ETA, last checkpoint);
- `totals`:   what is cached in run.json as its summary, with the byte offset of
              metrics.jsonl it covers, so listing a 60,000-step run reads only the tail;
- `curves`:   the series the charts draw, kept only when asked for (views, not listings).
"""

from __future__ import annotations

import copy
import dataclasses
import math
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from ..fsq import CODEBOOK_SIZE
from ..status import PAUSED, RUNNING, STARTING, is_final
from .on_track import LossBand, OnTrack, Verdict
from .step_series import Series, SmoothedSeries
from .types import (
    CheckpointEvent,
    CheckpointFailedEvent,
    CompileEvent,
    EvalEvent,
    Event,
    GpuEvent,
    SamplesEvent,
    StartEvent,
    StateEvent,
    StepEvent,
    WarningEvent,
)

STEP_TIME_SMOOTHING = 0.1  # EMA weight of the newest step time (for the ETA)
LOSS_SMOOTHING = 0.95  # EMA weight of the past in the smoothed loss curve


def compile_message(event: CompileEvent) -> str:
    if event.ok:
        return f"compiled (train.compile = {event.mode}) in {event.seconds:.0f} s"
    return f"compiling failed ({event.message}): training eager"


@dataclass
class RunProgress:
    """Where a run stands: what the status bar and the headless line show."""

    run_id: str = ""
    run_dir: str = ""
    preset: str = ""
    device: str = ""
    state: str = STARTING
    # paused by the trainer's own word (a PAUSED state, until RUNNING): a checkpoint or a
    # compile between them leaves it as it was
    paused: bool = False
    step: int = 0
    start_step: int = 0
    max_steps: int = 0
    global_batch: int = 0
    world_size: int = 1
    micro_batch: int = 0
    grad_accum_steps: int = 0
    compile: str = "off"
    compile_s: float | None = None  # how long the first, compiling step took
    loss: float = math.nan
    lr: float = math.nan
    grad_norm_pre_clip: float = math.nan
    grad_norm_post_clip: float = math.nan
    samples_per_s: float = math.nan
    tokens_per_s: float = math.nan
    memory_bytes: int = 0
    step_time_s: float = math.nan
    last_checkpoint_time: float | None = None
    last_checkpoint_path: str = ""
    last_checkpoint_step: int | None = None
    message: str = ""
    gpu: GpuEvent | None = None  # the newest reading of the run's GPUs, if there are any
    samples_path: str = ""  # the newest predictions of the fixed val samples
    on_track: Verdict | None = None  # the latest verdict against the preset's loss band, if it names one

    @property
    def fraction(self) -> float:
        return min(1.0, self.step / self.max_steps) if self.max_steps else 0.0

    @property
    def eta_s(self) -> float | None:
        if math.isnan(self.step_time_s) or not self.max_steps:
            return None
        return max(0, self.max_steps - self.step) * self.step_time_s

    def since_checkpoint_s(self, now: float | None = None) -> float | None:
        if self.last_checkpoint_time is None:
            return None
        return (time.time() if now is None else now) - self.last_checkpoint_time

    @property
    def finished(self) -> bool:
        return is_final(self.state)


@dataclass
class RunTotals:
    """Totals over a run's events, as run.json caches them (its "summary")."""

    step: int = 0
    last_loss: float | None = None
    last_val_loss: float | None = None
    best_val_loss: float | None = None
    last_val_acc: float | None = None
    on_track: str | None = None  # the latest verdict, e.g. "behind at step 1000" (listings show it)
    warnings: dict[str, int] = field(default_factory=dict)
    metrics_offset: int = 0

    @property
    def warning_count(self) -> int:
        return sum(self.warnings.values())

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, value: Any) -> RunTotals:
        if not isinstance(value, dict):
            return cls()
        try:
            return cls(**{k: value[k] for k in cls.__dataclass_fields__ if k in value})
        except TypeError:
            return cls()


def _known(values: list) -> list:
    return [v for v in values if math.isfinite(v)]


@dataclass
class GpuFigures:
    """A run's GPU readings over its whole length, for the history screen."""

    samples: int = 0
    utilization_sum: float = 0.0  # of the mean over the run's GPUs, each sample
    power_sum_w: float = 0.0  # of the total over the run's GPUs, each sample
    memory_used_max: int = 0  # of any one GPU
    memory_total: int = 0
    temperature_max_c: float = 0.0
    gpus: int = 0

    def add(self, event: GpuEvent) -> None:
        if not event.utilization:
            return
        self.samples += 1
        self.gpus = len(event.utilization)
        # A field a GPU does not report is NaN (gpu_health): left out, not let spoil the sums.
        utilization = _known(event.utilization)
        self.utilization_sum += sum(utilization) / len(utilization) if utilization else math.nan
        self.power_sum_w += sum(_known(event.power_w)) if _known(event.power_w) else math.nan
        self.memory_used_max = int(max(self.memory_used_max, *_known(event.memory_used), 0))
        self.memory_total = int(max(_known(event.memory_total), default=self.memory_total))
        self.temperature_max_c = max(self.temperature_max_c, *_known(event.temperature_c), 0.0)

    @property
    def mean_utilization(self) -> float:
        return self.utilization_sum / self.samples if self.samples else math.nan

    @property
    def mean_power_w(self) -> float:
        return self.power_sum_w / self.samples if self.samples else math.nan


class RunCurves:
    """The series the charts draw, and the lists of warnings and checkpoints."""

    def __init__(self) -> None:
        self.loss = SmoothedSeries(weight=LOSS_SMOOTHING)
        self.val_loss = Series(64)
        self.val_acc = Series(64)
        self.lr = Series()
        self.grad_pre = Series()
        self.grad_post = Series()
        self.samples = Series()  # samples seen up to each step (an x axis to compare runs by)
        self.wall = Series()  # when each step ended (time.time())
        self.warnings: list[WarningEvent] = []
        self.checkpoints: list[CheckpointEvent] = []
        self.version = 0  # bumps whenever a chart has something new to show

    def copy(self) -> RunCurves:
        other = copy.copy(self)
        for name in ("loss", "val_loss", "val_acc", "lr", "grad_pre", "grad_post", "samples", "wall"):
            setattr(other, name, getattr(self, name).copy())
        other.warnings, other.checkpoints = list(self.warnings), list(self.checkpoints)
        return other


class RunState:
    """Fold a run's events with `add`; `curves=False` keeps only the figures (listings)."""

    def __init__(self, *, curves: bool = True, totals: RunTotals | None = None):
        self.progress = RunProgress()
        self.totals = totals if totals is not None else RunTotals()
        self.curves: RunCurves | None = RunCurves() if curves else None
        self.gpu = GpuFigures()
        self._compiled_step_next = False
        self.start: StartEvent | None = None  # the latest start: a resume starts again
        self.on_track = OnTrack()  # the run's loss against its preset's band
        self.first_step = 0  # where the charts' x axis begins: the first start's step

    @property
    def chart_curves(self) -> RunCurves:
        """The curves of a state folded for a view; a listing's state (curves=False) has none."""
        if self.curves is None:
            raise ValueError("this RunState keeps no curves: fold it with curves=True to draw it")
        return self.curves

    # ------------------------------------------------------------------ the reducer

    def add(self, event: Event) -> None:
        p, totals, curves = self.progress, self.totals, self.curves
        if isinstance(event, StepEvent):
            p.step = event.step
            p.loss, p.lr = event.loss, event.lr
            p.grad_norm_pre_clip, p.grad_norm_post_clip = event.grad_norm_pre_clip, event.grad_norm_post_clip
            p.samples_per_s, p.tokens_per_s = event.samples_per_s, event.tokens_per_s
            p.memory_bytes = event.memory_bytes
            if self._compiled_step_next:  # its time was mostly compiling: no guide to the ETA
                self._compiled_step_next = False
            elif math.isnan(p.step_time_s):
                p.step_time_s = event.step_time_s
            else:
                p.step_time_s += STEP_TIME_SMOOTHING * (event.step_time_s - p.step_time_s)
            totals.step = max(totals.step, event.step)
            if math.isfinite(event.loss):
                totals.last_loss = event.loss
            verdict = self.on_track.step(event.step, event.loss)
            if verdict is not None:
                p.on_track = verdict
                totals.on_track = f"{verdict.word} at step {verdict.step}"
            if curves is not None:
                curves.loss.append(event.step, event.loss)
                curves.lr.append(event.step, event.lr)
                curves.grad_pre.append(event.step, event.grad_norm_pre_clip)
                curves.grad_post.append(event.step, event.grad_norm_post_clip)
                seen = float(curves.samples.y[-1]) if len(curves.samples) else float(p.start_step * p.global_batch)
                curves.samples.append(event.step, seen + p.global_batch)
                curves.wall.append(event.step, event.time)
                curves.version += 1
        elif isinstance(event, EvalEvent):
            if math.isfinite(event.val_loss):
                totals.last_val_loss, totals.last_val_acc = event.val_loss, event.val_token_acc
                if totals.best_val_loss is None or event.val_loss < totals.best_val_loss:
                    totals.best_val_loss = event.val_loss
            if curves is not None:
                curves.val_loss.append(event.step, event.val_loss)
                curves.val_acc.append(event.step, event.val_token_acc)
                curves.version += 1
        elif isinstance(event, WarningEvent):
            totals.warnings[event.kind] = totals.warnings.get(event.kind, 0) + 1
            if curves is not None:
                curves.warnings.append(event)
        elif isinstance(event, CheckpointEvent):
            p.last_checkpoint_time, p.last_checkpoint_path = event.time, event.path
            p.last_checkpoint_step = event.step
            if curves is not None:
                curves.checkpoints.append(event)
        elif isinstance(event, CheckpointFailedEvent):
            p.message = f"checkpoint failed: {event.error}"
        elif isinstance(event, SamplesEvent):
            p.samples_path = event.path
        elif isinstance(event, GpuEvent):
            p.gpu = event
            self.gpu.add(event)
        elif isinstance(event, CompileEvent):
            self._compiled_step_next = True
            p.compile_s = event.seconds if event.ok else None
            p.compile = event.mode if event.ok else "off"
            p.message = compile_message(event)
        elif isinstance(event, StateEvent):
            p.state = event.state
            if event.state in (PAUSED, RUNNING):
                p.paused = event.state == PAUSED
            p.step = max(p.step, event.step)
            if event.message:
                p.message = event.message
        elif isinstance(event, StartEvent):
            if self.start is None:
                self.first_step = event.start_step
            self.start = event
            p.run_id, p.run_dir, p.preset = event.run_id, event.run_dir, event.preset
            p.device, p.max_steps = event.device, event.max_steps
            p.step = p.start_step = event.start_step
            p.global_batch, p.world_size = event.global_batch, event.world_size
            p.micro_batch, p.grad_accum_steps, p.compile = event.micro_batch, event.grad_accum_steps, event.compile
            self.on_track.start(LossBand.from_json(event.expected), event.start_step, event.resumed)
            p.on_track = self.on_track.latest
            if event.time and p.last_checkpoint_time is None and event.resumed:
                p.last_checkpoint_time = event.time
            if curves is not None:
                curves.version += 1

    def add_all(self, events: Iterable[Event]) -> None:
        for event in events:
            try:
                self.add(event)
            except (TypeError, ValueError):  # a hand-edited line ("step": null): skipped like a torn one
                pass

    def copy(self) -> RunState:
        """An independent copy: a reader extends it while a screen still draws this one."""
        other = copy.copy(self)
        other.progress = dataclasses.replace(self.progress)
        other.totals = dataclasses.replace(self.totals, warnings=dict(self.totals.warnings))
        other.gpu = dataclasses.replace(self.gpu)
        other.curves = self.curves.copy() if self.curves is not None else None
        other.on_track = self.on_track.copy()
        return other

    # ------------------------------------------------------------------ read off the state

    @property
    def version(self) -> int:
        """Bumps whenever a chart has something new to show."""
        return self.curves.version if self.curves is not None else 0

    @property
    def max_steps(self) -> int:
        return self.progress.max_steps

    @property
    def codebook_size(self) -> int:
        return self.start.codebook_size if self.start else CODEBOOK_SIZE

    @property
    def random_guess_loss(self) -> float:
        return math.log(self.codebook_size)

    def best_val(self) -> tuple[int, float] | None:
        """(step, val loss) of the best evaluation, from the curves."""
        if self.curves is None or not len(self.curves.val_loss):
            return None
        y = self.curves.val_loss.y
        i = int(y.argmin())
        return int(self.curves.val_loss.x[i]), float(y[i])
