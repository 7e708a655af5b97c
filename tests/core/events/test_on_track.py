"""On track, behind, ahead: a run's loss against its preset's band, as every view folds it."""

from __future__ import annotations

import json

import pytest

from hwm_core.config.loading import load_config
from hwm_core.errors import ConfigError
from hwm_core.events.log import event_from_dict, event_to_json
from hwm_core.events.on_track import LossBand
from hwm_core.events.run_state import RunState
from hwm_core.events.types import StartEvent, StepEvent
from hwm_core.training.expected import expected_band

BAND = LossBand("synthetic", (0, 10, 20), (10.9, 9.0, 5.0), (11.3, 10.0, 6.0))


def start(step: int = 0, band: LossBand | None = BAND, resumed: bool = False) -> StartEvent:
    return StartEvent(
        run_id="r", run_dir="d", preset="cpu", device="cpu", start_step=step, max_steps=30, peak_lr=1e-3,
        warmup_steps=1, schedule="cosine", max_grad_norm=1.0, global_batch=4, world_size=1, num_parameters=1,
        tokens_per_sample=1, codebook_size=64000, resumed=resumed, expected=band.to_json() if band else None,
    )  # fmt: skip


def steps(first: int, losses: list[float]) -> list[StepEvent]:
    return [
        StepEvent(step=first + i, loss=loss, lr=1e-3, grad_norm_pre_clip=1.0, grad_norm_post_clip=1.0,
                  grad_max_abs=0.1, grad_min_abs=0.0, clipped=False, samples_per_s=1.0, tokens_per_s=1.0,
                  step_time_s=0.1, memory_bytes=0)
        for i, loss in enumerate(losses)
    ]  # fmt: skip


def through_the_log(events):
    """As a view that follows metrics.jsonl reads them."""
    return [event_from_dict(json.loads(event_to_json(e))) for e in events]


def test_each_band_step_is_judged_once_on_the_mean_of_the_last_losses():
    state = RunState()
    losses = [11.07] + [9.5] * 9 + [7.0] + [7.0] * 9 + [6.5]  # steps 1..21
    state.add_all(through_the_log([start(), *steps(1, losses)]))
    verdicts = state.on_track.verdicts
    assert [(v.step, v.at_step, v.word) for v in verdicts] == [(0, 1, "on track"), (10, 10, "on track"),
                                                               (20, 20, "behind")]  # fmt: skip
    assert verdicts[1].loss == (11.07 + 9 * 9.5) / 10  # steps 1..10
    assert verdicts[2].loss == 7.0
    assert state.progress.on_track == verdicts[-1] and state.totals.on_track == "behind at step 20"


def test_a_loss_below_the_band_is_ahead_and_a_run_without_a_band_is_never_judged():
    state = RunState()
    state.add_all([start(), *steps(1, [8.5] * 12)])
    assert [v.word for v in state.on_track.verdicts] == ["ahead", "ahead"]
    plain = RunState()
    plain.add_all([start(band=None), *steps(1, [10.0] * 12)])
    assert plain.on_track.verdicts == [] and plain.progress.on_track is None and plain.totals.on_track is None


def test_a_resume_keeps_the_verdicts_up_to_its_step_and_judges_on_from_there():
    state = RunState()
    state.add_all([start(), *steps(1, [11.0] + [9.5] * 14)])  # judged at 0 and 10, then stopped at 15
    state.add_all([start(12, resumed=True), *steps(13, [5.5] * 10)])  # resumed from step 12's checkpoint
    assert [(v.step, v.word) for v in state.on_track.verdicts] == [(0, "on track"), (10, "on track"),
                                                                   (20, "on track")]  # fmt: skip
    assert state.on_track.verdicts[-1].loss == 5.5  # only losses since the resume


def test_a_band_applies_only_to_the_data_it_was_measured_on():
    sets = ['expected.data="real"', "expected.steps=[0]", "expected.loss_low=[10.9]", "expected.loss_high=[11.3]"]
    config = load_config("cpu", sets)
    assert expected_band(config, {"synthetic": True}) is None
    band = expected_band(config, {"num_shards": 100})
    assert band is not None and band.steps == (0,) and band.data == "real"
    assert expected_band(load_config("cpu"), {"synthetic": True}) is not None  # the cpu preset's own band
    assert expected_band(load_config("12gb"), {"num_shards": 100}) is not None  # the seed's, on real data
    assert expected_band(load_config("12gb"), {"synthetic": True}) is None
    assert expected_band(load_config("80gb"), {"num_shards": 100}) is None  # a preset without a table


def test_a_band_applies_only_to_the_task_layout_it_was_measured_on():
    synthetic = {"synthetic": True}
    assert expected_band(load_config("cpu"), synthetic) is not None
    # the compression task's layout on the cpu preset: its band was measured on one frame from two
    assert expected_band(load_config("cpu", ["data.windows=2", "data.future_latents=3"]), synthetic) is None
    assert expected_band(load_config("cpu", ["data.future_latents=2"]), synthetic) is None
    assert expected_band(load_config("cpu", ["expected.layout=[]", "data.future_latents=2"]), synthetic) is not None
    with pytest.raises(ConfigError, match=r"expected.layout must be \[windows, future_latents\]"):
        load_config("cpu", ["expected.layout=[1]"])
