"""Facts about past and present runs, read only from their folders.

The history screen, `hwm-tui runs list/show` and `watch` all use these, so they
always agree. A folder that cannot be read is listed as broken; it never hides
the others.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..errors import RunError
from ..events.follow import MetricsFollower
from ..events.log import read_events
from ..events.run_state import RunState, RunTotals
from ..events.types import Event
from ..status import BROKEN, RESUMABLE, RUNNING
from .checkpoint import latest_readable
from .folder import RunFolder
from .liveness import effective_status


def accumulate(folder: RunFolder, cached: RunTotals | None = None) -> RunState:
    """The run's figures, reading metrics.jsonl only past what `cached` covers."""
    state = RunState(curves=False, totals=cached)
    metrics = MetricsFollower(folder.metrics, state.totals.metrics_offset)
    read = metrics.poll()
    if read.rewound:  # metrics were rewound on resume: start over
        state = RunState(curves=False)
    state.add_all(read.events)
    state.totals.metrics_offset = metrics.offset
    return state


@dataclass
class RunSummary:
    id: str
    path: str
    status: str
    preset: str = ""
    device: str = ""
    started: float | None = None
    ended: float | None = None
    duration_s: float | None = None
    step: int = 0
    max_steps: int = 0
    last_loss: float | None = None
    last_val_loss: float | None = None
    best_val_loss: float | None = None
    warnings: dict[str, int] = field(default_factory=dict)
    latest_checkpoint: str | None = None
    latest_checkpoint_step: int | None = None
    resumable: bool = False
    world_size: int = 1
    error: str | None = None
    sweep: str | None = None  # the id of the sweep the run belongs to

    @property
    def warning_count(self) -> int:
        return sum(self.warnings.values())

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["warning_count"] = self.warning_count
        return out


def summarize(folder: RunFolder, *, now: float | None = None) -> RunSummary:
    now = time.time() if now is None else now
    try:
        meta = folder.read_meta()
    except RunError as exc:
        return RunSummary(id=folder.id, path=str(folder.path), status=BROKEN, error=str(exc))
    totals = accumulate(folder, RunTotals.from_json(meta.get("summary"))).totals
    status = effective_status(meta, now, folder=folder)
    started = _number(meta.get("started"))
    ended = _number(meta.get("ended"))
    end_time: float | None
    if ended is None and status == RUNNING:
        end_time = now
    elif ended is None:
        end_time = _number(meta.get("heartbeat"))
    else:
        end_time = ended
    checkpoint = latest_readable(folder.checkpoints)
    return RunSummary(
        id=str(meta.get("id", folder.id)),
        path=str(folder.path),
        status=status,
        preset=str(meta.get("preset", "")),
        device=str(meta.get("device", "")),
        started=started,
        ended=ended,
        duration_s=(end_time - started) if (started is not None and end_time is not None) else None,
        step=totals.step,
        max_steps=int(meta.get("max_steps") or 0),
        last_loss=totals.last_loss,
        last_val_loss=totals.last_val_loss,
        best_val_loss=totals.best_val_loss,
        warnings=dict(totals.warnings),
        latest_checkpoint=str(checkpoint[1]) if checkpoint else None,
        latest_checkpoint_step=checkpoint[0] if checkpoint else None,
        resumable=checkpoint is not None and status in RESUMABLE,
        world_size=int(meta.get("world_size") or 1),
        error=meta.get("error"),
        sweep=_sweep_id(meta),
    )


def _sweep_id(meta: dict[str, Any]) -> str | None:
    sweep = meta.get("sweep")
    return str(sweep["id"]) if isinstance(sweep, dict) and sweep.get("id") else None


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def run_folders(runs_dir: Path) -> list[RunFolder]:
    if not runs_dir.is_dir():
        return []
    out = []
    try:
        children = list(runs_dir.iterdir())
    except OSError:
        return []
    for child in children:
        if (
            child.is_dir()
            and not child.name.startswith(".")
            and (
                (child / "run.json").exists() or (child / "metrics.jsonl").exists() or (child / "config.toml").exists()
            )
        ):
            out.append(RunFolder(child))
    return out


def safe_summarize(folder: RunFolder, now: float) -> RunSummary:
    """A run's summary, or a 'broken' entry saying why: one odd folder (a hand-edited
    run.json, an unreadable file) must never hide the others."""
    try:
        return summarize(folder, now=now)
    except Exception as exc:  # noqa: BLE001 - anything a damaged folder can raise
        return RunSummary(
            id=folder.id, path=str(folder.path), status=BROKEN, error=f"cannot be read ({type(exc).__name__}: {exc})"
        )


def list_runs(runs_dir: Path) -> list[RunSummary]:
    """Every run in `runs_dir`, newest first; unreadable ones as 'broken'."""
    now = time.time()
    summaries = [safe_summarize(folder, now) for folder in run_folders(runs_dir)]
    return sorted(summaries, key=lambda s: (s.started or 0.0, s.id), reverse=True)


def resolve_run(runs_dir: Path, ref: str) -> RunFolder:
    """A run by path, by id, or by a unique prefix of its id."""
    as_path = Path(ref).expanduser()
    if as_path.is_dir() and (as_path / "run.json").exists():
        return RunFolder(as_path)
    if (runs_dir / ref / "run.json").exists():
        return RunFolder(runs_dir / ref)
    matches = [f for f in run_folders(runs_dir) if f.id.startswith(ref)]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise RunError(f"no run '{ref}' in {runs_dir}: `hwm-tui runs list` shows the runs there, or pass --runs-dir")
    names = ", ".join(sorted(m.id for m in matches)[:5])
    raise RunError(f"'{ref}' matches several runs ({names}): give more of the id")


def newest_running(runs_dir: Path) -> RunFolder | None:
    for summary in list_runs(runs_dir):
        if summary.status == RUNNING:
            return RunFolder(Path(summary.path))
    return None


def read_run_events(folder: RunFolder) -> list[Event]:
    events, _ = read_events(folder.metrics)
    return events
