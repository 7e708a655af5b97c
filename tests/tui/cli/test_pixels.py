"""Pixels in the commands: evaluate's PSNR, samples --png and imagine --gif decoded by a fake
decoder (tests/fake_decoder.py: each code a known colour), and a bad decoder file one line, exit 2."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from hwm_tui.cli import app
from hwm_tui.rollout_gif import GAP, LABEL, TITLE, gif_size
from tests.fake_decoder import expected_frames, write_fake_decoder
from tests.helpers import hwm

ONE_THREAD = {"OMP_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def decoder(tmp_path_factory):
    return write_fake_decoder(tmp_path_factory.mktemp("decoder") / "decoder.jit")


def test_evaluate_reports_psnr_per_target_grid_beside_copy_last_only_with_a_decoder(runs, decoder):
    root, _, one_grid = runs
    base = ("evaluate", str(one_grid), "--runs-dir", str(root), "--limit", "2", "--maskgit-steps", "1", "--json")
    result = hwm(*base, "--decoder", str(decoder), env=ONE_THREAD)
    assert result.returncode == 0, result.stderr
    pixels = json.loads(result.stdout)["pixels"]
    assert pixels["video_frames_scored"] == [2 * 8]  # the default layout's target grid: frames 9-16
    assert len(pixels["psnr_db_per_frame"]) == 1 and len(pixels["copy_last_psnr_db_per_frame"]) == 1
    assert 0 < pixels["psnr_db"] <= pixels["cap_db"] and 0 < pixels["copy_last_psnr_db"] <= pixels["cap_db"]
    assert pixels["decoder"] == str(decoder) and "10 log10(255^2 / MSE)" in pixels["definition"]
    table = hwm(*base[:-1], "--decoder", str(decoder), env={**ONE_THREAD, "COLUMNS": "250"})
    assert "PSNR (dB), MaskGIT decoded" in table.stdout and "PSNR (dB), copy-last decoded" in table.stdout
    for extra in ((), ("--decoder", str(decoder), "--no-pixels")):  # no decoder found, or not wanted
        plain = hwm(*base, *extra, env=ONE_THREAD)
        assert plain.returncode == 0 and json.loads(plain.stdout)["pixels"] is None, plain.stderr


def test_samples_png_draws_decoded_frames_at_their_size(runs, decoder, tmp_path):
    root, _, one_grid = runs
    png = tmp_path / "samples.png"
    args = ("samples", str(one_grid), "--runs-dir", str(root), "--png", str(png), "--count", "1")
    result = hwm(*args, "--maskgit-steps", "1", "--decoder", str(decoder), env=ONE_THREAD)
    assert result.returncode == 0, result.stderr
    assert "decoded by decoder.jit on cpu" in result.stdout
    from hwm_tui.sample_png import png_size

    with Image.open(png) as image:
        assert image.size == png_size(7, 1, 256)  # context 1, 2, truth, argmax, MaskGIT, other, errors


def test_the_png_carries_the_decoded_pixels_of_each_grid(decoder, tmp_path):
    from hwm_core.pixels.decoder import load_decoder
    from hwm_core.pixels.frames import WindowPixels
    from hwm_core.predictions.samples import SampleRecord
    from hwm_tui.sample_png import COLUMN_LABEL, GAP, ROW_LABEL, TITLE, write_png

    rng = np.random.default_rng(3)
    codes = lambda *shape: rng.integers(0, 64000, size=shape).astype(np.int32)  # noqa: E731
    record = SampleRecord(
        step=1, indices=[0], context=codes(1, 2, 32, 32), truth=codes(1, 1, 32, 32),
        argmax=codes(1, 1, 32, 32), maskgit=codes(1, 1, 32, 32),
    )  # fmt: skip
    write_png(record, tmp_path / "s.png", title="t", pixels=WindowPixels(load_decoder(decoder, "cpu")))
    sheet = np.asarray(Image.open(tmp_path / "s.png").convert("RGB"))
    top = TITLE + COLUMN_LABEL

    def panel(j: int) -> np.ndarray:
        left = ROW_LABEL + j * (256 + GAP)
        return sheet[top : top + 256, left : left + 256]

    truth_window = np.concatenate([record.context[0], record.truth[0]])
    maskgit_window = np.concatenate([record.context[0], record.maskgit[0]])
    assert (panel(0) == expected_frames(truth_window)[0]).all()  # context 1: frame 0
    assert (panel(1) == expected_frames(truth_window)[8]).all()  # context 2: frame 8
    assert (panel(2) == expected_frames(truth_window)[16]).all()  # the truth: frame 16
    assert (panel(4) == expected_frames(maskgit_window)[16]).all()  # MaskGIT, decoded with its context


def test_imagine_with_a_decoder_scores_psnr_per_horizon_and_draws_the_video(runs, decoder, tmp_path):
    root, run, _ = runs
    gif, out = tmp_path / "r.gif", tmp_path / "imagined"
    result = hwm(
        "imagine", str(run), "--limit", "2", "--horizon", "2", "--maskgit-steps", "1", "--runs-dir", str(root),
        "--json", "--gif", str(gif), "--out", str(out), "--decoder", str(decoder), env=ONE_THREAD,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    for figures in report["per_window"] + report["per_grid"]:
        assert 0 < figures["psnr_db"] <= 100 and 0 < figures["copy_last_psnr_db"] <= 100
    assert report["sampling_track_frame"] is None  # 34 frames imagined: frame 60 is beyond them
    assert report["decoder"] == str(decoder) and "psnr_db" in report["definitions"]
    assert report["gif"]["frames"] == 34 and report["gif"]["pixels"] is True
    with Image.open(gif) as image:  # a GIF frame per video frame, 256 x 256 panels
        assert (image.n_frames, image.size) == (34, gif_size(2, 256))
        image.seek(20)  # frame 21 after the context: window 2, its frame 3
        frame = np.asarray(image.convert("RGB")).astype(int)
    (video,) = out.glob("video*")
    imagined = np.fromfile(video, dtype=np.int32).reshape(-1, 32, 32)[3:9]  # sample 0, after its context
    expected = expected_frames(imagined[3:6])[3].astype(int)
    top, left = TITLE + LABEL, GAP + 256 + GAP
    assert np.abs(frame[top : top + 256, left : left + 256] - expected).max() <= 24  # the GIF's palette


def test_a_bad_decoder_is_one_line_exit_2_before_any_model_runs(runs, tmp_path):
    root, run, one_grid = runs
    junk = tmp_path / "decoder.jit"
    junk.write_bytes(b"not TorchScript")
    short = write_fake_decoder(tmp_path / "short.jit", "frames16")
    for command, target in (("evaluate", one_grid), ("imagine", run)):
        for path, says in (
            (junk, "is not a TorchScript module"),
            (short, "gives shape"),
            (tmp_path / "no.jit", "no such file"),
        ):
            result = CliRunner().invoke(app, [command, str(target), "--runs-dir", str(root), "--decoder", str(path)])
            lines = result.stderr.strip().splitlines()
            assert result.exit_code == 2 and len(lines) == 1 and says in lines[0] and str(path) in lines[0], (
                result.stderr
            )
    png = CliRunner().invoke(
        app,
        ["samples", str(one_grid), "--runs-dir", str(root), "--png", str(tmp_path / "s.png"), "--decoder", str(junk)],
    )
    assert png.exit_code == 2 and "is not a TorchScript module" in png.stderr and not (tmp_path / "s.png").exists()
    history = CliRunner().invoke(app, ["history", "--runs-dir", str(root), "--decoder", str(tmp_path / "no.jit")])
    assert history.exit_code == 2 and "no such file" in history.stderr
