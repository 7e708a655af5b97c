"""Typed events the trainer publishes: one dataclass a kind, named by its `type`.

Every event goes to in-process subscribers (bus.py) and, as one JSON object a
line, to the run's `metrics.jsonl` (log.py), which is what the history screen,
`runs show` and `watch` read later. A new field needs a default, so older lines
still parse.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field


def _now() -> float:
    return time.time()


@dataclass
class StepEvent:
    step: int
    loss: float
    lr: float
    grad_norm_pre_clip: float
    grad_norm_post_clip: float
    grad_max_abs: float
    grad_min_abs: float
    clipped: bool
    samples_per_s: float
    tokens_per_s: float
    step_time_s: float
    memory_bytes: int
    skipped: bool = False
    data_wait_s: float = 0.0  # of step_time_s, how long the step waited for its micro-batches
    time: float = field(default_factory=_now)
    type: str = "step"


@dataclass
class EvalEvent:
    step: int
    val_loss: float
    val_token_acc: float
    time: float = field(default_factory=_now)
    type: str = "eval"


@dataclass
class WarningEvent:
    step: int
    kind: str  # instability | vanishing | nonfinite | skipped | checkpoint | data | disk
    value: float
    message: str
    time: float = field(default_factory=_now)
    type: str = "warning"


@dataclass
class CheckpointEvent:
    step: int
    path: str
    seconds: float
    bytes: int
    time: float = field(default_factory=_now)
    type: str = "checkpoint"


@dataclass
class CheckpointFailedEvent:
    step: int
    error: str
    time: float = field(default_factory=_now)
    type: str = "checkpoint_failed"


@dataclass
class CompileEvent:
    """The first step of a compiled run is done: how long compiling took, or why it
    failed (the run then goes on eager)."""

    step: int
    mode: str
    seconds: float
    ok: bool
    message: str = ""
    time: float = field(default_factory=_now)
    type: str = "compile"


@dataclass
class SamplesEvent:
    """New predictions of the fixed val samples are in `path` (samples/ of the run)."""

    step: int
    path: str
    count: int
    time: float = field(default_factory=_now)
    type: str = "samples"


@dataclass
class GpuEvent:
    """Each of the run's GPUs as NVML reads it (lists in the order of `index`)."""

    step: int
    index: list  # CUDA device numbers
    utilization: list  # % of the last sample period a kernel ran
    memory_used: list  # bytes, the whole GPU's (other processes' too)
    memory_total: list
    power_w: list
    temperature_c: list
    time: float = field(default_factory=_now)
    type: str = "gpu"


@dataclass
class StateEvent:
    """running, paused, checkpointing, completed, interrupted, failed."""

    state: str
    step: int
    message: str = ""
    time: float = field(default_factory=_now)
    type: str = "state"


@dataclass
class StartEvent:
    """What a viewer needs to know about the run before the first step."""

    run_id: str
    run_dir: str
    preset: str
    device: str
    start_step: int
    max_steps: int
    peak_lr: float
    warmup_steps: int
    schedule: str
    max_grad_norm: float
    global_batch: int
    world_size: int
    num_parameters: int
    tokens_per_sample: int
    codebook_size: int
    resumed: bool = False
    micro_batch: int = 0  # samples per forward/backward on each process (0: not recorded)
    grad_accum_steps: int = 0
    compile: str = "off"
    # the loss band of a healthy run (on_track.LossBand.to_json), when the preset names one for this data
    expected: dict | None = None
    time: float = field(default_factory=_now)
    type: str = "start"


Event = (
    StepEvent
    | EvalEvent
    | WarningEvent
    | CheckpointEvent
    | CheckpointFailedEvent
    | CompileEvent
    | SamplesEvent
    | GpuEvent
    | StateEvent
    | StartEvent
)
EVENT_TYPES: dict[str, type] = {
    str(cls.__dataclass_fields__["type"].default): cls
    for cls in (
        StepEvent,
        EvalEvent,
        WarningEvent,
        CheckpointEvent,
        CheckpointFailedEvent,
        CompileEvent,
        SamplesEvent,
        GpuEvent,
        StateEvent,
        StartEvent,
    )
}
