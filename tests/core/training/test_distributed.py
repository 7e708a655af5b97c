"""Several processes with torchrun (gloo on CPU), and `watch` steering a headless run."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time

import pytest

from hwm_tui.app import HwmApp
from hwm_tui.screens.confirm_screen import ConfirmScreen
from hwm_tui.screens.train_screen import TrainScreen
from hwm_tui.watch_link import open_watch_link
from tests.helpers import REPO, hwm, only_run, read_metrics, set_args, tiny_sets, train_cli

STEPS = 20
SETS = tiny_sets(
    "train.warmup_steps=3", "eval.eval_steps=10", "checkpoint.save_steps=10", "checkpoint.keep_checkpoints=5"
)


def torchrun(*args: str, nproc: int = 2) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc-per-node",
            str(nproc),
            "-m",
            "hwm_tui",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        cwd=REPO,
    )


def figures(run) -> list[tuple]:
    return [
        (e["type"], e["step"], e.get("loss", e.get("val_loss")))
        for e in read_metrics(run)
        if e["type"] in ("step", "eval")
    ]


def assert_close(a: list[tuple], b: list[tuple]) -> None:
    assert [x[:2] for x in a] == [x[:2] for x in b]
    for x, y in zip(a, b):
        assert x[2] == pytest.approx(y[2], rel=2e-4, abs=2e-4), (x, y)


@pytest.fixture(scope="module")
def one_process(tmp_path_factory):
    runs = tmp_path_factory.mktemp("one")
    result = train_cli(
        runs,
        "--max-steps",
        str(STEPS),
        *set_args([*SETS, "train.batch_size=4"]),
        tiny=False,
        env={"OMP_NUM_THREADS": "1"},
    )
    assert result.returncode == 0, result.stderr
    return figures(only_run(runs))


def test_two_processes_match_one_and_resume_in_one(tmp_path, one_process):
    runs = tmp_path / "runs"
    # Micro-batches of 1 accumulated twice on each rank: the non-final micro-batch
    # skips the all-reduce (no_sync), and the step still equals one process's batch of 4.
    result = torchrun(
        "train",
        "--preset",
        "cpu",
        "--headless",
        "--runs-dir",
        str(runs),
        "--max-steps",
        str(STEPS),
        *set_args([*SETS, "train.batch_size=1", "train.grad_accum_steps=2"]),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    run = only_run(runs)
    assert "global batch 4 = 1 x 2 x 2" in result.stdout
    assert result.stdout.count("completed") == 1  # only rank 0 reports
    two = figures(run)
    assert len([f for f in two if f[0] == "step"]) == STEPS
    assert_close(two, one_process)
    meta = json.loads((run / "run.json").read_text())
    assert meta["world_size"] == 2 and meta["status"] == "completed"

    # A crash after step 10: the step-20 checkpoint is gone; resume with one process,
    # the same global batch (4 = 4 x 1 x 1), and the trajectory is the same run's.
    (run / "checkpoints" / "step_00000020.safetensors").unlink()
    resumed = hwm(
        "train",
        "--resume",
        run.name,
        "--headless",
        "--runs-dir",
        str(runs),
        "--set",
        "train.batch_size=4",
        "--set",
        "train.grad_accum_steps=1",
        env={"OMP_NUM_THREADS": "1"},
    )
    assert resumed.returncode == 0, resumed.stderr
    assert_close(figures(run), one_process)
    assert json.loads((run / "run.json").read_text())["world_size"] == 1


def test_a_rank_that_cannot_start_stops_them_all(tmp_path):
    result = torchrun(
        "train",
        "--preset",
        "cpu",
        "--headless",
        "--runs-dir",
        str(tmp_path / "runs"),
        "--data",
        str(tmp_path / "missing"),
        *set_args(tiny_sets()),
    )
    assert result.returncode != 0
    assert "does not exist: pass --data" in result.stderr + result.stdout


def test_watch_pauses_resumes_and_stops_a_headless_run(tmp_path):
    runs = tmp_path / "runs"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "hwm_tui",
            "train",
            "--preset",
            "cpu",
            "--headless",
            "--runs-dir",
            str(runs),
            "--max-steps",
            "100000",
            *set_args(tiny_sets("eval.eval_steps=0", "checkpoint.save_steps=100000")),
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while not (
            runs.exists()
            and list(runs.glob("*/metrics.jsonl"))
            and any(e["type"] == "step" for e in read_metrics(only_run(runs)))
        ):
            assert proc.poll() is None, proc.stderr.read()
            assert time.monotonic() < deadline
            time.sleep(0.1)
        run = only_run(runs)
        link = open_watch_link(None, runs)  # no argument: the newest running run
        assert link.run_dir == run
        app = HwmApp(link=link, runs_dir=runs, watching=True)

        def steps() -> int:
            return max(e["step"] for e in read_metrics(run) if e["type"] == "step")

        async def scenario(pilot):
            screen = app.screen
            assert isinstance(screen, TrainScreen)

            async def wait_for(predicate, timeout=60.0):
                end = time.monotonic() + timeout
                while not predicate():
                    assert time.monotonic() < end, "timed out"
                    await pilot.pause(0.05)

            await wait_for(lambda: screen.view.progress.step >= 1)
            await pilot.press("p")
            await wait_for(lambda: screen.state_label == "paused")
            held = steps()
            await pilot.pause(1.5)
            assert steps() == held  # the trainer really waits
            await pilot.press("p")
            await wait_for(lambda: steps() > held + 2)
            await wait_for(lambda: screen.state_label == "running")
            await pilot.press("q")
            assert isinstance(app.screen, ConfirmScreen)
            await pilot.press("y")  # stop the run, not only this window
            await wait_for(lambda: proc.poll() is not None)
            await pilot.pause(0.5)

        asyncio.run(_run(app, scenario))
        assert proc.wait(60) == 0  # stopped on purpose, checkpointed: not an error
        meta = json.loads((run / "run.json").read_text())
        assert meta["status"] == "interrupted"
        assert list((run / "checkpoints").glob("step_*.safetensors"))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


async def _run(app, scenario):
    async with app.run_test(size=(120, 36)) as pilot:
        await scenario(pilot)


def test_nproc_launches_torchrun(tmp_path):
    runs = tmp_path / "runs"
    result = hwm(
        "train",
        "--nproc",
        "2",
        "--headless",
        "--preset",
        "cpu",
        "--runs-dir",
        str(runs),
        "--max-steps",
        "3",
        *set_args(tiny_sets("eval.eval_steps=0")),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    meta = json.loads((only_run(runs) / "run.json").read_text())
    assert (meta["world_size"], meta["status"]) == (2, "completed")
