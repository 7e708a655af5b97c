"""A session's resumable state goes through one pair, `state_dict` / `load_state_dict`,
and the bench's step count reaches the config before it is checked (issue 27, item 4)."""

from __future__ import annotations

import json

import torch

import hwm_core.training.bench as bench_module
from hwm_core.runs import checkpoint as ckpt
from hwm_core.training.bench import run_bench
from hwm_core.training.session import TrainRequest, prepare
from tests.helpers import run_steps, tiny_sets


def test_a_checkpoint_written_from_state_dict_loads_back_into_a_fresh_session(tmp_path):
    trained, status, _ = run_steps([], 2)
    assert status == "completed"
    trained.state.consecutive_nonfinite = 1  # so the count is seen to travel too
    saved = trained.state_dict()
    path, _ = ckpt.save_checkpoint(tmp_path, saved.step, saved.tensors, saved.meta)

    fresh = prepare(
        TrainRequest(preset="cpu", overrides=tiny_sets("eval.eval_steps=0", "train.max_steps=2")), create_run=False
    )
    fresh.load_state_dict(ckpt.load_checkpoint(path))
    assert (fresh.state.step, fresh.state.samples_seen, fresh.state.consecutive_nonfinite) == (
        trained.state.step,
        trained.state.samples_seen,
        1,
    )
    assert fresh.resumed_from == trained.state.step == 2
    again = fresh.state_dict()
    assert again.step == saved.step
    assert sorted(again.tensors) == sorted(saved.tensors)
    for name, tensor in saved.tensors.items():
        assert torch.equal(again.tensors[name].cpu(), tensor.cpu()), name
    # The header round trip is exact (through JSON, as the file holds it): RNGs included.
    assert json.loads(json.dumps(again.meta)) == json.loads(json.dumps(saved.meta))


def test_the_bench_trains_with_the_config_it_checked(monkeypatch):
    prepared = []
    real_prepare = bench_module.prepare

    def watched(request, **kwargs):
        session = real_prepare(request, **kwargs)
        prepared.append((session, json.dumps(session.config.to_dict(), sort_keys=True)))
        return session

    monkeypatch.setattr(bench_module, "prepare", watched)
    result = run_bench("cpu", steps=1, warmup=1, overrides=tiny_sets("train.warmup_steps=5"))
    assert result.outcome == "ok" and result.steps == 1
    [(session, checked)] = prepared
    # warmup + steps, the preset's warm-up shortened to fit: given as overrides, checked with them
    assert (session.config.train.max_steps, session.config.train.warmup_steps) == (2, 2)
    assert json.dumps(session.config.to_dict(), sort_keys=True) == checked  # never changed afterwards
