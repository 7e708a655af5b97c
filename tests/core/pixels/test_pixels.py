"""The decoder (a scripted fake with decoder.jit's interface: each code a known colour), its load
check, PSNR and the decoded figures. No test needs the real decoder or the network."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hwm_core.errors import DataError
from hwm_core.hub import DECODER_FILE, DECODER_REPO
from hwm_core.pixels.decoder import DECODER_ENV, find_decoder, load_decoder, to_uint8
from hwm_core.pixels.frames import WindowPixels, grid_frames, last_frame, open_pixels
from hwm_core.pixels.psnr import PSNR_CAP_DB, frame_psnr
from hwm_core.predictions.pixel_figures import target_psnr
from tests.fake_decoder import code_colour, expected_frames, write_fake_decoder
from tests.helpers import hub_cache


@pytest.fixture(scope="module")
def pixels(tmp_path_factory) -> WindowPixels:
    return WindowPixels(load_decoder(write_fake_decoder(tmp_path_factory.mktemp("dec") / "decoder.jit"), "cpu"))


def windows(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 64000, size=(n, 3, 32, 32)).astype(np.int32)


def test_a_known_grid_decodes_to_its_colours_frame_by_frame(pixels):
    window = windows(1)[0]
    frames = pixels.window(window)
    assert frames.shape == (17, 256, 256, 3) and frames.dtype == np.uint8
    assert (frames == expected_frames(window)).all()
    # grid 0 is frame 0, grid 1 frames 1-8, grid 2 frames 9-16: each token an 8 x 8 block of its colour
    assert [list(grid_frames(g)) for g in range(3)] == [[0], list(range(1, 9)), list(range(9, 17))]
    assert [last_frame(g) for g in range(3)] == [0, 8, 16]
    assert (frames[5, 8 * 3 : 8 * 4, 8 * 7 : 8 * 8] == code_colour(window[1, 3, 7])).all()
    # a sequence of windows decodes window by window; the grid frame is its window's last frame of it
    sequence = windows(2, seed=1).reshape(6, 32, 32)
    assert (pixels.grid_frame(sequence, 4) == expected_frames(sequence[3:])[8]).all()
    assert pixels.sequence(sequence).shape == (34, 256, 256, 3)


def test_decoded_windows_are_kept_and_reused(pixels, monkeypatch):
    window = windows(1, seed=5)[0]
    pixels.window(window)
    assert pixels.cached(window)
    monkeypatch.setattr(pixels.decoder, "decode", lambda codes: pytest.fail("decoded again"))
    assert (pixels.window(window) == expected_frames(window)).all()


def test_to_uint8_rounds_and_clips():
    rgb = np.array([-1.5, -1.0, 0.0, 0.999, 1.0, 2.0], dtype=np.float32).reshape(1, 1, 1, 1, 6).repeat(3, 1)
    assert to_uint8(rgb)[0, 0, 0, :, 0].tolist() == [0, 0, 128, 255, 255, 255]


def test_psnr_of_an_exact_match_is_the_cap_and_of_a_known_difference_the_formula():
    truth = np.random.default_rng(0).integers(0, 200, size=(2, 16, 16, 3)).astype(np.uint8)
    assert frame_psnr(truth, truth).tolist() == [PSNR_CAP_DB, PSNR_CAP_DB]
    off = truth.copy()
    off[0] += 10  # every value 10 off: MSE 100
    off[1, :8] += 4  # half the frame 4 off: MSE 8
    assert frame_psnr(off, truth) == pytest.approx([10 * math.log10(255**2 / 100), 10 * math.log10(255**2 / 8)])


def test_target_psnr_decodes_each_target_with_its_window_and_copy_last_holds_the_last_context_frame(pixels):
    truth = windows(2, seed=2).reshape(1, 6, 32, 32)  # a context window, then a target window
    exact = target_psnr(pixels, truth, truth[:, 3:])
    assert [p.shape for p in exact.predicted] == [(1, 1), (1, 8), (1, 8)]
    assert all((p == PSNR_CAP_DB).all() for p in exact.predicted)
    # a guess wrong in one token of grid 2 of the target window: those 8 frames lose one 8 x 8 block
    guess = truth[:, 3:].copy()
    guess[0, 2, 0, 0] = (guess[0, 2, 0, 0] + 1) % 64000
    scored = target_psnr(pixels, truth, guess)
    true_frames = expected_frames(truth[0, 3:])
    block = (true_frames[9, :8, :8].astype(float) - expected_frames(guess[0])[9, :8, :8]) ** 2
    mse = block.sum() / (256 * 256 * 3)
    assert scored.predicted[2] == pytest.approx(np.full((1, 8), 10 * math.log10(255**2 / mse)))
    assert (scored.predicted[0] == PSNR_CAP_DB).all() and (scored.predicted[1] == PSNR_CAP_DB).all()
    # copy-last: frame 16 of the context window held still, against every target frame
    still = expected_frames(truth[0, :3])[16]
    expected = frame_psnr(np.broadcast_to(still, true_frames.shape), true_frames)
    assert scored.frames("copy_last")[0] == pytest.approx(expected)
    # the default layout: 2 context grids and 1 target grid in one window; copy-last is frame 8
    one = truth[:, :3]
    scored = target_psnr(pixels, one, one[:, 2:])
    still = expected_frames(one[0])[8]
    assert scored.frames("copy_last")[0] == pytest.approx(
        frame_psnr(np.broadcast_to(still, (8, 256, 256, 3)), expected_frames(one[0])[9:])
    )


def test_bad_decoder_files_are_one_line_naming_the_file(tmp_path):
    junk = tmp_path / "junk.jit"
    junk.write_bytes(b"this is not a TorchScript archive")
    cases = {
        junk: "is not a TorchScript module",
        write_fake_decoder(tmp_path / "short.jit", "frames16"): "gives shape [1, 3, 16, 256, 256]",
        write_fake_decoder(tmp_path / "fails.jit", "fails"): "fails on integer codes [1, 3, 32, 32]",
    }
    for path, says in cases.items():
        with pytest.raises(DataError) as raised:
            load_decoder(path, "cpu")
        line = str(raised.value)
        assert "\n" not in line and str(path) in line and says in line, line
        assert "hwm-tui data download --decoder" in line


def test_the_decoder_is_found_where_named_else_in_the_hub_cache_else_none(tmp_path, monkeypatch):
    monkeypatch.delenv(DECODER_ENV, raising=False)
    cache = tmp_path / "hub"
    assert find_decoder(cache_dir=cache) is None
    assert open_pixels()[0] is None and "hwm-tui data download --decoder" in open_pixels()[1]
    source = tmp_path / "model"
    write_fake_decoder(source / DECODER_FILE)
    snapshot = hub_cache(cache, source, DECODER_REPO, kind="models")
    assert find_decoder(cache_dir=cache) == snapshot / DECODER_FILE
    named = write_fake_decoder(tmp_path / "mine.jit")
    monkeypatch.setenv(DECODER_ENV, str(named))
    assert find_decoder(cache_dir=cache) == named  # the environment names another file
    assert find_decoder(tmp_path / "mine.jit", cache_dir=cache) == named
    with pytest.raises(DataError, match=r"^--decoder .*nope.jit: no such file"):
        find_decoder(tmp_path / "nope.jit")
    monkeypatch.setenv(DECODER_ENV, str(tmp_path / "gone.jit"))
    with pytest.raises(DataError, match=r"^\$HWM_DECODER .*gone.jit: no such file"):
        find_decoder()
    pixels, note = open_pixels()  # a view says what is wrong, and keeps false colours
    assert pixels is None and "gone.jit: no such file" in note


def test_rollout_psnr_per_horizon_and_at_the_sampling_track_frame(pixels):
    from hwm_core.predictions.rollout import SampleRollout
    from hwm_core.predictions.rollout_figures import score

    rng = np.random.default_rng(7)
    context, truth = windows(1, seed=8).reshape(3, 32, 32), windows(4, seed=9).reshape(12, 32, 32)
    imagined = truth.copy()
    imagined[9:] = rng.integers(0, 64000, size=(3, 32, 32))  # window 4 wrong, windows 1-3 exact
    rollout = SampleRollout(0, context, imagined, truth, np.zeros((85, 25), np.float32), np.zeros(12))
    figures = score([rollout], hz=30, synthetic=False, pixels=pixels)
    assert [w["psnr_db"] for w in figures["per_window"][:3]] == [PSNR_CAP_DB] * 3
    window4 = frame_psnr(expected_frames(imagined[9:]), expected_frames(truth[9:]))
    assert figures["per_window"][3]["psnr_db"] == pytest.approx(window4.mean())
    track = figures["sampling_track_frame"]  # frame 60 after the context: window 4's frame 8 (of 0-16)
    assert (track["frames_ahead"], track["horizon"]) == (60, 4)
    assert track["psnr_db"] == pytest.approx(window4[8])
    still = expected_frames(context)[16]
    assert track["copy_last_psnr_db"] == pytest.approx(frame_psnr(still, expected_frames(truth[9:])[8]))
    assert figures["per_grid"][0]["copy_last_psnr_db"] == pytest.approx(
        frame_psnr(still, expected_frames(truth[:3])[0])
    )
    plain = score([rollout], hz=30, synthetic=False)  # no decoder: the keys are there, null
    assert plain["sampling_track_frame"] is None and plain["per_window"][0]["psnr_db"] is None
