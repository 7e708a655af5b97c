"""`hwm-tui imagine`: its JSON, the GIF's frames, size and colours, the --out split, and every
refusal one line, exit 2. What the rollout computes: tests/core/predictions/test_rollout.py."""

from __future__ import annotations

import json

import numpy as np
from PIL import Image
from typer.testing import CliRunner

from hwm_core.predictions.samples import false_colour
from hwm_tui.cli import app
from hwm_tui.rollout_gif import GAP, LABEL, PANEL, SCALE, TITLE, gif_size
from tests.helpers import hwm

QUICK = ("--limit", "2", "--horizon", "2", "--maskgit-steps", "1")
ONE_THREAD = {"OMP_NUM_THREADS": "1"}  # two threads on a busy 2-core box wait on each other (conftest.py)


def invoke(*args: str):
    return CliRunner().invoke(app, ["imagine", *args], catch_exceptions=False)


def one_line_error(result, needle: str) -> str:
    assert result.exit_code == 2, (result.stdout, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and needle in lines[0], result.stderr
    return lines[0]


def test_imagine_prints_its_figures_draws_the_gif_and_writes_a_split_inspect_passes(runs, tmp_path):
    root, run, _ = runs
    out, gif = tmp_path / "imagined", tmp_path / "rollout.gif"
    result = hwm(
        "imagine", str(run), *QUICK, "--runs-dir", str(root), "--json", "--out", str(out), "--gif", str(gif),
        env=ONE_THREAD,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)  # nothing but the JSON on stdout
    assert report["actions"] == "own" and report["horizon"] == 2 and report["samples"] == 2
    assert report["context_grids"] == 3 and report["out"] == str(out)
    assert [w["horizon"] for w in report["per_window"]] == [1, 2] and len(report["per_grid"]) == 6
    for figures in report["per_window"] + report["per_grid"]:
        for key in ("token_accuracy", "copy_last_accuracy", "reference_accuracy", "reference_agreement"):
            assert 0 <= figures[key] <= 1, key  # a synthetic split: the reference is there
        assert figures["ce_nats"] > 0
    assert set(report["definitions"]) >= {"token_accuracy", "ce_nats", "reference_accuracy"}
    width, height = gif_size(2)
    assert report["gif"] == {
        "path": str(gif),
        "width": width,
        "height": height,
        "frames": 6,
        "samples": 2,
        "pixels": False,
    }
    with Image.open(gif) as image:  # one frame a latent grid imagined, the size its layout has
        assert (image.n_frames, image.size) == (6, gif_size(2))
        image.seek(4)
        frame = np.asarray(image.convert("RGB"))
    # sample 0's fifth imagined grid, as --out wrote it (after its context window), where it belongs
    (video,) = out.glob("video*")
    imagined = np.fromfile(video, dtype=np.int32).reshape(-1, 32, 32)[3 + 4]
    top, left = TITLE + LABEL, GAP + PANEL + GAP
    drawn = frame[top : top + PANEL : SCALE, left : left + PANEL : SCALE].astype(int)
    assert np.abs(drawn - false_colour(imagined)).max() <= 24  # within the GIF's 256-colour palette
    inspected = CliRunner().invoke(app, ["data", "inspect", str(out)], catch_exceptions=False)
    assert inspected.exit_code == 0, inspected.output


def test_the_table_names_each_window(runs):
    root, run, _ = runs
    result = invoke(str(run), *QUICK, "--actions", "zero", "--runs-dir", str(root))
    assert result.exit_code == 0, result.output
    assert "under zero actions" in result.stdout and "34 (1.13 s)" in result.stdout


def test_every_refusal_is_one_line_and_exit_2(runs, tmp_path):
    root, run, one_grid = runs
    line = one_line_error(invoke(str(one_grid), "--runs-dir", str(root)), "not a whole window")
    assert "compression" in line  # names a preset that can
    one_line_error(invoke(str(run), "--runs-dir", str(root), "--actions", str(tmp_path / "no.npy")), "not own")
    np.save(tmp_path / "short.npy", np.zeros((20, 25), dtype=np.float32))
    one_line_error(invoke(str(run), "--runs-dir", str(root), "--actions", str(tmp_path / "short.npy")), "20 frames")
    one_line_error(invoke(str(run), "--runs-dir", str(root), "--horizon", "999"), "--horizon")
    one_line_error(invoke(str(run), "--runs-dir", str(root), "--gif", str(tmp_path)), "is a folder")
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "file").write_text("mine")
    one_line_error(invoke(str(run), "--runs-dir", str(root), "--out", str(tmp_path / "taken")), "not empty")
    assert (tmp_path / "taken" / "file").read_text() == "mine"
