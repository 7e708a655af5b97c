"""Evaluations kept in a run folder (`evaluations/step_XXXXXXXX-<time>.json`), so
`hwm-tui runs show` can list a run's latest one without torch."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from ..runs.folder import RunFolder
from ..runtime.atomic import write_json_atomic

EVALUATIONS_DIR = "evaluations"


def save_evaluation(folder: RunFolder, result: dict[str, Any]) -> Path:
    directory = folder.path / EVALUATIONS_DIR
    directory.mkdir(exist_ok=True)
    result = {**result, "evaluated_at": time.time()}
    name = f"step_{result['step']:08d}-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path = directory / name
    write_json_atomic(path, result)
    return path


def latest_evaluation(folder: RunFolder) -> dict[str, Any] | None:
    """The newest evaluation saved in a run folder; None if none (or none readable)."""
    directory = folder.path / EVALUATIONS_DIR
    try:
        paths = sorted(directory.glob("step_*.json"), key=lambda p: p.stat().st_mtime)
    except OSError:
        return None
    for path in reversed(paths):
        try:
            value = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(value, dict):
            return value
    return None
