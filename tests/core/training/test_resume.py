"""Never lose a run: kill -9 at several points, signals, exact resume, one writer."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hwm_core.runs.checkpoint import list_checkpoints
from tests.helpers import REPO, hwm, only_run, read_metrics, set_args, tiny_sets, train_cli

STEPS = 12
SETS = tiny_sets(
    "train.batch_size=2",
    "train.grad_accum_steps=2",
    "eval.eval_steps=4",
    "checkpoint.save_steps=4",
    "checkpoint.keep_checkpoints=2",
)
TRAIN_ARGS = ["--max-steps", str(STEPS), *set_args(SETS)]  # after `train --preset cpu --headless`
TRAIN = ["train", "--preset", "cpu", "--headless", *TRAIN_ARGS]


def losses(run: Path) -> list[tuple]:
    """(type, step, figure) of every step and eval event, in order."""
    out = []
    for e in read_metrics(run):
        if e["type"] == "step":
            out.append(("step", e["step"], e["loss"], e["grad_norm_pre_clip"]))
        elif e["type"] == "eval":
            out.append(("eval", e["step"], e["val_loss"]))
    return out


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> list[tuple]:
    """The same run, never interrupted."""
    runs = tmp_path_factory.mktemp("reference")
    result = train_cli(runs, *TRAIN_ARGS, tiny=False)
    assert result.returncode == 0, result.stderr
    figures = losses(only_run(runs))
    assert [f[1] for f in figures if f[0] == "step"] == list(range(1, STEPS + 1))
    return figures


def start_stalled(point: str, step: int, runs: Path, ready: Path) -> subprocess.Popen:
    proc = subprocess.Popen(
        [
            sys.executable,
            str(REPO / "tests" / "stall_train.py"),
            point,
            str(step),
            str(ready),
            "--",
            *TRAIN,
            "--runs-dir",
            str(runs),
        ],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while not ready.exists():
        assert proc.poll() is None, proc.stderr.read()
        assert time.monotonic() < deadline, "the run never reached its stall point"
        time.sleep(0.05)
    return proc


def runs_list(runs: Path) -> list[dict]:
    result = hwm("runs", "list", "--json", "--runs-dir", str(runs))
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def resume(runs: Path, run_id: str, *extra: str) -> subprocess.CompletedProcess:
    return hwm("train", "--resume", run_id, "--headless", "--runs-dir", str(runs), *extra)


@pytest.mark.parametrize(
    "point, at_step, checkpoint_left",
    [
        ("step", 7, 4),  # killed inside step 7's backward pass
        ("checkpoint", 8, 4),  # killed with step 8's checkpoint half written
        ("step", 1, None),  # killed before any checkpoint: lists, but nothing to resume
    ],
)
def test_sigkill_then_list_and_resume_bitwise(tmp_path, reference, point, at_step, checkpoint_left):
    runs = tmp_path / "runs"
    proc = start_stalled(point, at_step, runs, tmp_path / "ready")
    proc.kill()
    proc.wait()
    run = only_run(runs)
    # the kill may also tear the line being written: emulate it
    with open(run / "metrics.jsonl", "ab") as fh:
        fh.write(b'{"type":"step","step":99,"lo')

    [listed] = runs_list(runs)
    assert listed["status"] == "interrupted"
    assert listed["latest_checkpoint_step"] == checkpoint_left
    assert [s for s, _ in list_checkpoints(run / "checkpoints")] == ([checkpoint_left] if checkpoint_left else [])

    result = resume(runs, listed["id"])
    if checkpoint_left is None:
        assert result.returncode == 2 and "no readable checkpoint to resume from" in result.stderr
        return
    assert result.returncode == 0, result.stderr
    assert losses(run) == reference  # bitwise: floats round-trip through JSON exactly
    assert json.loads((run / "run.json").read_text())["status"] == "completed"
    assert not list((run / "checkpoints").glob(".*.tmp"))  # the half-written file is cleaned up
    rolled_back = (run / "metrics.rolled_back.jsonl").read_text()
    assert '"step":99' in rolled_back  # the torn line was moved aside, not lost


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_signal_checkpoints_marks_interrupted_and_resumes(tmp_path, reference, sig, code):
    runs = tmp_path / "runs"
    sets = [s for s in SETS if not s.startswith("checkpoint.save_steps")] + ["checkpoint.save_steps=1000"]
    args = ["train", "--preset", "cpu", "--headless", "--max-steps", str(STEPS), *set_args(sets)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "hwm_tui", *args, "--runs-dir", str(runs)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    deadline = time.monotonic() + 120
    while True:
        run_dirs = list(runs.glob("*/metrics.jsonl")) if runs.exists() else []
        if run_dirs and sum(1 for e in read_metrics(run_dirs[0].parent) if e["type"] == "step") >= 2:
            break
        assert proc.poll() is None, proc.stderr.read()
        assert time.monotonic() < deadline
        time.sleep(0.02)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == code, err
    run = only_run(runs)
    meta = json.loads((run / "run.json").read_text())
    assert meta["status"] == "interrupted"
    done = max(e["step"] for e in read_metrics(run) if e["type"] == "step")
    assert done < STEPS, "the run ended before the signal; make its steps slower"
    assert [s for s, _ in list_checkpoints(run / "checkpoints")] == [done]
    # the resumed run checkpoints every 4 steps like the reference; only the cadence changes
    result = resume(runs, run.name, "--set", "checkpoint.save_steps=4")
    assert result.returncode == 0, result.stderr
    assert losses(run) == reference


def test_second_writer_is_refused(tmp_path):
    runs = tmp_path / "runs"
    proc = start_stalled("step", 3, runs, tmp_path / "ready")
    try:
        run = only_run(runs)
        [listed] = runs_list(runs)
        assert listed["status"] == "running"
        result = resume(runs, run.name)
        assert result.returncode == 2
        assert f"run {run.name} is being trained by another process (pid {proc.pid})" in result.stderr
        assert "Traceback" not in result.stderr
    finally:
        proc.kill()
        proc.wait()


def test_resume_refuses_to_change_the_model(tmp_path, reference):
    runs = tmp_path / "runs"
    assert train_cli(runs, *TRAIN_ARGS, "--max-steps", "4", tiny=False).returncode == 0
    run = only_run(runs)
    before = (run / "metrics.jsonl").read_bytes()
    result = resume(runs, run.name, "--set", "model.d_model=64")
    assert result.returncode == 2 and "cannot change on resume" in result.stderr
    extended = resume(runs, run.name, "--max-steps", "6")
    assert extended.returncode == 0, extended.stderr
    steps = [e["step"] for e in read_metrics(run) if e["type"] == "step"]
    assert steps == list(range(1, 7)) and (run / "metrics.jsonl").read_bytes().startswith(before)


def test_damaged_newer_checkpoint_is_set_aside_and_never_counts_as_kept(tmp_path):
    runs = tmp_path / "runs"
    sets = ["eval.eval_steps=0", "checkpoint.save_steps=2", "checkpoint.keep_checkpoints=2"]
    assert train_cli(runs, *set_args(sets), "--max-steps", "4").returncode == 0
    run = only_run(runs)
    newest = run / "checkpoints" / "step_00000004.safetensors"
    data = bytearray(newest.read_bytes())
    data[-5] ^= 0xFF  # bit rot in the tensor data: the header still reads
    newest.write_bytes(bytes(data))
    result = resume(runs, run.name, "--max-steps", "8", "--set", "checkpoint.keep_checkpoints=1")
    assert result.returncode == 0, result.stderr
    assert "set aside newer damaged checkpoints" in result.stdout
    names = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert names == ["step_00000004.safetensors.damaged", "step_00000008.safetensors"]
    steps = [e["step"] for e in read_metrics(run) if e["type"] == "step"]
    assert steps == list(range(1, 9))  # resumed from step 2: 3 and 4 were trained again


def test_resume_with_max_steps_already_reached_is_refused(tmp_path):
    runs = tmp_path / "runs"
    assert train_cli(runs, *TRAIN_ARGS, "--max-steps", "4", tiny=False).returncode == 0
    run = only_run(runs)
    result = resume(runs, run.name, "--max-steps", "3")
    assert result.returncode == 2 and "resume with --max-steps above 4" in result.stderr
