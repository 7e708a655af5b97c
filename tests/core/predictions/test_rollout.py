"""Rolling a whole-window run forward (`hwm-tui imagine`): evaluate's MaskGIT at horizon 1,
repeatable, its windows fed back, under actions from a file, and written as a split that
`data inspect` and evaluate read. The CLI (--json, --gif, refusals): tests/tui/cli/test_imagine.py.

One untrained tiny model for the module (random weights with opinions): what is tested is
what the rollout feeds the model and how it draws, not what a trained model imagines."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hwm_core.config.loading import load_config
from hwm_core.data import Split
from hwm_core.data.inspect import describe_split
from hwm_core.errors import ConfigError, DataError
from hwm_core.model.masked_hwm import token_cross_entropy
from hwm_core.predictions.actions import Actions, parse_actions, raw_actions
from hwm_core.predictions.controllability import paired_sample
from hwm_core.predictions.evaluate import EvalOptions, evaluate, factor_unigram
from hwm_core.predictions.imagined_split import write_imagined_split
from hwm_core.predictions.inference import open_samples, sample_batch, split_path
from hwm_core.predictions.predict import maskgit_sample
from hwm_core.predictions.rollout import (
    RolloutOptions,
    check_whole_window,
    imagine_next_window,
    open_rollout_samples,
    roll_out,
    span_frames,
)
from hwm_core.predictions.rollout_figures import score
from tests.helpers import fresh_model

# the compression preset's layout (3 grids of context, the next 3 the target) on the tiny model, halved
WHOLE_WINDOW = ("data.windows=2", "data.future_latents=3", "model.d_model=16")


@pytest.fixture(scope="module")
def trained():
    threads = torch.get_num_threads()
    model, session = fresh_model(*WHOLE_WINDOW)
    # One torch thread (prepare gave it every core), as conftest.py gives each parallel worker:
    # run alone (-n 0) on a busy 2-core box, two threads wait on each other, 14 times as long.
    torch.set_num_threads(1)
    torch.manual_seed(1)
    for p in model.model.parameters():  # a fresh model predicts nearly uniform codes: give it opinions
        p.data.normal_(0, 0.2)
    yield model
    session.close()
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def two_windows(trained):
    """Samples 0 and 1 rolled out 2 windows under their own states, each in a batch of its own
    (so a window imagined again alone is computed in the same shapes, bit for bit)."""
    samples = open_rollout_samples(trained, split_path(trained, None, "val"), horizon=2)
    options = RolloutOptions(horizon=2, maskgit_steps=1, batch_size=1)
    return samples, roll_out(trained, samples, [0, 1], Actions("own"), options)


def test_a_rollout_of_one_window_is_evaluates_maskgit_prediction_and_repeats(trained):
    path = split_path(trained, None, "val")
    rolled = open_rollout_samples(trained, path, horizon=1)
    # sampled (temperature 1), in batches of one: the tokens depend on each batch's seed
    options = RolloutOptions(horizon=1, batch_size=1, maskgit_steps=2, temperature=1.0, seed=5)
    first = roll_out(trained, rolled, [0, 1], Actions("own"), options)
    again = roll_out(trained, rolled, [0, 1], Actions("own"), options)
    samples = open_samples(trained, path)  # evaluate's: the context window and the target window
    for position, rollout in enumerate(first):
        ids, states = sample_batch(trained, samples, [position])
        # evaluate's draw of a batch: seeded seed + the position of the batch's first sample
        generated = maskgit_sample(trained, ids, states, steps=2, temperature=1.0, seed=5 + position)
        codes = trained.factors.factors_to_codes(generated).view(3, 32, 32).numpy()
        assert np.array_equal(rollout.imagined, codes)
        assert np.array_equal(rollout.imagined, again[position].imagined)
        assert np.array_equal(rollout.ce_nats, again[position].ce_nats)
        # the first grid's CE is evaluate's teacher-forced CE of the first target grid
        inputs = ids[:, :4].clone()
        inputs[:, 3] = torch.tensor(trained.factors.mask_ids())
        with torch.no_grad():
            ce, _ = token_cross_entropy(trained.model(inputs, states, 1), ids[:, 3])
        assert rollout.ce_nats[0] == pytest.approx(float(ce.double().mean()), rel=1e-6)
    assert first[0].context.shape == (3, 32, 32) and first[0].truth.shape == (3, 32, 32)
    assert not np.array_equal(first[0].imagined, first[1].imagined)


def test_a_longer_rollout_feeds_its_windows_back_under_the_actions_given(trained, two_windows):
    samples, own = two_windows
    rollout = own[0]
    assert rollout.imagined.shape == (6, 32, 32) and rollout.states.shape == (span_frames(trained.config, 2), 25)
    # the second window is imagined from the first imagined window, under that span's states
    second = imagine_next_window(trained, rollout.imagined[:3], rollout.states[17:], maskgit_steps=1)
    assert np.array_equal(second, rollout.imagined[3:])
    zero = roll_out(trained, samples, [0], Actions("zero"), RolloutOptions(horizon=2, maskgit_steps=1, batch_size=1))[0]
    assert not zero.states.any() and not np.array_equal(zero.imagined, rollout.imagined)
    other = raw_actions(Actions("other"), samples, 0)  # evaluate's pairing, over these spans
    assert np.array_equal(other, samples.raw_states(paired_sample(0, len(samples))))
    figures = score(own, hz=30, synthetic=True)
    assert [w["frames_ahead"] for w in figures["per_window"]] == [17, 34]
    assert [g["frames_ahead"] for g in figures["per_grid"]] == [1, 9, 17, 18, 26, 34]
    assert all(0 <= w["reference_agreement"] <= 1 for w in figures["per_window"])


def test_a_states_file_round_trips_and_a_bad_one_is_refused(tmp_path, trained, two_windows):
    frames = span_frames(trained.config, 2)
    states = np.random.default_rng(0).normal(size=(frames + 4, 25)).astype(np.float32)
    states.tofile(tmp_path / "states_0.bin")  # as a split holds them
    np.save(tmp_path / "states.npy", states)
    samples, _ = two_windows
    for name in ("states_0.bin", "states.npy"):
        read = parse_actions(str(tmp_path / name), frames)
        assert read.kind == "file" and np.array_equal(read.states, states[:frames])
        assert np.array_equal(raw_actions(read, samples, 1), states[:frames])  # every sample's actions
    np.save(tmp_path / "short.npy", states[:10])
    np.save(tmp_path / "wide.npy", np.zeros((frames, 24), dtype=np.float32))
    np.save(tmp_path / "flags.npy", np.zeros((frames, 25), dtype=bool))
    nan = states.copy()
    nan[7, 3] = np.nan
    np.save(tmp_path / "nan.npy", nan)
    (tmp_path / "odd.bin").write_bytes(b"\0" * 101)
    (tmp_path / "folder").mkdir()
    expected = {
        "short.npy": "holds 10 frames",
        "wide.npy": rf"shape \[{frames}, 24\]",
        "flags.npy": r"\(bool\)",
        "nan.npy": "frame 7",
        "odd.bin": "101 bytes",
        "folder": "cannot read",
        "missing.npy": "not own, other, zero",
    }
    for name, words in expected.items():
        with pytest.raises(DataError, match=words) as refused:
            parse_actions(str(tmp_path / name), frames)
        assert "\n" not in str(refused.value)


def test_a_run_whose_target_is_not_a_window_is_refused_naming_a_preset_that_is():
    for layout in (("data.windows=1", "data.future_latents=1"), ("data.windows=2", "data.future_latents=2")):
        with pytest.raises(ConfigError, match="compression") as refused:
            check_whole_window(load_config("cpu", list(layout)))
        assert "\n" not in str(refused.value)
    check_whole_window(load_config("compression"))


def test_the_imagined_split_passes_inspect_and_evaluate_reads_it(tmp_path, trained, two_windows):
    _, own = two_windows
    out = write_imagined_split(tmp_path / "imagined", own, hz=30, imagined_by={"actions": "own"})
    assert [p.name for p in tmp_path.iterdir()] == ["imagined"]  # no temporary folder left
    inspected = describe_split(out, windows=2)
    assert inspected["num_segments"] == 2 and inspected["num_frames"] == 2 * 51
    split = Split.open(out)
    video = np.asarray(split.shards[0].video).reshape(-1, 32, 32)
    assert np.array_equal(video[:9], np.concatenate([own[0].context, own[0].imagined]))
    assert np.array_equal(np.asarray(split.shards[0].states)[:51], own[0].states)
    with pytest.raises(DataError, match="not empty"):
        write_imagined_split(out, own, hz=30, imagined_by={})
    # evaluate reads it: 2 samples of 2 windows in each segment of 3 (context, imagined, imagined)
    samples = open_samples(trained, out)
    assert len(samples) == 4
    unigram = factor_unigram(Split.open(split_path(trained, None, "train")), trained.factors)
    result = evaluate(trained, samples, unigram, EvalOptions(limit=1, batch_size=1, maskgit_steps=1))
    assert result["samples"] == 1 and result["split"] == str(out)
    assert "states_shift_accuracy" not in result["baselines"]  # imagined tokens are not the generator's
