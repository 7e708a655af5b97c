"""The history screen on a runs folder the test prepares (also `hwm-tui history`)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from textual.widgets import DataTable, Static

from hwm_core.commands import CommandInbox, STOP
from hwm_core.events import EventBus
from hwm_core.session import TrainRequest, prepare
from hwm_core.trainer import Trainer
from hwm_tui.app import HwmApp
from hwm_tui.screens.confirm_screen import ConfirmScreen
from hwm_tui.screens.history_screen import HistoryScreen
from hwm_tui.screens.train_screen import TrainScreen

from conftest import read_metrics, tiny_sets
from tui_fakes import T0, write_fake_run


def prepared_runs(runs: Path) -> None:
    write_fake_run(runs, "20261120-090000-cpu", status="completed", started=T0, steps=600, ended=T0 + 240)
    write_fake_run(runs, "20261121-090000-cpu", status="failed", started=T0 + 86400, steps=210,
                   ended=T0 + 86400 + 90)
    write_fake_run(runs, "20261122-090000-cpu", status="interrupted", started=T0 + 2 * 86400, steps=300,
                   ended=T0 + 2 * 86400 + 120)
    broken = runs / "20261123-090000-cpu"
    broken.mkdir()
    (broken / "run.json").write_text("{torn")


def interrupted_real_run(runs: Path) -> str:
    """A real run stopped at step 2 of 4, with its checkpoint."""
    session = prepare(TrainRequest(preset="cpu", runs_dir=str(runs), max_steps=4,
                                   overrides=tiny_sets("eval.eval_steps=0", "train.warmup_steps=1")))
    bus = EventBus(session.folder.metrics)
    inbox = CommandInbox(session.folder.path)
    trainer = Trainer(session, bus, inbox)
    real = trainer._train_step

    def step_then_stop(prefetcher):
        finite = real(prefetcher)
        if session.state.step == 2:
            inbox.send(STOP)
        return finite

    trainer._train_step = step_then_stop
    assert trainer.run() == "interrupted"
    bus.close()
    session.close()
    return session.folder.id


async def wait_for(pilot, predicate, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await pilot.pause(0.05)


def run_history(runs: Path, scenario, size=(120, 36)) -> HwmApp:
    app = HwmApp(runs_dir=runs)

    async def main():
        async with app.run_test(size=size) as pilot:
            await pilot.pause(0.2)
            await scenario(pilot, app.screen)
    try:
        asyncio.run(main())
    finally:
        if app.runner is not None:
            app.runner.send(STOP)
            app.runner.join(60)
    return app


def row_ids(screen: HistoryScreen) -> list[str]:
    table = screen.query_one(DataTable)
    return [table.coordinate_to_cell_key((row, 0)).row_key.value for row in range(table.row_count)]


def test_lists_every_run_even_next_to_a_broken_one(tmp_path):
    prepared_runs(tmp_path)

    async def scenario(pilot, screen):
        assert isinstance(screen, HistoryScreen)
        assert set(row_ids(screen)) == {"20261120-090000-cpu", "20261121-090000-cpu", "20261122-090000-cpu",
                                        "20261123-090000-cpu"}
        assert screen.summaries["20261123-090000-cpu"].status == "broken"
        assert screen.summaries["20261120-090000-cpu"].step == 600
        assert screen.summaries["20261122-090000-cpu"].warning_count == 2

    run_history(tmp_path, scenario)


def test_sorting(tmp_path):
    prepared_runs(tmp_path)

    async def scenario(pilot, screen):
        first = row_ids(screen)
        assert first[:3] == ["20261122-090000-cpu", "20261121-090000-cpu", "20261120-090000-cpu"]  # newest first
        await pilot.press("S")
        assert row_ids(screen)[-3:] == first[:3][::-1]
        for _ in range(2):  # started -> duration -> steps
            await pilot.press("s")
        steps = [screen.summaries[i].step for i in row_ids(screen)]
        assert steps == sorted(steps, reverse=True)

    run_history(tmp_path, scenario)


def test_selecting_a_run_shows_its_curves_and_config(tmp_path):
    prepared_runs(tmp_path)

    async def scenario(pilot, screen):
        await wait_for(pilot, lambda: screen.selected == "20261122-090000-cpu")
        await wait_for(pilot, lambda: "[model]" in screen.detail_config)
        assert "d_model = 64" in screen.detail_config
        loss_chart = screen.query_one("#h-loss")
        await wait_for(pilot, lambda: "step 300" in str(loss_chart.border_title))
        await pilot.press("down")
        await wait_for(pilot, lambda: "step 210" in str(screen.query_one("#h-loss").border_title))

    run_history(tmp_path, scenario)


def test_delete_asks_first(tmp_path):
    prepared_runs(tmp_path)

    async def scenario(pilot, screen):
        await wait_for(pilot, lambda: screen.selected == "20261122-090000-cpu")
        await pilot.press("d")
        assert isinstance(pilot.app.screen, ConfirmScreen)
        await pilot.press("n")
        assert (tmp_path / "20261122-090000-cpu").exists()
        await pilot.press("d")
        await pilot.press("y")
        await wait_for(pilot, lambda: "20261122-090000-cpu" not in screen.summaries)
        assert not (tmp_path / "20261122-090000-cpu").exists()
        assert len(row_ids(screen)) == 3

    run_history(tmp_path, scenario)


def test_no_runs_at_all(tmp_path):
    async def scenario(pilot, screen):
        assert row_ids(screen) == []
        assert "No runs in" in str(screen.query_one("#empty", Static).content)
        await pilot.press("r")
        await pilot.press("d")  # nothing selected: nothing happens

    run_history(tmp_path / "nothing-here", scenario)


def test_r_refuses_a_run_without_checkpoint(tmp_path):
    prepared_runs(tmp_path)

    async def scenario(pilot, screen):
        await wait_for(pilot, lambda: screen.selected == "20261122-090000-cpu")
        await pilot.press("r")
        await pilot.pause(0.2)
        assert isinstance(pilot.app.screen, HistoryScreen)
        assert any("cannot be resumed: it has no readable checkpoint" in n.message
                   for n in pilot.app._notifications)

    run_history(tmp_path, scenario)


def test_r_resumes_a_resumable_run_into_the_dashboard(tmp_path):
    run_id = interrupted_real_run(tmp_path)

    async def scenario(pilot, screen):
        await wait_for(pilot, lambda: screen.selected == run_id)
        assert screen.summaries[run_id].resumable
        await pilot.press("r")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, TrainScreen))
        train = pilot.app.screen
        await wait_for(pilot, lambda: train.state_label == "finished")
        assert train.view.progress.step == 4

    app = run_history(tmp_path, scenario)
    assert app.runner is not None and app.runner.status == "completed"
    steps = [e["step"] for e in read_metrics(tmp_path / run_id) if e["type"] == "step"]
    assert steps == [1, 2, 3, 4]


def test_a_resumed_run_brings_its_earlier_metrics_to_the_dashboard(tmp_path):
    from hwm_tui.link import LocalLink

    run_id = interrupted_real_run(tmp_path)
    session = prepare(TrainRequest(resume=run_id, runs_dir=str(tmp_path)))
    link = LocalLink.start(session)
    try:
        first = link.poll()
        assert [e.step for e in first if type(e).__name__ == "StepEvent"] == [1, 2]
    finally:
        link.runner.join(60)
