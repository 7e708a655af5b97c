"""Rolling a whole-window run forward (`hwm-tui imagine`): the same as evaluate's MaskGIT at
horizon 1, repeatable, under actions from a file, and written as a split other commands read."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from hwm_core.errors import ConfigError, DataError
from hwm_core.predictions.actions import Actions, parse_actions
from hwm_core.predictions.inference import open_samples, sample_batch, split_path
from hwm_core.predictions.predict import maskgit_sample
from hwm_core.predictions.rollout import (
    RolloutOptions,
    check_whole_window,
    open_rollout_samples,
    roll_out,
    span_frames,
)
from hwm_core.predictions.samples import false_colour
from hwm_tui.rollout_gif import GAP, LABEL, PANEL, SCALE, TITLE, gif_size
from tests.core.predictions.test_evaluate import fresh_model, trained_run
from tests.helpers import hwm

WHOLE_WINDOW = ("data.windows=2", "data.future_latents=3")


def _trained():
    trained, _ = fresh_model(*WHOLE_WINDOW)
    torch.manual_seed(1)
    for p in trained.model.parameters():  # a fresh model predicts nearly uniform codes: give it opinions
        p.data.normal_(0, 0.2)
    return trained


def test_a_rollout_of_one_window_is_evaluates_maskgit_prediction_and_repeats():
    trained = _trained()
    path = split_path(trained, None, "val")
    rolled = open_rollout_samples(trained, path, horizon=1)
    options = RolloutOptions(horizon=1, limit=3, batch_size=16, maskgit_steps=2)
    first = roll_out(trained, rolled, [0, 1, 2], Actions("own"), options)
    again = roll_out(trained, rolled, [0, 1, 2], Actions("own"), options)
    # evaluate's samples: the same spans (context window + target window), seeded the same
    samples = open_samples(trained, path)
    ids, states = sample_batch(trained, samples, [0, 1, 2])
    generated = maskgit_sample(trained, ids, states, steps=2, temperature=0.0, seed=0)
    codes = trained.factors.factors_to_codes(generated[:, -3:]).view(3, 3, 32, 32).numpy()
    for row, rollout in enumerate(first):
        assert np.array_equal(rollout.imagined, codes[row])
        assert np.array_equal(rollout.imagined, again[row].imagined)
        assert rollout.context.shape == (3, 32, 32) and rollout.truth.shape == (3, 32, 32)


def test_a_longer_rollout_feeds_its_windows_back_and_other_actions_change_it():
    trained = _trained()
    rolled = open_rollout_samples(trained, split_path(trained, None, "val"), horizon=2)
    options = RolloutOptions(horizon=2, limit=2, maskgit_steps=1)
    own = roll_out(trained, rolled, [0, 1], Actions("own"), options)
    zero = roll_out(trained, rolled, [0, 1], Actions("zero"), options)
    assert own[0].imagined.shape == (6, 32, 32) and own[0].states.shape == (span_frames(trained.config, 2), 25)
    assert not np.array_equal(own[0].imagined, zero[0].imagined)
    assert not zero[0].states.any()


def test_a_states_file_round_trips_and_a_bad_one_is_refused(tmp_path):
    frames = 51
    states = np.random.default_rng(0).normal(size=(frames + 4, 25)).astype(np.float32)
    states.tofile(tmp_path / "states_0.bin")
    np.save(tmp_path / "states.npy", states)
    for name in ("states_0.bin", "states.npy"):
        read = parse_actions(str(tmp_path / name), frames)
        assert read.kind == "file" and np.array_equal(read.states, states[:frames])
    np.save(tmp_path / "short.npy", states[:10])
    np.save(tmp_path / "wide.npy", np.zeros((frames, 24), dtype=np.float32))
    nan = states.copy()
    nan[7, 3] = np.nan
    np.save(tmp_path / "nan.npy", nan)
    (tmp_path / "odd.bin").write_bytes(b"\0" * 101)
    expected = {
        "short.npy": "holds 10 frames",
        "wide.npy": r"shape \[51, 24\]",
        "nan.npy": "frame 7",
        "odd.bin": "101 bytes",
    }
    for name, words in expected.items():
        with pytest.raises(DataError, match=words):
            parse_actions(str(tmp_path / name), frames)
    with pytest.raises(DataError, match="not own, other, zero"):
        parse_actions(str(tmp_path / "missing.npy"), frames)


def test_a_run_whose_target_is_not_a_window_is_refused_naming_a_preset_that_is():
    trained, _ = fresh_model()
    with pytest.raises(ConfigError, match="compression"):
        check_whole_window(trained.config)


def test_imagine_writes_a_split_that_inspect_and_evaluate_read(runs_dir, tmp_path):
    run = trained_run(runs_dir, 2, *WHOLE_WINDOW)
    out = tmp_path / "imagined"
    args = ["--limit", "2", "--horizon", "2", "--maskgit-steps", "1", "--runs-dir", str(runs_dir)]
    gif = tmp_path / "rollout.gif"
    result = hwm("imagine", str(run), *args, "--json", "--out", str(out), "--gif", str(gif))
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    with Image.open(gif) as image:  # one frame a latent grid imagined, the size its layout has
        assert (image.n_frames, image.size) == (6, gif_size(2))
        image.seek(1)
        frame = np.asarray(image.convert("RGB"))
    # sample 0's second imagined grid, as --out wrote it (its context window first), drawn where it belongs
    (video,) = out.glob("video*")
    rollout = np.fromfile(video, dtype=np.int32).reshape(-1, 32, 32)[3 + 1]
    top, left = TITLE + LABEL, GAP + PANEL + GAP
    drawn = frame[top : top + PANEL : SCALE, left : left + PANEL : SCALE].astype(int)
    assert np.abs(drawn - false_colour(rollout)).max() <= 24  # within the GIF's 256-colour palette
    assert [w["horizon"] for w in report["per_window"]] == [1, 2]
    assert [w["frames_ahead"] for w in report["per_window"]] == [17, 34]
    assert all(w["reference_accuracy"] is not None for w in report["per_window"])  # a synthetic split
    again = hwm("imagine", str(run), *args, "--json")
    assert json.loads(again.stdout)["per_window"] == report["per_window"]  # the same tokens, the same figures
    inspected = hwm("data", "inspect", str(out))
    assert inspected.returncode == 0, inspected.stderr
    scored = hwm(
        "evaluate", str(run), "--data", str(out), "--maskgit-steps", "1", "--json", "--runs-dir", str(runs_dir)
    )
    assert scored.returncode == 0, scored.stderr
    assert json.loads(scored.stdout)["samples"] >= 2
    refused = hwm("imagine", str(run), *args, "--out", str(out))  # not empty now
    assert refused.returncode == 2 and len(refused.stderr.strip().splitlines()) == 1, refused.stderr
    bad = hwm("imagine", str(run), *args, "--actions", str(tmp_path / "none.npy"))
    assert bad.returncode == 2 and "not own, other, zero" in bad.stderr
