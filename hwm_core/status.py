"""A run's statuses, which of them are final, and the exit code each ends a process with.

run.json, the trainer's last state event, the history screen and every command's
exit code all speak of these; this is the one place they are defined.
"""

from __future__ import annotations

from enum import StrEnum


class State(StrEnum):
    """Where a run stands: a StateEvent's state, run.json's status, a listing's. A StrEnum:
    each is its string on disk (metrics.jsonl, run.json), so old runs read as they did."""

    STARTING = "starting"  # nothing heard from the trainer yet (a reader's state only)
    RUNNING = "running"
    PAUSED = "paused"
    COMPILING = "compiling"  # torch.compile's first steps
    CHECKPOINTING = "checkpointing"
    COMPLETED = "completed"
    INTERRUPTED = "interrupted"
    FAILED = "failed"
    DIVERGED = "diverged"  # stopped by the divergence guard; resumable with other settings
    BROKEN = "broken"  # a run folder whose record cannot be read (listings only)


class BenchOutcome(StrEnum):
    """A row of `hwm-tui bench train`: the preset ran, did not fit its device, or failed."""

    OK = "ok"
    DOES_NOT_FIT = "does not fit"
    FAILED = "failed"


STARTING, RUNNING, PAUSED, COMPILING, CHECKPOINTING = (
    State.STARTING,
    State.RUNNING,
    State.PAUSED,
    State.COMPILING,
    State.CHECKPOINTING,
)
COMPLETED, INTERRUPTED, FAILED, DIVERGED, BROKEN = (
    State.COMPLETED,
    State.INTERRUPTED,
    State.FAILED,
    State.DIVERGED,
    State.BROKEN,
)
FINAL_STATES = (COMPLETED, INTERRUPTED, FAILED, DIVERGED)
RESUMABLE = (INTERRUPTED, FAILED, DIVERGED, COMPLETED)  # given a checkpoint (completed: with more steps)

# Interrupted means stopped on purpose (q, or a stop from `hwm-tui watch`), checkpointed:
# not an error. torchrun also takes any non-zero exit of a rank as a failure.
_EXIT_CODES: dict[str, int] = {COMPLETED: 0, INTERRUPTED: 0, FAILED: 1, DIVERGED: 3}


def is_final(state: str) -> bool:
    return state in FINAL_STATES


def exit_code(status: str | None, signal_received: int | None = None) -> int:
    """0 completed or stopped on purpose, 1 failed (or never said), 3 diverged, 128+n
    when signal n stopped the run."""
    if status == INTERRUPTED and signal_received:
        return 128 + signal_received
    return _EXIT_CODES.get(status or FAILED, 1)
