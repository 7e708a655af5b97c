"""`hwm-tui sweep`: a grid of runs trained one after another, each a normal run.

`--set train.lr=3e-5,5e-5,1e-4 --set model.n_layers=6,8` is a grid of 6 points (the
first key varies slowest); a `--set` without commas applies to every point. The
sweep is a JSON file in the runs dir (`sweeps/<id>.json`) that names each point's
run id before any run starts, so a sweep killed at any moment resumes with
`--resume`: completed and diverged runs are kept as results, an interrupted or
failed run goes on from its checkpoint, the points not started yet start.
"""

from __future__ import annotations

import itertools
import json
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..config.loading import load_config
from ..errors import ConfigError, RunError
from ..runs import checkpoint as ckpt
from ..runs.folder import RunFolder, new_run_id
from ..runs.liveness import effective_status
from ..runtime.atomic import write_json_atomic
from ..status import COMPLETED, DIVERGED, RUNNING
from ..training.request import TrainRequest

SWEEPS_DIR = "sweeps"
DONE = (COMPLETED, DIVERGED)  # results: a resumed sweep keeps them
MAX_POINTS = 64


def split_values(text: str) -> list[str]:
    """Comma-separated values, commas inside brackets kept: `[[0,3],[1,4]],[[0,1,2,3,4,5]]`."""
    out, depth, current = [], 0, ""
    for char in text:
        depth += char in "[{"
        depth -= char in "]}"
        if char == "," and depth == 0:
            out.append(current.strip())
            current = ""
        else:
            current += char
    out.append(current.strip())
    return [v for v in out if v]


def parse_grid(sets: list[str]) -> tuple[list[str], list[tuple[str, list[str]]]]:
    """--set items -> (overrides for every point, [(key, values)] of the grid)."""
    base: list[str] = []
    axes: list[tuple[str, list[str]]] = []
    for item in sets:
        if "=" not in item:
            raise ConfigError(f"--set {item!r}: write section.key=value, or section.key=a,b,c for a grid")
        key, text = item.split("=", 1)
        values = split_values(text)
        if len(values) > 1:
            if any(k == key.strip() for k, _ in axes):
                raise ConfigError(f"--set {key.strip()} is given twice as a grid: give its values once, a,b,c")
            axes.append((key.strip(), values))
        else:
            base.append(item)
    return base, axes


@dataclass
class SweepPoint:
    index: int
    values: dict[str, str]  # grid key -> value, as given
    run_id: str

    def overrides(self) -> list[str]:
        return [f"{k}={v}" for k, v in self.values.items()]


@dataclass
class Sweep:
    id: str
    preset: str
    base: list[str]  # --set for every point (and --data, --max-steps as overrides)
    keys: list[str]
    points: list[SweepPoint]
    runs_dir: str
    created: float = field(default_factory=time.time)

    @property
    def path(self) -> Path:
        return sweep_path(Path(self.runs_dir), self.id)

    def request(self, point: SweepPoint) -> TrainRequest:
        return TrainRequest(
            preset=self.preset,
            overrides=[*self.base, *point.overrides()],
            runs_dir=self.runs_dir,
            run_id=point.run_id,
            sweep={"id": self.id, "index": point.index, "values": point.values},
        )

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(self.path, asdict(self))

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> Sweep:
        points = [SweepPoint(**p) for p in value["points"]]
        return cls(**{**value, "points": points})


def sweep_path(runs_dir: Path, sweep_id: str) -> Path:
    return runs_dir / SWEEPS_DIR / f"{sweep_id}.json"


def new_sweep(preset: str, sets: list[str], runs_dir: Path) -> Sweep:
    """A sweep whose every point has been checked as a config, before anything is written."""
    base, axes = parse_grid(sets)
    if not axes:
        raise ConfigError("a sweep needs a grid: --set section.key=a,b,c (values separated by commas)")
    combos = list(itertools.product(*(values for _, values in axes)))
    if len(combos) > MAX_POINTS:
        raise ConfigError(f"the grid has {len(combos)} points; a sweep trains at most {MAX_POINTS}: give fewer values")
    sweep_id = "sweep-" + new_run_id(preset).rsplit("-", 1)[0]
    if sweep_path(runs_dir, sweep_id).exists():
        sweep_id += f"-{int(time.time() * 1000) % 1000:03d}"
    keys = [k for k, _ in axes]
    points = [SweepPoint(i, dict(zip(keys, combo)), f"{sweep_id}-{i + 1:02d}") for i, combo in enumerate(combos)]
    for point in points:  # a value that does not fit its key stops the sweep here, in one line
        load_config(preset, [*base, *point.overrides()])
    return Sweep(sweep_id, preset, base, keys, points, str(runs_dir))


def load_sweep(runs_dir: Path, ref: str) -> Sweep:
    path = Path(ref).expanduser()
    if not path.is_file():
        path = sweep_path(runs_dir, ref)
    if not path.is_file():
        matches = sorted((runs_dir / SWEEPS_DIR).glob(f"{ref}*.json")) if (runs_dir / SWEEPS_DIR).is_dir() else []
        if len(matches) != 1:
            known = (
                ", ".join(p.stem for p in sorted((runs_dir / SWEEPS_DIR).glob("*.json"))[-5:])
                if (runs_dir / SWEEPS_DIR).is_dir()
                else ""
            )
            raise RunError(
                f"no sweep '{ref}' in {runs_dir / SWEEPS_DIR}"
                + (f" (there are: {known})" if known else "")
                + ": give its id, or pass --runs-dir"
            )
        path = matches[0]
    try:
        return Sweep.from_json(json.loads(path.read_text()))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise RunError(f"{path} cannot be read ({exc}): the sweep's record is damaged") from None


@dataclass
class Step:
    """What a sweep does next with one point."""

    point: SweepPoint
    action: str  # "new" | "resume" | "skip"
    why: str


def plan(sweep: Sweep) -> list[Step]:
    """Each point's next action, from its run folder as it is now."""
    steps = []
    runs_dir = Path(sweep.runs_dir)
    for point in sweep.points:
        folder = RunFolder(runs_dir / point.run_id)
        if not folder.run_json.exists():
            steps.append(Step(point, "new", "not started"))
            continue
        try:
            status = effective_status(folder.read_meta(), folder=folder)
        except RunError as exc:
            raise RunError(
                f"sweep {sweep.id}: run {point.run_id} cannot be read ({exc}): delete it "
                "(hwm-tui history, d) to train that point again"
            ) from None
        if status == RUNNING:
            raise RunError(
                f"sweep {sweep.id}: run {point.run_id} is being trained by another process: "
                "stop it first, or follow it with hwm-tui watch"
            )
        if status in DONE:
            steps.append(Step(point, "skip", status))
        elif ckpt.latest_readable(folder.checkpoints) is not None:
            steps.append(Step(point, "resume", status))
        else:
            steps.append(Step(point, "new", f"{status} before its first checkpoint: trained from the start"))
    return steps


def clear_unstarted(sweep: Sweep, point: SweepPoint) -> None:
    """A point's run that ended before its first checkpoint holds no work: its folder
    goes, so the point can start afresh under its name."""
    folder = RunFolder(Path(sweep.runs_dir) / point.run_id)
    if folder.path.exists() and ckpt.latest_readable(folder.checkpoints) is None:
        shutil.rmtree(folder.path, ignore_errors=True)
