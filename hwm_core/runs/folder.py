"""A run's folder on disk: where its files are, and making a new one.

    <runs-dir>/<run-id>/
        config.toml         the fully resolved configuration
        run.json            id, preset, status, times, device, versions, heartbeat, summary
        metrics.jsonl       every event, one JSON object a line
        state_stats.json    state normalisation from the train split
        checkpoints/        step_XXXXXXXX.safetensors, written atomically
        commands/           commands dropped by `hwm-tui watch`
        tensorboard/        event files, with `train --log tensorboard` or `runs export --tensorboard`
        wandb/              the W&B run's local files, with `train --log wandb` (hwm_core/mirrors)
        .lock               held (flock) by the one process that trains the run

The lock is in lock.py, run.json's writer in record.py, whether a run lives in liveness.py.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from typing import Any

from ..errors import RunError
from ..runtime.atomic import fsync_dir, write_json_atomic

RUN_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def default_runs_dir(explicit: str | Path | None = None) -> Path:
    if explicit:
        return Path(explicit).expanduser()
    if os.environ.get("HWM_RUNS_DIR"):
        return Path(os.environ["HWM_RUNS_DIR"]).expanduser()
    return Path("runs")


class RunFolder:
    """Paths and metadata of one run folder."""

    def __init__(self, path: Path):
        self.path = Path(path)

    @property
    def id(self) -> str:
        return self.path.name

    @property
    def run_json(self) -> Path:
        return self.path / "run.json"

    @property
    def config_toml(self) -> Path:
        return self.path / "config.toml"

    @property
    def metrics(self) -> Path:
        return self.path / "metrics.jsonl"

    @property
    def rolled_back_metrics(self) -> Path:
        return self.path / "metrics.rolled_back.jsonl"

    @property
    def state_stats(self) -> Path:
        return self.path / "state_stats.json"

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    @property
    def lock_file(self) -> Path:
        return self.path / ".lock"

    def read_meta(self) -> dict[str, Any]:
        try:
            meta = json.loads(self.run_json.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise RunError(f"{self.path} has no run.json: it is not a run folder") from None
        except (OSError, ValueError, UnicodeDecodeError) as exc:
            raise RunError(f"{self.run_json} cannot be read ({exc}): the run's record is damaged") from None
        if not isinstance(meta, dict):
            raise RunError(f"{self.run_json} does not hold a JSON object: the run's record is damaged")
        return meta

    def write_meta(self, meta: dict[str, Any]) -> None:
        write_json_atomic(self.run_json, meta)


def new_run_id(preset: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(preset).stem).strip("-") or "run"
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{slug}"


def create_run_folder(runs_dir: Path, preset: str, run_id: str | None = None) -> RunFolder:
    """A new, empty run folder; its id is the time and the preset unless given."""
    try:
        runs_dir.mkdir(parents=True, exist_ok=True)
        probe = runs_dir / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise RunError(
            f"cannot write to the runs dir {runs_dir} ({exc.strerror or exc}): "
            "pass --runs-dir with a writable folder or set HWM_RUNS_DIR"
        ) from None
    if run_id is not None and not RUN_ID_RE.match(run_id):
        raise RunError(f"run id {run_id!r} may hold only letters, digits, '.', '_' and '-'")
    base = run_id or new_run_id(preset)
    for n in range(1 if run_id else 1000):
        candidate = base + (f"-{n + 1}" if n else "")
        path = runs_dir / candidate
        try:
            path.mkdir()
        except FileExistsError:
            continue
        except OSError as exc:
            raise RunError(
                f"cannot create a run folder in {runs_dir} ({exc.strerror}): free disk space or pass another --runs-dir"
            ) from None
        (path / "checkpoints").mkdir()
        # Both new entries on disk before anything in the run relies on them.
        fsync_dir(path)
        fsync_dir(runs_dir)
        return RunFolder(path)
    raise RunError(f"a run named {base} already exists in {runs_dir}: choose another id")
