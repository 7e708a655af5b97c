"""Where a run stands, reduced from its events: step, state, speed, ETA.

Both the headless progress line and the dashboard's status bar show these
figures; keeping the arithmetic here makes them agree.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

from .events import (CheckpointEvent, CheckpointFailedEvent, Event, EvalEvent, StartEvent, StateEvent,
                     StepEvent, WarningEvent)

STEP_TIME_SMOOTHING = 0.1  # EMA weight of the newest step time


@dataclass
class RunProgress:
    run_id: str = ""
    run_dir: str = ""
    preset: str = ""
    device: str = ""
    state: str = "starting"
    step: int = 0
    start_step: int = 0
    max_steps: int = 0
    global_batch: int = 0
    world_size: int = 1
    loss: float = math.nan
    lr: float = math.nan
    grad_norm_pre_clip: float = math.nan
    grad_norm_post_clip: float = math.nan
    samples_per_s: float = math.nan
    tokens_per_s: float = math.nan
    memory_bytes: int = 0
    step_time_s: float = math.nan
    val_loss: float = math.nan
    val_token_acc: float = math.nan
    last_checkpoint_time: float | None = None
    last_checkpoint_path: str = ""
    last_checkpoint_step: int | None = None
    message: str = ""
    warnings: dict[str, int] = field(default_factory=dict)

    def add(self, event: Event) -> None:
        if isinstance(event, StepEvent):
            self.step = event.step
            self.loss, self.lr = event.loss, event.lr
            self.grad_norm_pre_clip, self.grad_norm_post_clip = event.grad_norm_pre_clip, event.grad_norm_post_clip
            self.samples_per_s, self.tokens_per_s = event.samples_per_s, event.tokens_per_s
            self.memory_bytes = event.memory_bytes
            if math.isnan(self.step_time_s):
                self.step_time_s = event.step_time_s
            else:
                self.step_time_s += STEP_TIME_SMOOTHING * (event.step_time_s - self.step_time_s)
        elif isinstance(event, EvalEvent):
            self.val_loss, self.val_token_acc = event.val_loss, event.val_token_acc
        elif isinstance(event, WarningEvent):
            self.warnings[event.kind] = self.warnings.get(event.kind, 0) + 1
        elif isinstance(event, CheckpointEvent):
            self.last_checkpoint_time = event.time
            self.last_checkpoint_path = event.path
            self.last_checkpoint_step = event.step
        elif isinstance(event, CheckpointFailedEvent):
            self.message = f"checkpoint failed: {event.error}"
        elif isinstance(event, StateEvent):
            self.state = event.state
            self.step = max(self.step, event.step)
            if event.message:
                self.message = event.message
        elif isinstance(event, StartEvent):
            self.run_id, self.run_dir, self.preset = event.run_id, event.run_dir, event.preset
            self.device, self.max_steps = event.device, event.max_steps
            self.step = self.start_step = event.start_step
            self.global_batch, self.world_size = event.global_batch, event.world_size
            if event.time and self.last_checkpoint_time is None and event.resumed:
                self.last_checkpoint_time = event.time

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
        return self.state in ("completed", "interrupted", "failed")


def format_duration(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "--"
    seconds = int(round(seconds))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d{hours:02d}h"
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


def format_rate(value: float) -> str:
    if not math.isfinite(value):
        return "--"
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(value) >= scale:
            return f"{value / scale:.1f}{unit}"
    return f"{value:.1f}"


def format_bytes(value: float) -> str:
    if not value:
        return "--"
    for unit, scale in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if value >= scale:
            return f"{value / scale:.1f} {unit}"
    return f"{int(value)} B"
