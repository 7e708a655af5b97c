"""Controllability in evaluate: the states pairing, the generator's reference predictor,
and a model that ignores its states losing nothing under another sample's."""

from __future__ import annotations

import numpy as np
import pytest

from hwm_core.data import Split
from hwm_core.data.split import ANGULAR_VELOCITY_DIM, FRAMES_PER_WINDOW, LINEAR_VELOCITY_DIM, STATE_DIM
from hwm_core.data.synth import shifted_view, view_shifts
from hwm_core.predictions.controllability import paired_sample
from hwm_core.predictions.evaluate import EvalOptions, deterministic, evaluate, factor_unigram
from hwm_core.predictions.inference import open_samples, split_path
from tests.core.predictions.test_evaluate import fresh_model


@pytest.mark.parametrize("count", [2, 3, 7, 231, 1000])
def test_the_states_pairing_never_pairs_a_sample_with_itself_and_lends_every_sample_once(count):
    partners = [paired_sample(i, count) for i in range(count)]
    assert all(p != i for i, p in enumerate(partners))
    assert sorted(partners) == list(range(count))  # each sample's states lent exactly once
    assert all(min(abs(p - i), count - abs(p - i)) >= count // 2 - 1 for i, p in enumerate(partners))
    assert partners == [paired_sample(i, count) for i in range(count)]  # the same every time


def test_a_split_of_one_sample_has_no_partner():
    with pytest.raises(ValueError, match="no other sample"):
        paired_sample(0, 1)


def test_the_reference_predictor_is_exact_on_a_view_whose_shift_is_known():
    """A world, a view of it, and states whose velocities move the camera by (2, -1) tokens
    over the last latent frame (8 frames): the view moved by the shift the states encode is
    the new view, everywhere but the edge that entered."""
    rng = np.random.default_rng(0)
    world = rng.integers(0, 64000, size=(64, 64))
    states = np.zeros((FRAMES_PER_WINDOW, STATE_DIM), dtype=np.float32)
    states[9:17, LINEAR_VELOCITY_DIM] = 0.25  # frames 9..16 make latent frame 2: 8 x 0.25 = 2 rows
    states[9:17, ANGULAR_VELOCITY_DIM] = -0.125  # 8 x -0.125 = -1 column
    shifts = view_shifts(states)
    assert shifts.tolist() == [[0, 0], [0, 0], [2, -1]]
    before = world[10:42, 20:52]
    after = world[12:44, 19:51]
    predicted = shifted_view(before, shifts[2])
    known = predicted >= 0
    assert np.array_equal(predicted[known], after[known])
    assert (~known).sum() == 2 * 32 + 32 - 2  # two rows and one column entered


def test_a_model_that_ignores_its_states_has_zero_controllability_the_same_twice():
    trained, session = fresh_model("model.condition_on_states=false")
    val = open_samples(trained, split_path(trained, None, "val"))
    unigram = factor_unigram(Split.open(split_path(trained, None, "train")), trained.factors)
    options = EvalOptions(limit=6, batch_size=4, maskgit_steps=1)
    first, second = evaluate(trained, val, unigram, options), evaluate(trained, val, unigram, options)
    control = first["controllability"]
    assert control["delta_token_accuracy"] == 0.0 and control["delta_ce_nats"] == 0.0
    assert control["other_states_ce_nats"] == first["teacher_forced"]["ce_nats"]
    assert deterministic(first) == deterministic(second)
    # the synthetic split's reference line, beside copy-last
    assert 0 < first["baselines"]["copy_last_accuracy"] < first["baselines"]["states_shift_accuracy"] <= 1
    session.close()


def test_a_model_that_reads_its_states_is_moved_by_other_states():
    trained, session = fresh_model("model.state_conditioning=film")
    for block in trained.model.block_list:  # FiLM starts as the identity: give it weights
        assert block.film is not None
        block.film.weight.data.normal_(0, 0.5)
    val = open_samples(trained, split_path(trained, None, "val"))
    unigram = factor_unigram(Split.open(split_path(trained, None, "train")), trained.factors)
    result = evaluate(trained, val, unigram, EvalOptions(limit=6, batch_size=4, maskgit_steps=1))
    assert result["controllability"]["delta_ce_nats"] != 0.0
    session.close()
