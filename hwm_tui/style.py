"""Colours and words shared by the headless line and the dashboard."""

from hwm_core.status import (
    BROKEN,
    CHECKPOINTING,
    COMPILING,
    COMPLETED,
    DIVERGED,
    FAILED,
    INTERRUPTED,
    PAUSED,
    RUNNING,
    STARTING,
)

# vanishing yellow, instability orange, everything that loses a step red.
# Rich style names, for Text and the headless console:
WARNING_STYLES = {
    "vanishing": "yellow",
    "instability": "dark_orange",
    "nonfinite": "red",
    "skipped": "red",
    "checkpoint": "red",
    "disk": "red",
    "compile": "yellow",
    "divergence": "red",
    "mirror": "yellow",
}

# The same colours as Textual markup takes them (border titles): CSS colour names.
WARNING_MARKUP = {kind: {"dark_orange": "darkorange"}.get(style, style) for kind, style in WARNING_STYLES.items()}

# How the dashboard names a run's final states (run.json keeps the statuses), and
# states that last a while.
FINAL_STATE_LABELS: dict[str, str] = {
    COMPLETED: "finished",
    INTERRUPTED: "stopped",
    FAILED: "failed",
    DIVERGED: "diverged",
}
STATE_LABELS: dict[str, str] = {**FINAL_STATE_LABELS, COMPILING: "compiling…"}

# keyed by what the status bar shows: a state, or a label of one (the words above, and
# the pending "pausing…", "stopping…")
STATE_STYLES: dict[str, str] = {
    RUNNING: "bold green",
    "pausing…": "bold yellow",
    PAUSED: "bold yellow",
    CHECKPOINTING: "bold cyan",
    "compiling…": "bold cyan",
    "stopping…": "bold yellow",
    "finished": "bold green",
    "stopped": "bold yellow",
    "failed": "bold red",
    "diverged": "bold red",
    STARTING: "bold cyan",
    "not running": "bold red",
}

# A run's status in listings (history, comparison).
STATUS_STYLES: dict[str, str] = {
    RUNNING: "green",
    COMPLETED: "bold green",
    INTERRUPTED: "yellow",
    FAILED: "red",
    DIVERGED: "bold red",
    BROKEN: "bold red",
}

# A run against its preset's loss band (hwm_core/events/on_track.py).
ON_TRACK_STYLES = {"on track": "green", "behind": "yellow", "ahead": "cyan"}
