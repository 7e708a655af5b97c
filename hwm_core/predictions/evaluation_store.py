"""Evaluations kept in a run folder (`evaluations/step_XXXXXXXX-<time>.json`), so
`hwm-tui runs show` can list a run's latest one without torch."""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass
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


@dataclass(frozen=True)
class EvaluationHeadline:
    """An evaluation's figures a listing shows in one line: does the model predict, and
    does it follow its actions? None where the evaluation holds no such figure (a
    split of one sample has no other states; a real split has no reference)."""

    step: int
    samples: int
    accuracy: float
    other_states_accuracy: float | None
    delta_accuracy: float | None
    copy_last_accuracy: float
    states_shift_accuracy: float | None

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def headline(result: dict[str, Any] | None) -> EvaluationHeadline | None:
    """The headline of a saved evaluation; None for none, or one too old or damaged to hold it."""
    if result is None:
        return None
    try:
        control = result.get("controllability") or {}
        baselines = result["baselines"]
        return EvaluationHeadline(
            step=int(result["step"]),
            samples=int(result["samples"]),
            accuracy=float(result["teacher_forced"]["token_accuracy"]),
            other_states_accuracy=_maybe(control.get("other_states_token_accuracy")),
            delta_accuracy=_maybe(control.get("delta_token_accuracy")),
            copy_last_accuracy=float(baselines["copy_last_accuracy"]),
            states_shift_accuracy=_maybe(baselines.get("states_shift_accuracy")),
        )
    except (KeyError, TypeError, ValueError):
        return None


def _maybe(value: Any) -> float | None:
    return None if value is None else float(value)
