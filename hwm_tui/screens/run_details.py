"""What the history screen has read of each run: its curves, config and latest
evaluation, kept for the
last few runs looked at, so a refresh reads only what a run's metrics.jsonl gained."""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from hwm_core.events.follow import MetricsFollower
from hwm_core.events.run_state import RunState
from hwm_core.predictions.evaluation_store import EvaluationHeadline, headline, latest_evaluation
from hwm_core.runs.folder import RunFolder
from hwm_core.runs.history import RunSummary

DETAILS_KEPT = 8  # runs whose parsed metrics stay in memory (a 60,000-step run is ~10 MB)


@dataclass(frozen=True)
class RunDetail:
    """What was read of one run. Its view is never changed once made (the screen may be
    drawing it); a newer one starts from a copy."""

    metrics: MetricsFollower  # where the read stopped; copied before it reads on
    view: RunState
    config: str
    evaluation: EvaluationHeadline | None = None  # its latest `hwm-tui evaluate`, read at each refresh


class RunDetails:
    """The cache of details, shared by the screen and its worker threads (a superseded
    detail worker may still be finishing)."""

    def __init__(self) -> None:
        self._details: OrderedDict[str, RunDetail] = OrderedDict()
        self._lock = threading.Lock()

    def read(self, run_id: str, summary: RunSummary) -> RunDetail:
        """The run's curves and config, reading only the part of metrics.jsonl not read before."""
        folder = RunFolder(Path(summary.path))
        with self._lock:
            cached = self._details.get(run_id)
        metrics = cached.metrics.copy() if cached is not None else MetricsFollower(folder.metrics)
        read = metrics.poll()
        evaluation = headline(latest_evaluation(folder))
        if cached is not None and not read.rewound and not read.events and evaluation == cached.evaluation:
            return cached
        if cached is not None and not read.rewound:
            view, config = cached.view.copy(), cached.config
        else:
            view, config = RunState(), _read_config(folder)
        view.add_all(read.events)
        if view.start is None and summary.max_steps:
            view.progress.max_steps = summary.max_steps
        detail = RunDetail(metrics, view, config, evaluation)
        with self._lock:
            self._details[run_id] = detail
            self._details.move_to_end(run_id)
            while len(self._details) > DETAILS_KEPT:
                self._details.popitem(last=False)
        return detail

    def forget(self, run_id: str) -> None:
        with self._lock:
            self._details.pop(run_id, None)


def _read_config(folder: RunFolder) -> str:
    try:
        return folder.config_toml.read_text()
    except (OSError, ValueError) as exc:  # ValueError: not UTF-8 (a damaged or binary file)
        return f"# config.toml cannot be read: {getattr(exc, 'strerror', None) or exc}"
