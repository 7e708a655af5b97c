"""Colours and words shared by the headless line and the dashboard."""

from hwm_core.status import COMPLETED, DIVERGED, FAILED, INTERRUPTED

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
FINAL_STATE_LABELS = {COMPLETED: "finished", INTERRUPTED: "stopped", FAILED: "failed", DIVERGED: "diverged"}
STATE_LABELS = {**FINAL_STATE_LABELS, "compiling": "compiling…"}

STATE_STYLES = {
    "running": "bold green",
    "pausing…": "bold yellow",
    "paused": "bold yellow",
    "checkpointing": "bold cyan",
    "compiling…": "bold cyan",
    "stopping…": "bold yellow",
    "finished": "bold green",
    "stopped": "bold yellow",
    "failed": "bold red",
    "diverged": "bold red",
    "starting": "bold cyan",
    "not running": "bold red",
}

# A run's status in listings (history, comparison).
STATUS_STYLES = {
    "running": "green",
    "completed": "bold green",
    "interrupted": "yellow",
    "failed": "red",
    "diverged": "bold red",
    "broken": "bold red",
}

# A run against its preset's loss band (hwm_core/events/on_track.py).
ON_TRACK_STYLES = {"on track": "green", "behind": "yellow", "ahead": "cyan"}
