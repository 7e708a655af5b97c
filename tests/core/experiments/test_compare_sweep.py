"""Comparing runs, the chart controls, sweeps, the divergence guard, and the run commands for scripts."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from hwm_core.config.schema import HealthConfig
from hwm_core.events.types import StepEvent, WarningEvent
from hwm_core.training.divergence import DivergenceGuard
from hwm_tui.app import HwmApp
from hwm_tui.screens.compare_screen import CompareScreen
from hwm_tui.screens.history_screen import HistoryScreen
from hwm_tui.screens.train_screen import TrainScreen
from hwm_tui.widgets.loss_chart import LossChart
from tests.helpers import REPO, hwm, run_steps, set_args, tiny_sets
from tests.tui_fakes import T0, FakeLink, fixed_clock, scripted_events, write_fake_run


def lr_runs(runs: Path) -> list[str]:
    """Three finished runs that differ in their learning rate, of different lengths."""
    ids = []
    for n, (lr, steps) in enumerate((("3e-5", 600), ("5e-5", 400), ("1e-4", 250))):
        run_id = f"2026112{n}-090000-cpu"
        write_fake_run(
            runs,
            run_id,
            status="completed",
            started=T0 + n * 3600,
            steps=steps,
            max_steps=600,
            ended=T0 + n * 3600 + 240,
            sets=[f"train.lr={lr}"],
        )
        ids.append(run_id)
    return ids


def run_app(app: HwmApp, scenario, size=(120, 36)) -> None:
    async def main():
        async with app.run_test(size=size) as pilot:
            await pilot.pause(0.5)
            await scenario(pilot)

    asyncio.run(main())


def test_history_selects_runs_and_compares_them(tmp_path):
    runs = tmp_path / "runs"
    ids = lr_runs(runs)
    app = HwmApp(runs_dir=runs)

    async def scenario(pilot):
        screen = app.screen
        assert isinstance(screen, HistoryScreen)
        await pilot.press("v")  # nothing selected yet: it says how
        assert any("select two runs" in n.message for n in app._notifications)
        await pilot.press("space")
        await pilot.press("down")
        await pilot.press("space")
        await pilot.pause(0.2)
        assert len(screen.marked) == 2
        assert "2 selected" in screen.query_one("DataTable").border_subtitle
        await pilot.press("space")  # again: left out
        assert len(screen.marked) == 1
        await pilot.press("space")
        await pilot.press("down")
        await pilot.press("space")
        await pilot.press("v")
        await pilot.pause(1.0)
        compare = app.screen
        assert isinstance(compare, CompareScreen)
        assert compare.comparison.keys == ["train.lr"]
        legend = str(compare.query_one("#compare-keys").render())
        for run_id, lr in zip(ids, ("3e-05", "5e-05", "0.0001")):
            assert f"{run_id} lr={lr}" in legend
        table = compare.query_one("DataTable")
        assert table.row_count == 3
        await pilot.press("x")
        assert compare.chart_settings.x_axis == "samples"
        await pilot.press("escape")
        await pilot.pause(0.2)
        assert isinstance(app.screen, HistoryScreen)

    run_app(app, scenario)


def test_chart_controls_are_the_same_on_the_dashboard_history_and_comparison(tmp_path):
    app = HwmApp(link=FakeLink(scripted_events(300)), runs_dir=tmp_path, clock=fixed_clock)

    async def scenario(pilot):
        chart = app.screen.query_one(LossChart)
        assert "smoothing 0.95" in chart.border_title
        await pilot.press("right_square_bracket")
        await pilot.pause(0.2)
        assert "smoothing 0.98" in chart.border_title
        for _ in range(3):
            await pilot.press("left_square_bracket")
        await pilot.pause(0.2)
        assert "smoothing 0.8" in chart.border_title
        await pilot.press("l")
        await pilot.pause(0.2)
        assert "· log" in chart.border_title
        await pilot.press("z")
        await pilot.pause(0.2)
        assert "last 10,000 steps" in chart.border_title
        await pilot.press("z")
        await pilot.pause(0.2)
        assert "last 1,000 steps" in chart.border_title
        footer = " ".join(b.binding.description for b in app.screen.active_bindings.values() if b.binding.show)
        assert "Smooth" in footer and "Log" in footer and "Window" in footer

    run_app(app, scenario)
    for screen in (HistoryScreen, CompareScreen, TrainScreen):
        keys = {b.key for b in screen.BINDINGS}
        assert {"left_square_bracket", "right_square_bracket", "l", "z"} <= keys, screen


def test_the_comparison_snapshot(snap_compare, tmp_path, monkeypatch):
    runs = tmp_path / "runs"
    ids = lr_runs(runs)
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    app = HwmApp(runs_dir=runs)

    async def open_comparison(pilot):
        await pilot.pause(0.5)
        app.push_screen(CompareScreen([runs / run_id for run_id in ids]))
        await pilot.pause(1.2)

    assert snap_compare(app, terminal_size=(120, 36), run_before=open_comparison)


def test_runs_compare_export_and_list_for_scripts(tmp_path):
    from hwm_core.predictions.evaluation_store import save_evaluation
    from hwm_core.runs.folder import RunFolder

    runs = tmp_path / "runs"
    ids = lr_runs(runs)
    # the second run was evaluated: its accuracy, and under another sample's states
    save_evaluation(RunFolder(runs / ids[1]), {
        "step": 400, "samples": 231, "teacher_forced": {"token_accuracy": 0.70},
        "controllability": {"other_states_token_accuracy": 0.17, "delta_token_accuracy": 0.53},
        "baselines": {"copy_last_accuracy": 0.264, "states_shift_accuracy": 0.845},
    })  # fmt: skip
    result = hwm("runs", "compare", *ids, "--runs-dir", str(runs), "--json")
    assert result.returncode == 0, result.stderr
    table = json.loads(result.stdout)
    evaluations = [r["latest_evaluation"] for r in table["runs"]]
    assert evaluations[0] is None and evaluations[2] is None
    assert evaluations[1]["accuracy"] == 0.70 and evaluations[1]["delta_accuracy"] == 0.53
    shown = hwm("runs", "compare", *ids, "--runs-dir", str(runs)).stdout
    assert "70.0% @400" in shown and "17.0% (-53.0)" in shown, shown
    assert table["differing_keys"] == ["train.lr"]
    assert [r["values"]["train.lr"] for r in table["runs"]] == [3e-05, 5e-05, 1e-4]
    assert [r["steps"] for r in table["runs"]] == [600, 400, 250]
    assert hwm("runs", "compare", ids[0], "--runs-dir", str(runs)).returncode == 2  # one run is no comparison
    exported = hwm("runs", "export", ids[2], "--csv", "--runs-dir", str(runs))
    rows = list(csv.DictReader(io.StringIO(exported.stdout)))
    assert len([r for r in rows if r["type"] == "step"]) == 250 and len([r for r in rows if r["type"] == "eval"]) == 5
    assert rows[0]["loss"] and rows[0]["step"] == "1"
    assert hwm("runs", "export", ids[2], "--runs-dir", str(runs)).returncode == 2  # which format?
    # ids are never cut: not in 80 columns, not in a pipe
    for columns in ("80", "40"):
        listed = hwm("runs", "list", "--runs-dir", str(runs), env={"COLUMNS": columns})
        assert all(run_id in listed.stdout for run_id in ids), listed.stdout
        assert max(len(line) for line in listed.stdout.splitlines()) <= max(int(columns), 30)


def test_a_sweep_trains_its_grid_and_a_killed_sweep_resumes(tmp_path):
    runs = tmp_path / "runs"
    sets = tiny_sets("eval.eval_steps=0", "checkpoint.save_steps=3", "train.warmup_steps=1")
    command = [
        sys.executable,
        str(REPO / "tests" / "stall_train.py"),
        "step",
        "5",
        str(tmp_path / "ready"),
        "--",
        "sweep",
        "--headless",
        "--runs-dir",
        str(runs),
        "--max-steps",
        "6",
        "--set",
        "train.lr=1e-3,2e-3",
        *set_args(sets),
    ]
    # the first run stalls in step 5 (after its step-3 checkpoint): kill -9 the whole sweep there
    proc = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=REPO,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    deadline = time.monotonic() + 240
    while not (tmp_path / "ready").exists():
        assert proc.poll() is None and time.monotonic() < deadline, proc.stdout.read() if proc.poll() else "timeout"
        time.sleep(0.2)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    out = proc.stdout.read()
    assert "train.lr" in out and "1e-3" in out and "2e-3" in out  # the grid was printed first
    [record] = list((runs / "sweeps").glob("*.json"))
    sweep_id = record.stem
    listed = json.loads(hwm("runs", "list", "--runs-dir", str(runs), "--json").stdout)
    assert [(r["id"], r["status"]) for r in listed] == [(f"{sweep_id}-01", "interrupted")]

    result = hwm("sweep", "--resume", sweep_id, "--headless", "--runs-dir", str(runs), timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "resume (interrupted)" in result.stdout
    listed = json.loads(hwm("runs", "list", "--runs-dir", str(runs), "--json").stdout)
    assert sorted((r["id"], r["status"], r["step"], r["sweep"]) for r in listed) == [
        (f"{sweep_id}-01", "completed", 6, sweep_id),
        (f"{sweep_id}-02", "completed", 6, sweep_id),
    ]
    meta = json.loads((runs / f"{sweep_id}-01" / "run.json").read_text())
    assert [r["from_step"] for r in meta["resumes"]] == [3] and meta["sweep"]["values"] == {"train.lr": "1e-3"}
    again = hwm("sweep", "--resume", sweep_id, "--headless", "--runs-dir", str(runs))
    assert again.returncode == 0 and again.stdout.count("done (completed)") == 2  # nothing trains twice


def test_a_diverging_run_is_stopped_and_a_healthy_one_is_not():
    _, status, events = run_steps(["train.lr=1.0", "train.warmup_steps=5"], 200)
    steps = [e for e in events if isinstance(e, StepEvent)]
    assert status == "diverged" and len(steps) < 40  # well before its 200 steps
    [warning] = [e for e in events if isinstance(e, WarningEvent) and e.kind == "divergence"]
    assert "[loss]" in warning.message and "lower train.lr" in warning.message
    assert f"step {len(steps)}" in warning.message
    _, status, events = run_steps(["train.warmup_steps=5", "eval.eval_steps=0"], 120)
    assert status == "completed"
    assert not [e for e in events if isinstance(e, WarningEvent) and e.kind == "divergence"]


def test_the_guard_rules_one_by_one():
    health = HealthConfig()
    guard = DivergenceGuard(health, warmup_steps=20)
    for step in range(1, 21):  # within warm-up a climb is not judged
        assert guard.step(step, 11.0 + step) is None
    healthy = DivergenceGuard(health, warmup_steps=5)
    for step in range(1, 200):  # falling, noisy, stalled: never stopped
        assert healthy.step(step, max(11.07 - step * 0.05, 6.0) + 0.05 * (step % 3)) is None
    stalled = DivergenceGuard(health, warmup_steps=5)
    assert all(stalled.step(step, 11.07 + 0.01 * (step % 2)) is None for step in range(1, 100))
    val = DivergenceGuard(health, warmup_steps=5)
    verdicts = [val.evaluation(step, loss) for step, loss in ((50, 6.0), (100, 5.5), (150, 5.6), (200, 5.7))]
    assert verdicts == [None, None, None, None]
    last = val.evaluation(250, 5.8)
    assert last is not None and last.rule == "val" and "rose 3 evaluations in a row" in last.message
    flat = DivergenceGuard(health, warmup_steps=5)
    assert all(flat.evaluation(step, 5.0 + 1e-6 * step) is None for step in range(50, 1000, 50))  # not a rise
    off = DivergenceGuard(HealthConfig(divergence_guard=False), warmup_steps=5)
    assert all(off.step(step, 100.0) is None for step in range(1, 50))
