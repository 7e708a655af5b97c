"""The dashboard's keys, driven with Textual's pilot against a real trainer thread."""

from __future__ import annotations

import asyncio
import html
import json
import re
import time
from pathlib import Path

import pytest

from hwm_core.events.types import StateEvent
from hwm_core.runs.checkpoint import list_checkpoints
from hwm_core.runs.inbox import STOP
from hwm_core.training.runner import TrainingRunner
from hwm_core.training.session import TrainRequest, prepare
from hwm_tui.app import HwmApp
from hwm_tui.link import LocalLink
from hwm_tui.screens.confirm_screen import ConfirmScreen
from hwm_tui.screens.help_screen import HelpScreen
from hwm_tui.screens.history_screen import HistoryScreen
from hwm_tui.screens.train_screen import TrainScreen
from hwm_tui.widgets.status_bar import StatusBar
from hwm_tui.widgets.summary_bar import SummaryBar
from hwm_tui.widgets.warnings_panel import WarningsPanel
from tests.helpers import tiny_sets
from tests.tui_fakes import T0, FakeLink, fixed_clock, scripted_events


def real_app(runs_dir: Path, steps: int = 400, *extra: str) -> tuple[HwmApp, TrainingRunner]:
    session = prepare(
        TrainRequest(
            preset="cpu",
            runs_dir=str(runs_dir),
            max_steps=steps,
            overrides=tiny_sets("eval.eval_steps=0", "checkpoint.save_steps=1000", *extra),
        )
    )
    runner = TrainingRunner(session).start()
    app = HwmApp(link=LocalLink(runner), runs_dir=runs_dir)
    app.runner = runner
    return app, runner


async def wait_for(pilot, predicate, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await pilot.pause(0.05)


def screen_text(app: HwmApp) -> str:
    """What the terminal shows, as plain text (from Textual's own screenshot)."""
    svg = app.export_screenshot()
    return html.unescape(re.sub(r"<[^>]+>", "", svg)).replace("\xa0", " ")


def record_states(screen: TrainScreen) -> list[str]:
    """Every state label the status bar is drawn with, in order."""
    bar = screen.query_one(StatusBar)
    seen: list[str] = []
    real_show = bar.show

    def show(progress, *, state, message, now):
        if not seen or seen[-1] != state:
            seen.append(state)
        real_show(progress, state=state, message=message, now=now)

    bar.show = show
    return seen


def run_scenario(app: HwmApp, runner: TrainingRunner | None, scenario, size=(120, 36)) -> None:
    async def main():
        async with app.run_test(size=size) as pilot:
            await scenario(pilot)

    try:
        asyncio.run(main())
    finally:
        if runner is not None:
            runner.send(STOP)
            runner.join(60)


def test_p_pauses_at_a_step_boundary_and_resumes(runs_dir):
    app, runner = real_app(runs_dir)

    async def scenario(pilot):
        screen = app.screen
        assert isinstance(screen, TrainScreen)
        await wait_for(pilot, lambda: screen.view.progress.step >= 2)
        seen = record_states(screen)
        await pilot.press("p")
        await wait_for(pilot, lambda: screen.state_label == "paused")
        assert seen[-2:] == ["pausing…", "paused"]  # shown until the trainer reached the boundary
        paused_at = runner.session.state.step
        await pilot.pause(1.0)
        assert runner.session.state.step == paused_at  # really paused
        await pilot.press("p")
        await wait_for(pilot, lambda: runner.session.state.step > paused_at)
        assert screen.state_label == "running"

    run_scenario(app, runner, scenario)


def test_c_checkpoints_and_the_status_shows_the_path(runs_dir):
    app, runner = real_app(runs_dir)

    async def scenario(pilot):
        screen = app.screen
        await wait_for(pilot, lambda: screen.view.progress.step >= 1)
        messages = []
        bar = screen.query_one(StatusBar)
        real_show = bar.show
        bar.show = lambda p, *, state, message, now: (
            messages.append(message),
            real_show(p, state=state, message=message, now=now),
        )
        await pilot.press("c")
        await wait_for(pilot, lambda: "saved" in screen.message)
        assert any("checkpoint requested" in m for m in messages)
        path = screen.message.split("saved: ")[1]
        assert Path(path).is_file()
        assert path in screen_text(app)

    run_scenario(app, runner, scenario, size=(200, 40))


def test_q_asks_then_checkpoints_marks_interrupted_and_exits(runs_dir):
    app, runner = real_app(runs_dir)

    async def scenario(pilot):
        screen = app.screen
        await wait_for(pilot, lambda: screen.view.progress.step >= 2)
        await pilot.press("q")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")  # changed our mind
        assert app.screen is screen and runner.is_alive()
        seen = record_states(screen)
        await pilot.press("q")
        await pilot.press("y")
        await wait_for(pilot, lambda: not runner.is_alive())
        assert "stopping…" in seen
        await pilot.pause(1.0)  # the app leaves at its next poll of the trainer

    run_scenario(app, runner, scenario)
    assert app.return_value == "interrupted"
    run = runner.session.folder.path
    assert json.loads((run / "run.json").read_text())["status"] == "interrupted"
    assert [s for s, _ in list_checkpoints(run / "checkpoints")] == [runner.session.state.step]


def test_h_opens_history_with_this_run_and_escape_comes_back(runs_dir):
    app, runner = real_app(runs_dir)

    async def scenario(pilot):
        screen = app.screen
        await wait_for(pilot, lambda: screen.view.progress.step >= 1)
        await pilot.press("h")
        history = app.screen
        assert isinstance(history, HistoryScreen)
        await wait_for(pilot, lambda: runner.session.folder.id in history.summaries)
        assert history.summaries[runner.session.folder.id].status == "running"
        await pilot.press("d")  # the running run cannot be deleted
        assert runner.session.folder.path.exists()
        await pilot.press("escape")
        assert app.screen is screen

    run_scenario(app, runner, scenario)


def test_question_mark_shows_help_and_escape_closes_it():
    app = HwmApp(link=FakeLink(scripted_events(10)), runs_dir=Path("/nonexistent"))

    async def scenario(pilot):
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        assert isinstance(app.screen, TrainScreen)

    run_scenario(app, None, scenario)


def test_finished_run_stays_on_a_summary(runs_dir):
    app, runner = real_app(runs_dir, 3, "train.warmup_steps=1")

    async def scenario(pilot):
        screen = app.screen
        await wait_for(pilot, lambda: screen.state_label == "finished")
        await pilot.pause(0.5)
        summary = screen.query_one(SummaryBar)
        assert summary.display and "run finished" in str(summary.render())
        assert app.is_running  # the app did not vanish
        await pilot.press("p")  # keys on a finished run say so instead of failing
        await pilot.press("q")  # q on a finished run exits without a question
        await pilot.pause(0.2)

    run_scenario(app, runner, scenario)
    assert app.return_value == "completed"


def test_warnings_panel_counts_and_colours():
    app = HwmApp(link=FakeLink(scripted_events(300)), runs_dir=Path("/nonexistent"))

    async def scenario(pilot):
        await pilot.pause(0.3)
        panel = app.screen.query_one(WarningsPanel)
        assert panel.counts == {"instability": 1, "nonfinite": 1}
        assert "instab 1" in panel.border_title and "nan 1" in panel.border_title
        text = panel.text
        assert "step 120" in text and "instability" in text and "lower lr or check data" in text

    run_scenario(app, None, scenario)


@pytest.mark.parametrize("size", [(80, 24), (200, 60)])
def test_layout_fits_small_and_large_terminals(size):
    app = HwmApp(link=FakeLink(scripted_events(300)), runs_dir=Path("/nonexistent"))

    async def scenario(pilot):
        await pilot.pause(0.6)
        screen = app.screen
        for widget_id in ("loss", "lr", "grad", "warnings"):
            region = screen.query_one(f"#{widget_id}").region
            assert region.width >= 30 and region.height >= 7, (widget_id, region)
            assert region.right <= size[0] and region.bottom <= size[1]

    run_scenario(app, None, scenario, size=size)


def test_status_bar_never_clips_the_state_at_80_columns():
    import dataclasses

    from hwm_core.events.types import StateEvent

    events = scripted_events(20)
    events[0] = dataclasses.replace(
        events[0],
        device="cuda:0 NVIDIA H100 80GB HBM3",
        preset="/home/researcher/experiments/presets/h100-long-context-12gb.toml",
    )
    events.append(StateEvent("checkpointing", 20))
    app = HwmApp(link=FakeLink(events), runs_dir=Path("/nonexistent"))

    async def scenario(pilot):
        await pilot.pause(0.3)
        [line] = [row for row in screen_text(app).splitlines() if "run 20261125-120000-cpu" in row]
        assert line.rstrip().endswith("● checkpointing")  # whole, at the end of its line
        assert "…" in line  # the preset path and device gave way

    run_scenario(app, None, scenario, size=(80, 24))


def test_a_trainer_that_dies_without_a_word_shows_failed():
    link = FakeLink([], alive=False, error="RuntimeError: data loader crashed")
    app = HwmApp(link=link, runs_dir=Path("/nonexistent"))

    async def scenario(pilot):
        screen = app.screen
        await wait_for(pilot, lambda: screen.state_label == "failed", timeout=5)
        summary = screen.query_one(SummaryBar)
        assert summary.display and "data loader crashed" in str(summary.render())

    run_scenario(app, None, scenario)


def test_p_after_c_while_paused_resumes():
    from hwm_core.events.types import StateEvent
    from hwm_core.runs.inbox import PAUSE, RESUME

    link = FakeLink(scripted_events(10))
    app = HwmApp(link=link, runs_dir=Path("/nonexistent"))

    async def scenario(pilot):
        screen = app.screen
        await pilot.press("p")
        await wait_for(pilot, lambda: screen.state_label == "paused", timeout=5)
        link.pending.append(StateEvent("checkpointing", 10))  # c: the trainer saves while paused
        await wait_for(pilot, lambda: screen.state_label == "checkpointing", timeout=5)
        await pilot.press("p")
        assert link.sent == [PAUSE, RESUME]
        await wait_for(pilot, lambda: screen.state_label == "running", timeout=5)

    run_scenario(app, None, scenario)


def test_interrupted_message_says_where_a_resume_starts():
    from hwm_tui.app import _interrupted_message

    assert "continue with: hwm-tui train --resume r1" in _interrupted_message("r1", 120, 120)
    failed_save = _interrupted_message("r1", 120, 100)
    assert "last checkpoint is step 100" in failed_save and "continue from step 100" in failed_save
    assert "cannot be resumed" in _interrupted_message("r1", 7, None)


def test_watch_link_starts_over_when_metrics_is_replaced_even_if_longer(tmp_path):
    import os

    from hwm_core.events.log import event_to_json
    from hwm_core.runs.folder import RunFolder
    from hwm_tui.watch_link import WatchLink

    run = tmp_path / "run"
    run.mkdir()
    (run / "run.json").write_text(json.dumps({"status": "running"}))
    lines = [event_to_json(e) + "\n" for e in scripted_events(40)]
    (run / "metrics.jsonl").write_text("".join(lines[:20]))
    link = WatchLink(RunFolder(run))
    assert len(link.poll()) == 20
    # A resume writes the file anew and swaps it in; it is longer than what we read
    # before the next poll, and our old offset falls mid-line in it.
    replacement = "x" * 7 + "".join(lines)
    assert len(replacement) > link._metrics.offset
    (run / "metrics.new").write_text(replacement)
    os.replace(run / "metrics.new", run / "metrics.jsonl")
    events = link.poll()
    assert link.generation == 1
    assert len(events) == len(lines) - 1  # everything but the damaged first line, none read mid-line


def test_charts_redraw_only_while_the_ui_keeps_to_its_share_of_a_core(monkeypatch):
    import hwm_tui.screens.train_screen as train_screen

    app = HwmApp(link=FakeLink(scripted_events(300)), runs_dir=Path("/nonexistent"))
    now, cpu = [1000.0], [50.0]
    monkeypatch.setattr(train_screen, "_monotonic", lambda: now[0])
    monkeypatch.setattr(train_screen, "_thread_cpu", lambda: cpu[0])

    async def scenario(pilot):
        await pilot.pause(0.3)
        screen = app.screen
        drawn = []
        monkeypatch.setattr(screen, "_redraw_charts", lambda force=False: drawn.append(now[0]))
        screen._charts_drawn_at, screen._cpu_at_charts_drawn = now[0], cpu[0]
        now[0] += 1.0
        screen._redraw_charts_when_due()
        assert drawn == []  # never more often than every CHART_REDRAW_S
        now[0] += 1.0
        cpu[0] += 0.01  # 0.5 % of a core: cheap, draw again
        screen._redraw_charts_when_due()
        assert drawn == [now[0]]
        screen._charts_drawn_at, screen._cpu_at_charts_drawn = now[0], cpu[0]
        cpu[0] += 0.12  # a costly drawing (a big terminal): 120 ms is 1.2 % of the next 10 s
        now[0] += 6.0
        screen._redraw_charts_when_due()
        assert len(drawn) == 1
        now[0] += 4.0
        screen._redraw_charts_when_due()
        assert len(drawn) == 2
        screen._charts_drawn_at, screen._cpu_at_charts_drawn = now[0], cpu[0]
        cpu[0] += 10.0  # far over budget: charts still show news every CHART_REDRAW_MAX_S
        now[0] += train_screen.CHART_REDRAW_MAX_S
        screen._redraw_charts_when_due()
        assert len(drawn) == 3

    run_scenario(app, None, scenario)


def test_charts_are_drawn_one_per_frame(monkeypatch):
    """A key pressed while the charts redraw waits for one chart's drawing, not three."""
    from hwm_tui.widgets.run_chart import RunChart

    app = HwmApp(link=FakeLink(scripted_events(50)), runs_dir=Path("/nonexistent"))

    async def scenario(pilot):
        await pilot.pause(0.3)
        screen = app.screen
        rendered = []
        for chart in screen.query(RunChart):
            original = chart._draw_strips
            monkeypatch.setattr(
                chart, "_draw_strips", lambda c=chart, f=original: (rendered.append((c.id, time.monotonic())), f())[1]
            )
        screen._redraw_charts(force=True)
        await pilot.pause(0.6)
        assert sorted(cid for cid, _ in rendered) == ["grad", "loss", "lr"]  # each drawn once
        times = sorted(t for _, t in rendered)
        assert all(later - earlier >= 0.05 for earlier, later in zip(times, times[1:]))

    run_scenario(app, None, scenario)


def test_f_freezes_the_display_while_keys_still_answer_and_the_end_still_shows():
    from hwm_tui.widgets.loss_chart import LossChart

    events = scripted_events(150)
    cut = next(n for n, e in enumerate(events) if getattr(e, "step", 0) == 101)
    first, later = events[:cut], events[cut:]
    link = FakeLink(first)
    app = HwmApp(link=link, runs_dir=Path("/nonexistent"), clock=fixed_clock)

    async def scenario(pilot):
        screen = app.screen
        await pilot.pause(0.5)
        assert "step 100/600" in screen_text(app)
        await pilot.press("f")
        await pilot.pause(0.1)
        assert "display frozen at step 100" in screen_text(app)
        chart = screen.query_one(LossChart)
        drawn_version = chart._shown_version
        link.pending.extend(later)  # 50 more steps arrive
        await pilot.pause(2.5)  # past a status tick and a chart redraw
        assert screen.view.progress.step == 150  # still followed
        assert "step 100/600" in screen_text(app) and chart._shown_version == drawn_version
        await pilot.press("p")  # keys answer, and so does the trainer, frozen or not
        await wait_for(pilot, lambda: "● paused" in screen_text(app))
        await pilot.press("f")
        await pilot.pause(0.5)
        text = screen_text(app)
        assert "step 150/600" in text and "frozen" not in text
        assert chart._shown_version != drawn_version
        await pilot.press("f")
        link.pending.append(StateEvent("completed", 150, time=T0 + 300))
        await wait_for(pilot, lambda: "finished" in screen_text(app))
        assert not screen.frozen  # the end of a run always shows

    run_scenario(app, None, scenario)


def test_first_steps_show_at_once_whatever_starting_up_cost(monkeypatch):
    import hwm_tui.screens.train_screen as train_screen
    from hwm_tui.widgets.loss_chart import LossChart

    events = scripted_events(20)
    link = FakeLink(events[:2])  # started, no step yet
    app = HwmApp(link=link, runs_dir=Path("/nonexistent"))
    cpu = [0.0]
    monkeypatch.setattr(train_screen, "_thread_cpu", lambda: cpu[0])

    async def scenario(pilot):
        await pilot.pause(0.3)
        chart = app.screen.query_one(LossChart)
        assert "waiting for the first step" in str(chart.border_title)
        cpu[0] += 5.0  # starting up was costly: the budget alone would wait CHART_REDRAW_MAX_S
        link.pending.extend(events[2:])
        await pilot.pause(1.0)
        assert "step 20" in str(chart.border_title)

    run_scenario(app, None, scenario)


def test_what_the_screen_adds_to_the_status_line_redraws_it_as_it_changes():
    """A command awaiting its answer, a message, frozen: reactives, so no caller has to
    remember to redraw the status line."""
    from hwm_tui.screens.train_screen import Pending

    app = HwmApp(link=FakeLink(scripted_events(10)), runs_dir=Path("/nonexistent"), clock=fixed_clock)

    async def scenario(pilot):
        await pilot.pause(0.3)
        screen = app.screen
        bar = screen.query_one(StatusBar)
        shown: list[tuple[str, str]] = []
        real_show = bar.show

        def show(progress, *, state, message, now):
            shown.append((state, message))
            real_show(progress, state=state, message=message, now=now)

        bar.show = show
        screen.pending = Pending.STOP
        assert shown[-1] == ("stopping…", "")
        screen._say("hello")
        screen._say("hello")  # said again: news again
        assert shown[-2:] == [("stopping…", "hello")] * 2
        screen.pending = None
        assert shown[-1] == ("running", "hello")
        drawn = len(shown)
        screen.frozen = True
        assert len(shown) == drawn + 1
        await pilot.pause(1.2)  # past a status tick: frozen, it draws nothing by itself
        assert len(shown) == drawn + 1

    run_scenario(app, None, scenario)
