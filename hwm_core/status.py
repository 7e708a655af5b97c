"""A run's statuses, which of them are final, and the exit code each ends a process with.

run.json, the trainer's last state event, the history screen and every command's
exit code all speak of these; this is the one place they are defined.
"""

from __future__ import annotations

RUNNING, COMPLETED, INTERRUPTED, FAILED = "running", "completed", "interrupted", "failed"
DIVERGED = "diverged"  # stopped by the divergence guard; resumable with other settings
BROKEN = "broken"  # a run folder whose record cannot be read (listings only)
FINAL_STATES = (COMPLETED, INTERRUPTED, FAILED, DIVERGED)
RESUMABLE = (INTERRUPTED, FAILED, DIVERGED, COMPLETED)  # given a checkpoint (completed: with more steps)

# Interrupted means stopped on purpose (q, or a stop from `hwm-tui watch`), checkpointed:
# not an error. torchrun also takes any non-zero exit of a rank as a failure.
_EXIT_CODES = {COMPLETED: 0, INTERRUPTED: 0, FAILED: 1, DIVERGED: 3}


def is_final(state: str) -> bool:
    return state in FINAL_STATES


def exit_code(status: str | None, signal_received: int | None = None) -> int:
    """0 completed or stopped on purpose, 1 failed (or never said), 3 diverged, 128+n
    when signal n stopped the run."""
    if status == INTERRUPTED and signal_received:
        return 128 + signal_received
    return _EXIT_CODES.get(status or FAILED, 1)
