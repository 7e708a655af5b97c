"""The bad-input catalogue: one line naming the problem and the fix, exit code 2,
no traceback, and every file already on disk exactly as it was."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import hwm, make_run, train_cli, write_split_by_hand


def tree_digest(*roots: Path) -> str:
    h = hashlib.sha256()
    for root in roots:
        if not root.exists():
            h.update(b"missing")
            continue
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            h.update(str(path).encode())
            h.update(path.read_bytes())
    return h.hexdigest()


def expect_one_line_error(result, needle: str) -> None:
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert needle in lines[0], lines[0]
    assert "Traceback" not in result.stderr + result.stdout


@pytest.fixture
def good_split(tmp_path) -> Path:
    return write_split_by_hand(tmp_path / "train", [102, 102])


PRESET_CASES = {
    "not TOML": ("this is not = toml =", "is not valid TOML"),
    "unknown section": ("[trainer]\nlr = 1.0\n", "unknown section or key 'trainer'"),
    "unknown key": ("[train]\nlearnrate = 1.0\n", "unknown key 'learnrate' in [train]"),
    "wrong type": ('[train]\nmax_steps = "lots"\n', "train.max_steps must be an integer"),
    "zero batch": ("[train]\nbatch_size = 0\n", "train.batch_size must be >= 1, got 0"),
    "negative batch": ("[train]\nbatch_size = -4\n", "train.batch_size must be >= 1, got -4"),
    "warmup > max": (
        "[train]\nwarmup_steps = 50\nmax_steps = 10\n",
        "warmup_steps (50) must be <= train.max_steps (10)",
    ),
}


@pytest.mark.parametrize("case", list(PRESET_CASES))
def test_bad_preset(tmp_path, case):
    text, needle = PRESET_CASES[case]
    preset = tmp_path / "mine.toml"
    preset.write_text(text)
    runs = tmp_path / "runs"
    runs.mkdir()
    (runs / "keep.txt").write_text("earlier work")
    before = tree_digest(runs, preset)
    expect_one_line_error(train_cli(runs, preset=str(preset), tiny=False), needle)
    assert tree_digest(runs, preset) == before


def damage_split(root: Path, how: str) -> None:
    if how == "metadata field":
        meta = json.loads((root / "metadata.json").read_text())
        del meta["num_shards"]
        (root / "metadata.json").write_text(json.dumps(meta))
    elif how == "short shard":
        path = root / "robot_states" / "states_1.bin"
        path.write_bytes(path.read_bytes()[:-400])
    elif how == "token outside codebook":
        video = np.fromfile(root / "videos" / "video_0.bin", dtype=np.int32)
        video[100] = 70000
        video.tofile(root / "videos" / "video_0.bin")
    elif how == "nan state":
        states = np.fromfile(root / "robot_states" / "states_1.bin", dtype=np.float32)
        states[30] = np.nan
        states.tofile(root / "robot_states" / "states_1.bin")


DATA_CASES = {
    "missing dir": "does not exist: pass --data",
    "metadata field": "has no 'num_shards' field",
    "short shard": "states_1.bin is truncated",
    "token outside codebook": "holds token 70000, outside the codebook",
    "nan state": "states_1.bin has a NaN or infinite state at frame 1",
}


@pytest.mark.parametrize("case", list(DATA_CASES))
def test_bad_train_data(tmp_path, good_split, case):
    data = tmp_path / "nowhere" if case == "missing dir" else good_split
    if case != "missing dir":
        damage_split(good_split, case)
    runs = tmp_path / "runs"
    before = tree_digest(good_split)
    result = train_cli(runs, "--data", str(data), "--val-data", "")
    expect_one_line_error(result, DATA_CASES[case])
    assert tree_digest(good_split) == before
    assert not runs.exists()


def test_val_split_without_a_valid_sample(tmp_path, good_split):
    # every 10 frames a new segment: no 17-frame window stays inside one
    val = write_split_by_hand(tmp_path / "val", [102], segments=[np.arange(102) // 10], flat=True)
    result = train_cli(tmp_path / "runs", "--data", str(good_split), "--val-data", str(val))
    expect_one_line_error(result, "val split")
    assert "has no valid sample of 1 window(s)" in result.stderr


def test_unwritable_runs_dir(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    result = train_cli(blocker / "runs")
    expect_one_line_error(result, "cannot write to the runs dir")
    assert blocker.read_text() == "not a folder"


def test_checkpoint_from_another_model_shape(tmp_path):
    runs = tmp_path / "runs"
    small = make_run(runs)
    other = make_run(tmp_path / "other", "model.d_model=64")
    foreign = sorted((other / "checkpoints").iterdir())[-1]
    shutil.copy(foreign, small / "checkpoints" / "step_00000099.safetensors")
    before = tree_digest(small)
    expect_one_line_error(
        hwm("train", "--resume", small.name, "--headless", "--runs-dir", str(runs)), "is from another model shape"
    )
    assert tree_digest(small) == before


def test_unreadable_checkpoint(tmp_path):
    runs = tmp_path / "runs"
    run = make_run(runs)
    for path in (run / "checkpoints").iterdir():
        path.write_bytes(b"\x00" * 64)
    before = tree_digest(run)
    expect_one_line_error(
        hwm("train", "--resume", run.name, "--headless", "--runs-dir", str(runs)),
        "no readable checkpoint to resume from",
    )
    assert tree_digest(run) == before


def test_unknown_run(tmp_path):
    expect_one_line_error(hwm("train", "--resume", "nope", "--headless", "--runs-dir", str(tmp_path)), "no run 'nope'")
