"""The samples and rollout views with a decoder (the fake of tests/fake_decoder.py, each code a
known colour): RGB frames where false colours were, decoded with their windows; without one,
false colours and a line on how to get pixels."""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest

from hwm_core.data.split import FRAMES_PER_WINDOW, LINEAR_VELOCITY_DIM
from hwm_core.pixels.decoder import DECODER_ENV, load_decoder
from hwm_core.pixels.frames import WindowPixels
from hwm_core.predictions.samples import SampleRecord, false_colour, save_samples
from hwm_core.runs.folder import RunFolder
from hwm_tui.app import HwmApp
from hwm_tui.screens.rollout_screen import RolloutScreen
from hwm_tui.screens.samples_screen import SamplePanel, SamplesScreen
from tests.fake_decoder import expected_frames, write_fake_decoder
from tests.tui.screens.test_rollout_screen import fixed_imagination


@pytest.fixture(scope="module")
def decoder(tmp_path_factory):
    return write_fake_decoder(tmp_path_factory.mktemp("decoder") / "decoder.jit")


async def wait_for(pilot, condition, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await pilot.pause(0.1)


def a_record(tmp_path) -> tuple[SampleRecord, object]:
    rng = np.random.default_rng(11)
    codes = lambda *shape: rng.integers(0, 64000, size=shape).astype(np.int32)  # noqa: E731
    record = SampleRecord(
        step=3, indices=[0, 1], context=codes(2, 2, 32, 32), truth=codes(2, 1, 32, 32),
        argmax=codes(2, 1, 32, 32), maskgit=codes(2, 1, 32, 32), maskgit_other=codes(2, 1, 32, 32),
        other_indices=[1, 0],
    )  # fmt: skip
    run = tmp_path / "runs" / "20261207-120000-cpu"
    run.mkdir(parents=True)
    save_samples(RunFolder(run), record)
    return record, run


@pytest.mark.parametrize("with_decoder", [True, False], ids=["decoder", "none"])
def test_the_samples_view_shows_decoded_frames_with_a_decoder_and_says_how_without(
    with_decoder, decoder, tmp_path, monkeypatch
):
    record, run = a_record(tmp_path)
    if with_decoder:
        monkeypatch.setenv(DECODER_ENV, str(decoder))
    app = HwmApp(runs_dir=run.parent)

    async def scenario():
        async with app.run_test(size=(150, 40)) as pilot:
            app.push_screen(SamplesScreen(run))
            await wait_for(pilot, lambda: isinstance(app.screen, SamplesScreen))
            screen = app.screen
            await wait_for(pilot, lambda: screen.pixels_note != "looking for a decoder…" and not screen.decoding)
            await pilot.pause(0.2)
            head = str(screen.query_one("#samples-head").render())
            panels = {p.label: p.rgb for p in screen.query(SamplePanel)}
            if not with_decoder:
                assert "false colours" in head and "hwm-tui data download --decoder" in head
                assert np.array_equal(panels["truth"], false_colour(record.truth[0, 0]))
                return
            assert "RGB frames decoded by decoder.jit on cpu" in head
            truth = expected_frames(np.concatenate([record.context[0], record.truth[0]]))
            assert np.array_equal(panels["context 1 · frame 0"], truth[0])
            assert np.array_equal(panels["context 2 · frame 8"], truth[8])
            assert np.array_equal(panels["truth · frame 16"], truth[16])
            for label, codes in (("MaskGIT", record.maskgit), ("other states", record.maskgit_other)):
                decoded = expected_frames(np.concatenate([record.context[0], codes[0]]))[16]
                assert np.array_equal(panels[label], decoded), label
            assert panels["errors"].shape == (32, 32, 3)  # the error map stays in tokens
            await pilot.press("right")
            await wait_for(pilot, lambda: "(2 of 2)" in str(screen.query_one("#samples-head").render()))
            await wait_for(pilot, lambda: not screen.decoding)
            await pilot.pause(0.2)
            panels = {p.label: p.rgb for p in screen.query(SamplePanel)}
            truth = expected_frames(np.concatenate([record.context[1], record.truth[1]]))
            assert np.array_equal(panels["truth · frame 16"], truth[16])

    asyncio.run(scenario())


def test_the_rollout_view_shows_decoded_frames_and_the_steer_moves_pixels(decoder):
    pixels = WindowPixels(load_decoder(decoder, "cpu"))
    im = fixed_imagination()
    im.pixels, im.pixels_note = pixels, f"RGB frames {pixels.description}"
    app = HwmApp(runs_dir=decoder.parent)

    async def scenario():
        async with app.run_test(size=(150, 40)) as pilot:
            app.push_screen(RolloutScreen(decoder.parent / "20261207-120000-compression", opener=lambda _: im))
            await wait_for(pilot, lambda: isinstance(app.screen, RolloutScreen) and app.screen.imagination)
            screen = app.screen
            await pilot.press("right", "right", "right", "right")  # grid 5: window 2, frame 8 of it
            await wait_for(pilot, lambda: screen.grid == 4 and not screen.decoding)
            await pilot.pause(0.3)
            head = str(screen.query_one("#rollout-head").render())
            assert "RGB frames decoded by decoder.jit on cpu: each grid shown by the last frame it covers" in head
            panels = [p.rgb for p in screen.query(SamplePanel)]
            own, other = im.own[0], im.other[0]
            assert np.array_equal(panels[0], expected_frames(own.context)[16])
            assert np.array_equal(panels[1], expected_frames(own.imagined[3:6])[8])
            assert np.array_equal(panels[2], expected_frames(other.imagined[3:6])[8])
            assert np.array_equal(panels[3], expected_frames(own.truth[3:6])[8])

    asyncio.run(scenario())
    # a steered window (appended by hand: no model here) down a token a frame: the reference is
    # the frame before moved 8 pixels a token, what enters at the edge black
    steered = im.steering(0)
    steered.windows.append(im.own[0].imagined[:3])
    steered.velocities.append((1.0, 0.0))
    moved = np.repeat(steered.states[-1:], FRAMES_PER_WINDOW, axis=0)
    moved[:, LINEAR_VELOCITY_DIM] = 1.0
    steered.states = np.concatenate([steered.states, moved])
    before, imagined, reference = (p.rgb for p in im.steer_panels(0, 1))  # grid 2: frames 1-8, 8 tokens down
    assert np.array_equal(before, expected_frames(steered.windows[0])[0])
    assert np.array_equal(imagined, expected_frames(steered.windows[0])[8])
    assert np.array_equal(reference[: 256 - 64], before[64:]) and (reference[256 - 64 :] == 0).all()
