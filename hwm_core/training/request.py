"""What a user asks to train (`hwm-tui train` flags), and the configuration it resolves to.

--data, --val-data, --max-steps, --memory-limit and --log are overrides like any --set, so they are
validated the same way and recorded in the run's config.toml.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from ..config.loading import config_from_toml_file, load_config, with_overrides
from ..config.schema import RESUME_SAFE_KEYS, Config
from ..errors import ConfigError, RunError
from ..runs.folder import RunFolder, default_runs_dir
from ..runs.history import resolve_run


@dataclass
class TrainRequest:
    preset: str | None = None
    data: str | None = None
    val_data: str | None = None
    overrides: list[str] = field(default_factory=list)
    runs_dir: str | None = None
    max_steps: int | None = None
    resume: str | None = None
    run_id: str | None = None  # chosen by a launcher that must find the run afterwards
    memory_limit_gib: float | None = None
    sweep: dict | None = None  # {id, index, values}: the sweep this run is a point of (run.json keeps it)
    mirrors: list[str] | None = None  # --log: replaces the preset's log.mirrors ([]: none)

    @property
    def runs_path(self) -> Path:
        return default_runs_dir(self.runs_dir)


def request_overrides(request: TrainRequest) -> list[str]:
    out = list(request.overrides)
    if request.data is not None:
        out.append(f"data.train={json.dumps(request.data)}")
    if request.val_data is not None:
        out.append(f"data.val={json.dumps(request.val_data)}")
    if request.max_steps is not None:
        out.append(f"train.max_steps={request.max_steps}")
    if request.memory_limit_gib is not None:
        out.append(f"train.memory_limit_gib={request.memory_limit_gib}")
    if request.mirrors is not None:
        out.append(f"log.mirrors={json.dumps(request.mirrors)}")
    return out


def request_config(request: TrainRequest) -> Config:
    """The configuration a request trains with, fully checked; the same on every rank."""
    if request.resume:
        return resumed_config(request, resolve_run(request.runs_path, request.resume))
    return load_config(request.preset or "cpu", request_overrides(request))


def resumed_config(request: TrainRequest, folder: RunFolder) -> Config:
    """The run's own config.toml with the overrides a resume may make."""
    if not folder.config_toml.is_file():
        raise RunError(f"run {folder.id} has no config.toml: it cannot be resumed; start a new run")
    config = config_from_toml_file(folder.config_toml)
    if request.preset and request.preset not in (config.preset, Path(config.preset).stem):
        raise ConfigError(
            f"--resume continues run {folder.id} with its own preset ({config.preset}): "
            "drop --preset; --set may change only safe keys such as train.max_steps"
        )
    config, _ = with_overrides(config, request_overrides(request), allowed=RESUME_SAFE_KEYS)
    return config
