"""The history screen on a runs folder the test prepares (also `hwm-tui history`)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from textual.widgets import DataTable, Static

from hwm_core.events.bus import EventBus
from hwm_core.runs.inbox import STOP, CommandInbox
from hwm_core.training.session import TrainRequest, prepare
from hwm_core.training.trainer import Trainer
from hwm_tui.app import HwmApp
from hwm_tui.screens.confirm_screen import ConfirmScreen
from hwm_tui.screens.history_screen import HistoryScreen
from hwm_tui.screens.train_screen import TrainScreen
from tests.helpers import read_metrics, tiny_sets
from tests.tui_fakes import T0, prepared_runs, write_fake_run


def interrupted_real_run(runs: Path) -> str:
    """A real run stopped at step 2 of 4, with its checkpoint."""
    session = prepare(
        TrainRequest(
            preset="cpu",
            runs_dir=str(runs),
            max_steps=4,
            overrides=tiny_sets("eval.eval_steps=0", "train.warmup_steps=1"),
        )
    )
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
        assert set(row_ids(screen)) == {
            "20261120-090000-cpu",
            "20261121-090000-cpu",
            "20261122-090000-cpu",
            "20261123-090000-cpu",
        }
        assert screen.summaries["20261123-090000-cpu"].status == "broken"
        assert screen.summaries["20261120-090000-cpu"].step == 600
        assert screen.summaries["20261122-090000-cpu"].warning_count == 2

    run_history(tmp_path, scenario)


def test_sorting(tmp_path):
    prepared_runs(tmp_path)

    async def scenario(pilot, screen):
        first = row_ids(screen)
        assert first[:3] == ["20261122-090000-cpu", "20261121-090000-cpu", "20261120-090000-cpu"]  # newest first
        await pilot.press("O")
        assert row_ids(screen)[-3:] == first[:3][::-1]
        for _ in range(2):  # started -> duration -> steps
            await pilot.press("o")
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
        assert any("cannot be resumed: it has no readable checkpoint" in n.message for n in pilot.app._notifications)

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


def test_a_damaged_run_shows_its_error_and_the_app_lives_on(tmp_path, monkeypatch):
    from hwm_core.events.follow import MetricsFollower
    from hwm_tui.screens import run_details

    prepared_runs(tmp_path)
    odd = write_fake_run(tmp_path, "20261124-090000-cpu", status="interrupted", started=T0 + 3 * 86400, steps=50)
    (odd / "config.toml").write_bytes(b"\xff\xfe\x00\x81 not text")
    with (odd / "metrics.jsonl").open("a") as fh:
        fh.write('{"type":"state","state":"running","step":null}\nnot json at all\n')

    async def scenario(pilot, screen):
        assert len(row_ids(screen)) == 5  # the others still list
        await wait_for(pilot, lambda: screen.selected == odd.name and "cannot be read" in screen.detail_config)
        await wait_for(pilot, lambda: "step 50" in str(screen.query_one("#h-loss").border_title))

        # anything else a damaged run can raise while it is read is shown, not fatal
        class Failing(MetricsFollower):
            def _read(self, max_bytes):
                return 1 / 0

        monkeypatch.setattr(run_details, "MetricsFollower", Failing)
        await pilot.press("down")
        await wait_for(pilot, lambda: "ZeroDivisionError" in screen.detail_error)
        assert screen.query_one("#detail-error").display
        await pilot.press("up")  # already read: shown again without reading
        await wait_for(pilot, lambda: screen.selected == odd.name and not screen.detail_error)
        assert pilot.app.is_running

    run_history(tmp_path, scenario)


def test_a_refresh_keeps_the_selection_and_reads_only_what_is_new(tmp_path, monkeypatch):
    from hwm_core.events.follow import MetricsFollower
    from hwm_core.events.log import event_to_json
    from hwm_core.events.types import StepEvent
    from hwm_core.runs.history import list_runs
    from hwm_tui.screens import run_details

    prepared_runs(tmp_path)
    reads: list[int] = []

    class Recording(MetricsFollower):
        def _read(self, max_bytes):
            reads.append(self.offset)
            return super()._read(max_bytes)

    monkeypatch.setattr(run_details, "MetricsFollower", Recording)

    async def scenario(pilot, screen):
        await pilot.press("down")
        await wait_for(
            pilot,
            lambda: (
                screen.selected == "20261121-090000-cpu" and "step 210" in str(screen.query_one("#h-loss").border_title)
            ),
        )
        table = screen.query_one(DataTable)
        highlighted = []
        real_handler = HistoryScreen.on_data_table_row_highlighted
        monkeypatch.setattr(
            HistoryScreen,
            "on_data_table_row_highlighted",
            lambda self, event: (highlighted.append(event), real_handler(self, event)),
        )
        reads.clear()
        for _ in range(3):  # what the 2 s timer does
            screen._show_runs(list_runs(tmp_path))
            await pilot.pause(0.1)
        assert reads == [] and highlighted == [] and table.cursor_row == 1
        assert screen.selected == "20261121-090000-cpu"
        run = tmp_path / "20261121-090000-cpu"
        size = (run / "metrics.jsonl").stat().st_size
        with (run / "metrics.jsonl").open("a") as fh:  # the run goes on
            fh.write(
                event_to_json(
                    StepEvent(
                        step=211,
                        loss=6.0,
                        lr=1e-3,
                        grad_norm_pre_clip=1.0,
                        grad_norm_post_clip=1.0,
                        grad_max_abs=0.1,
                        grad_min_abs=0.0,
                        clipped=False,
                        samples_per_s=1.0,
                        tokens_per_s=1.0,
                        step_time_s=1.0,
                        memory_bytes=0,
                    )
                )
                + "\n"
            )
        screen._show_runs(list_runs(tmp_path))
        await wait_for(pilot, lambda: "step 211" in str(screen.query_one("#h-loss").border_title))
        assert reads == [size] and highlighted == [] and table.cursor_row == 1
        assert "211/600" in str(table.get_cell("20261121-090000-cpu", "steps"))

    run_history(tmp_path, scenario)


def test_question_mark_shows_help_on_the_history_screen(tmp_path):
    from hwm_tui.screens.help_screen import HelpScreen

    async def scenario(pilot, screen):
        shown = pilot.app.active_bindings["question_mark"]
        assert shown.binding.show and shown.binding.description == "Help"  # listed in the footer
        await pilot.press("question_mark")
        assert isinstance(pilot.app.screen, HelpScreen)
        await pilot.press("escape")
        assert pilot.app.screen is screen

    run_history(tmp_path / "nothing-here", scenario)


def test_resume_that_fails_with_an_os_error_says_so_in_one_line(tmp_path, monkeypatch):
    import errno

    import hwm_tui.app as app_module

    prepared_runs(tmp_path)

    def no_lock(request):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(app_module, "prepare", no_lock)

    async def scenario(pilot, screen):
        pilot.app.resume_run("20261122-090000-cpu")
        await wait_for(pilot, lambda: any("No locks available" in n.message for n in pilot.app._notifications))
        assert pilot.app.is_running and pilot.app.screen is screen

    run_history(tmp_path, scenario)


@pytest.mark.filterwarnings("error::pytest.PytestUnhandledThreadExceptionWarning")  # no traceback from the worker
def test_a_read_that_finishes_after_the_screen_left_is_dropped(tmp_path):
    # A worker's list of runs can land just after `escape` popped its screen (seen as
    # NoMatches in the dashboard's h-then-escape test): the screen's widgets are going.
    import threading

    from hwm_tui.screens.from_worker import show_from_worker

    prepared_runs(tmp_path)
    delivered = []

    async def from_a_worker(pilot, screen, label):
        # call_from_thread waits for the UI thread: keep the event loop turning meanwhile
        thread = threading.Thread(target=show_from_worker, args=(screen, delivered.append, label))
        thread.start()
        while thread.is_alive():
            await pilot.pause(0.01)

    async def scenario(pilot, screen):
        second = HistoryScreen(tmp_path)
        await pilot.app.push_screen(second)
        await pilot.pause(0.1)
        await from_a_worker(pilot, second, "while shown")
        await pilot.pause(0.1)
        pilot.app.pop_screen()  # not awaited: the read lands while the screen is being removed
        await from_a_worker(pilot, second, "after escape")
        await pilot.pause(0.2)
        await from_a_worker(pilot, second, "long after")
        await pilot.pause(0.2)
        assert delivered == ["while shown"]
        assert pilot.app.screen is screen and len(row_ids(screen)) == 4

    run_history(tmp_path, scenario)
