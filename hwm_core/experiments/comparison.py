"""Several runs side by side: the config values in which they differ, and each run's
steps, best and last val loss, warnings and status, and its latest evaluation
(tokens right, and under another sample's states).

The history screen's comparison and `hwm-tui runs compare` both use this, so the
screen and the script agree; a run is named by its id and the values that set it
apart (`lr=5e-05`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from ..config.loading import config_from_toml_file
from ..config.schema import SECTIONS
from ..errors import UserError
from ..predictions.evaluation_store import EvaluationHeadline, headline, latest_evaluation
from ..runs.folder import RunFolder
from ..runs.history import RunSummary, safe_summarize

# Keys that never set runs apart in a way a legend should say (paths, wording).
NOT_COMPARED = {"description", "data.train", "data.val"}
MAX_RUNS = 8


def flat_config(folder: RunFolder) -> dict[str, Any]:
    """A run's resolved config as dotted keys; empty if its config.toml cannot be read."""
    try:
        config = config_from_toml_file(folder.config_toml)
    except (UserError, OSError):
        return {}
    out: dict[str, Any] = {"preset": config.preset}
    for section in SECTIONS:
        for key, value in config.to_dict()[section].items():
            out[f"{section}.{key}"] = value
    return out


def differing_keys(configs: list[dict[str, Any]]) -> list[str]:
    """Dotted keys whose values are not the same in every config, in schema order."""
    keys: list[str] = []
    for config in configs:
        keys += [k for k in config if k not in keys]
    return [k for k in keys if k not in NOT_COMPARED and len({repr(c.get(k)) for c in configs}) > 1]


def format_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list):
        return "[" + ",".join(format_value(v) for v in value) + "]"
    return str(value)


def short_key(key: str) -> str:
    return key.split(".", 1)[-1]


@dataclass
class ComparedRun:
    summary: RunSummary
    values: dict[str, Any] = field(default_factory=dict)  # the differing keys' values
    evaluation: EvaluationHeadline | None = None  # its latest `hwm-tui evaluate`, if any

    @property
    def label(self) -> str:
        """The run's id and what sets it apart, e.g. `20261126-130000-cpu lr=5e-05`."""
        parts = [f"{short_key(k)}={format_value(v)}" for k, v in self.values.items()]
        return " ".join([self.summary.id, *parts])

    def to_json(self) -> dict[str, Any]:
        s = self.summary
        return {
            "id": s.id,
            "status": s.status,
            "values": self.values,
            "steps": s.step,
            "max_steps": s.max_steps,
            "best_val_loss": _finite(s.best_val_loss),
            "last_val_loss": _finite(s.last_val_loss),
            "warnings": s.warning_count,
            "path": s.path,
            "latest_evaluation": self.evaluation.to_json() if self.evaluation is not None else None,
        }


@dataclass
class Comparison:
    keys: list[str]
    runs: list[ComparedRun]

    def to_json(self) -> dict[str, Any]:
        return {"differing_keys": self.keys, "runs": [r.to_json() for r in self.runs]}


def compare(folders: list[RunFolder], now: float) -> Comparison:
    if len(folders) > MAX_RUNS:
        raise UserError(f"{len(folders)} runs: a comparison shows at most {MAX_RUNS}; leave some out")
    configs = [flat_config(f) for f in folders]
    keys = differing_keys(configs)
    runs = [
        ComparedRun(safe_summarize(f, now), {k: c.get(k) for k in keys}, headline(latest_evaluation(f)))
        for f, c in zip(folders, configs)
    ]
    return Comparison(keys, runs)


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None
