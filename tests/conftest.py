"""Shared fixtures: isolated cache and runs dirs, hand-written splits, tiny configs."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent

# A model small enough that a CPU step takes milliseconds; the shapes still cover
# every code path (3 factors, state conditioning, spatial + temporal attention).
TINY = [
    "model.d_model=32", "model.n_layers=2", "model.n_heads=2", "model.shared_from=2",
    "data.synthetic_shards=1", "data.synthetic_frames=1020",
    "train.batch_size=2", "train.grad_accum_steps=1", "train.warmup_steps=2",
    "eval.eval_samples=2",
]


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache(tmp_path_factory):
    """Generated synthetic splits land in one temp cache for the whole session."""
    cache = tmp_path_factory.mktemp("cache")
    os.environ["HWM_CACHE_DIR"] = str(cache)
    os.environ.pop("HWM_RUNS_DIR", None)
    yield cache


@pytest.fixture
def runs_dir(tmp_path) -> Path:
    path = tmp_path / "runs"
    return path


def tiny_sets(*extra: str) -> list[str]:
    return [*TINY, *extra]


def set_args(overrides: list[str]) -> list[str]:
    out = []
    for item in overrides:
        out += ["--set", item]
    return out


def hwm(*args: str, timeout: float = 300, env: dict | None = None, **kwargs) -> subprocess.CompletedProcess:
    """Run the real CLI in a subprocess, as a user would."""
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "200", **(env or {})}
    return subprocess.run([sys.executable, "-m", "hwm_tui", *args], capture_output=True, text=True,
                          timeout=timeout, env=full_env, cwd=kwargs.pop("cwd", REPO), **kwargs)


def write_split_by_hand(root: Path, shard_frames: list[int], *, flat: bool = False,
                        segments: list[np.ndarray] | None = None, seed: int = 0) -> Path:
    """A v2.0 split written with plain numpy, independent of the synthetic generator."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    dirs = {"video": "videos", "states": "robot_states", "segments": "segment_indices", "metadata": "metadata"}
    for sub in dirs.values():
        if not flat:
            (root / sub).mkdir(exist_ok=True)

    def place(kind: str, name: str) -> Path:
        return root / name if flat else root / dirs[kind] / name

    for s, frames in enumerate(shard_frames):
        windows = math.ceil(frames / 17)
        rng.integers(0, 64000, size=(windows, 3, 32, 32), dtype=np.int32).tofile(place("video", f"video_{s}.bin"))
        rng.standard_normal((frames, 25)).astype(np.float32).tofile(place("states", f"states_{s}.bin"))
        seg = segments[s] if segments is not None else np.zeros(frames, dtype=np.int32)
        np.asarray(seg, dtype=np.int32).tofile(place("segments", f"segment_idx_{s}.bin"))
        place("metadata", f"metadata_{s}.json").write_text(json.dumps({"shard_num_frames": frames}))
    (root / "metadata.json").write_text(json.dumps({"num_shards": len(shard_frames),
                                                    "num_images": sum(shard_frames), "hz": 30}))
    return root


def read_metrics(run_path: Path) -> list[dict]:
    out = []
    for line in (run_path / "metrics.jsonl").read_text().splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            pass
    return out


def only_run(runs: Path) -> Path:
    found = [p for p in runs.iterdir() if p.is_dir()]
    assert len(found) == 1, found
    return found[0]
