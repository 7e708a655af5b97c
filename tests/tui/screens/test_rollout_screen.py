"""The rollout view (`i`): opened from history on a real whole-window run, stepped through its
grids, steered a window and back; a run of the default layout refused in one line; and a
snapshot drawn from fixed rollouts (no model: its pixels are the same on every machine)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from hwm_core.data.split import ANGULAR_VELOCITY_DIM, FRAMES_PER_WINDOW, LINEAR_VELOCITY_DIM
from hwm_core.data.synth import make_world
from hwm_core.predictions.imagination import STEER_SPEEDS, Imagination
from hwm_core.predictions.rollout import SampleRollout, imagine_next_window
from hwm_core.predictions.samples import false_colour
from hwm_tui.app import HwmApp
from hwm_tui.screens.rollout_screen import RolloutScreen
from hwm_tui.screens.samples_screen import SamplePanel
from tests.helpers import make_run

# one MaskGIT round a grid: the view is under test here, not MaskGIT (8 rounds took 45 s idle here)
# (and the compression preset's copy gate, so a gated model is rolled out and steered too)
WHOLE_WINDOW = (
    "data.windows=2",
    "data.future_latents=3",
    "model.d_model=16",
    "eval.maskgit_steps=1",
    "model.copy_gate=true",
)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A 2-step run of the compression layout (tiny) and one of the default layout, in one runs dir."""
    runs = tmp_path_factory.mktemp("rollout") / "runs"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield runs, make_run(runs, *WHOLE_WINDOW), make_run(runs)
    torch.set_num_threads(threads)


async def wait_for(pilot, condition, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await pilot.pause(0.1)


def head(screen) -> str:
    return str(screen.query_one("#rollout-head").render())


def shown(screen) -> list[tuple[str, np.ndarray]]:
    return [(panel.label, panel.rgb) for panel in screen.query(SamplePanel)]


def test_the_rollout_view_steps_through_a_rollout_and_steers_a_window(runs):
    root, run, _ = runs
    app = HwmApp(runs_dir=root)

    async def scenario():
        async with app.run_test(size=(150, 44)) as pilot:
            history = app.screen
            await wait_for(pilot, lambda: history.selected is not None)
            history.selected = run.name  # the whole-window run, whichever the table put first
            await pilot.press("i")
            await wait_for(pilot, lambda: isinstance(app.screen, RolloutScreen))
            screen = app.screen
            await wait_for(pilot, lambda: screen.imagination is not None and not screen.busy)
            im = screen.imagination
            assert im.spans == 4 and im.grids == 12 and im.other  # 4 spans, 4 windows of 3 grids
            other = im.other_indices[0]
            assert "grid 1 of 12: window 1, frame 1 after the context" in head(screen)
            assert f"span {other}'s states" in head(screen) and "reference" in head(screen)
            await pilot.press("right")
            await pilot.pause(0.2)
            assert "grid 2 of 12: window 1, frames 2-9" in head(screen)
            panels = shown(screen)
            assert [label for label, _ in panels] == [
                "context: last grid", "imagined: own states", f"imagined: span {other}'s", "true",
            ]  # fmt: skip
            own = im.own[0]
            for (_, rgb), codes in zip(
                panels, [own.context[-1], own.imagined[1], im.other[0].imagined[1], own.truth[1]]
            ):
                assert np.array_equal(rgb, false_colour(codes))
            await pilot.press("n")
            await pilot.pause(0.2)
            assert "(2 of 4)" in head(screen) and "grid 1 of 12" in head(screen)

            # steer span 2: the camera's column velocity two steps up from where its context ended
            await pilot.press("t")
            await pilot.pause(0.2)
            assert screen.steering and "0 windows imagined" in head(screen)
            rows, cols = im.start_velocity(1)
            await pilot.press("d", "d", "w")
            steer = screen.velocity
            at = STEER_SPEEDS.index
            assert steer[1] == STEER_SPEEDS[min(at(cols) + 2, len(STEER_SPEEDS) - 1)]
            assert steer[0] == STEER_SPEEDS[max(at(rows) - 1, 0)]
            await pilot.press("space")
            await wait_for(pilot, lambda: not screen.busy)
            await pilot.pause(0.2)  # the panels swapped: the old ones' removal is processed next
            steered = im.steering(1)
            assert len(steered.windows) == 1 and steered.velocities == [steer]
            window_states = steered.states[-FRAMES_PER_WINDOW:]
            assert (window_states[:, LINEAR_VELOCITY_DIM] == steer[0]).all()
            assert (window_states[:, ANGULAR_VELOCITY_DIM] == steer[1]).all()
            # what the view imagined is the engine's window under those states, after the true context
            again = imagine_next_window(im.trained, steered.context, steered.states, maskgit_steps=im.maskgit_steps)
            assert np.array_equal(steered.windows[0], again)
            assert "grid 3 of 3" in head(screen) and "follows the steer:" in head(screen)
            before, now = steered.grids[len(steered.context) + 1 : len(steered.context) + 3]
            assert f"unmoved from the grid before: {(now == before).mean():.1%}" in head(screen)
            labels = [label for label, _ in shown(screen)]
            assert labels == ["the grid before", "imagined, steered", "where the steer moves it"]
            assert np.array_equal(shown(screen)[1][1], false_colour(steered.windows[0][2]))
            await pilot.press("backspace")
            await pilot.pause(0.2)
            assert not im.steering(1).windows and "0 windows imagined" in head(screen)
            await pilot.press("escape")
            await pilot.pause(0.2)
            assert app.screen is history

    asyncio.run(scenario())


def test_a_run_whose_target_is_not_a_window_is_one_line_in_the_view(runs):
    root, _, one_grid = runs
    app = HwmApp(runs_dir=root)

    async def scenario():
        async with app.run_test(size=(120, 30)) as pilot:
            app.push_screen(RolloutScreen(one_grid))
            await wait_for(pilot, lambda: isinstance(app.screen, RolloutScreen) and not app.screen.busy)
            text = str(app.screen.query_one("#rollout-empty").render())
            assert "cannot be rolled out" in text and "compression" in text
            await pilot.press("t", "right", "space")  # nothing to steer or step: nothing happens
            assert app.screen.imagination is None

    asyncio.run(scenario())


def fixed_imagination() -> Imagination:
    """Two spans of a 2-window rollout built from the synthetic world by hand, no model: the
    view scrolls down a token a grid, the own rollout has a tenth of each grid wrong and the
    other one stands still. The same pixels and figures on every machine."""
    rng = np.random.default_rng(7)
    world = make_world(rng)

    def view(row: int, col: int) -> np.ndarray:
        return world[row : row + 32, col : col + 32].astype(np.int32)

    def rollout(index: int) -> tuple[SampleRollout, SampleRollout]:
        top, left = 20 * index, 40 * index
        context = np.stack([view(top, left)] * 3)
        truth = np.stack([view(top + 1 + g, left) for g in range(6)])
        imagined = truth.copy()
        imagined[rng.random(imagined.shape) < 0.1] = 0
        states = np.zeros((3 * FRAMES_PER_WINDOW, 25), dtype=np.float32)
        states[FRAMES_PER_WINDOW:, LINEAR_VELOCITY_DIM] = 0.125
        still = np.repeat(context[-1:], 6, axis=0)
        return (
            SampleRollout(index, context, imagined, truth, states, np.ones(6)),
            SampleRollout(index, context, still, truth, states, np.ones(6)),
        )

    (own0, other0), (own1, other1) = rollout(0), rollout(1)
    return Imagination(
        None,  # type: ignore[arg-type] - nothing here runs the model
        [own0, own1],
        [other0, other1],
        horizon=2,
        total_spans=10,
        synthetic=True,
        hz=30.0,
        maskgit_steps=8,
    )


def test_rollout_view_snapshot(snap_compare):
    app = HwmApp(runs_dir=Path("/runs"))

    async def opened(pilot):
        pilot.app.push_screen(
            RolloutScreen(Path("/runs/20261207-120000-compression"), opener=lambda _: fixed_imagination())
        )
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, RolloutScreen) and pilot.app.screen.imagination)
        await pilot.press("right")
        await pilot.pause(0.5)

    assert snap_compare(app, terminal_size=(150, 30), run_before=opened)
