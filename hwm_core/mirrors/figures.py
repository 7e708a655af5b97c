"""What each event becomes in a mirror: named scalars and lines of text.

One mapping for every mirror (and for `runs export --tensorboard`), so TensorBoard
and W&B show the same tags for the same figures.
"""

from __future__ import annotations

from ..events.types import (
    CheckpointEvent,
    CompileEvent,
    EvalEvent,
    Event,
    GpuEvent,
    StartEvent,
    StateEvent,
    StepEvent,
    WarningEvent,
)
from ..status import RUNNING

GIB = 2**30

# A StepEvent's fields and the tags they go to.
STEP_TAGS = {
    "loss": "train/loss",
    "lr": "train/lr",
    "grad_norm_pre_clip": "grad/norm_pre_clip",
    "grad_norm_post_clip": "grad/norm_post_clip",
    "grad_max_abs": "grad/max_abs",
    "grad_min_abs": "grad/min_abs",
    "tokens_per_s": "perf/tokens_per_s",
    "samples_per_s": "perf/samples_per_s",
    "step_time_s": "perf/step_time_s",
    "data_wait_s": "perf/data_wait_s",
}
EVAL_TAGS = {"val_loss": "eval/val_loss", "val_token_acc": "eval/val_token_acc"}


def scalars(event: Event) -> dict[str, float]:
    if isinstance(event, StepEvent):
        out = {tag: float(getattr(event, name)) for name, tag in STEP_TAGS.items()}
        out["perf/memory_gib"] = event.memory_bytes / GIB
        out["train/clipped"] = float(event.clipped)
        out["train/skipped"] = float(event.skipped)
        return out
    if isinstance(event, EvalEvent):
        return {tag: float(getattr(event, name)) for name, tag in EVAL_TAGS.items()}
    if isinstance(event, GpuEvent):
        out = {}
        for i, index in enumerate(event.index):
            out[f"gpu{index}/utilization"] = float(event.utilization[i])
            out[f"gpu{index}/memory_used_gib"] = event.memory_used[i] / GIB
            out[f"gpu{index}/power_w"] = float(event.power_w[i])
            out[f"gpu{index}/temperature_c"] = float(event.temperature_c[i])
        return out
    if isinstance(event, WarningEvent):
        return {f"warnings/{event.kind}": float(event.value)}
    if isinstance(event, CheckpointEvent):
        return {"checkpoint/seconds": float(event.seconds), "checkpoint/gib": event.bytes / GIB}
    if isinstance(event, CompileEvent) and event.ok:
        return {"compile/seconds": float(event.seconds)}
    return {}


def text(event: Event) -> tuple[str, str] | None:
    """(tag, line) for events a person reads rather than plots."""
    if isinstance(event, WarningEvent):
        return "warnings", f"step {event.step} [{event.kind}] {event.message}"
    if isinstance(event, StateEvent) and event.state != RUNNING:
        return "state", f"step {event.step}: {event.state}" + (f" ({event.message})" if event.message else "")
    if isinstance(event, CompileEvent) and not event.ok:
        return "state", f"step {event.step}: compiling ({event.mode}) failed: {event.message}"
    if isinstance(event, StartEvent):
        how = "resumed" if event.resumed else "started"
        return "state", (
            f"step {event.start_step}: {how} on {event.device}, preset {event.preset}, "
            f"global batch {event.global_batch}, {event.num_parameters:,} parameters"
        )
    return None
