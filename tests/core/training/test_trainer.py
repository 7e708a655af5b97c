"""The training loop: schedule, clipping figures, accumulation, skipped steps, determinism."""

from __future__ import annotations

import math

import pytest
import torch

import hwm_core.model.masked_hwm as model_module
import hwm_core.training.trainer as trainer_module
from hwm_core.config.schema import HealthConfig
from hwm_core.events.bus import EventBus
from hwm_core.events.types import StepEvent, WarningEvent
from hwm_core.runs.inbox import CommandInbox
from hwm_core.training.grad_health import grad_stats, judge
from hwm_core.training.schedule import lr_at
from hwm_core.training.session import TrainRequest, prepare
from hwm_core.training.trainer import Trainer
from tests.helpers import run_steps, tiny_sets


def reference_lr(step: int, peak: float, warmup: int, total: int) -> float:
    """transformers.get_cosine_schedule_with_warmup, num_cycles=0.5, written out."""
    if step < warmup:
        return peak * float(step) / float(max(1, warmup))
    progress = float(step - warmup) / float(max(1, total - warmup))
    return peak * max(0.0, 0.5 * (1.0 + math.cos(math.pi * 0.5 * 2.0 * progress)))


def test_lr_schedule_matches_the_standard_formula():
    kw = dict(peak_lr=5e-5, warmup_steps=500, max_steps=60000)
    assert lr_at(0, **kw) == 0.0
    assert lr_at(250, **kw) == pytest.approx(2.5e-5)
    assert lr_at(500, **kw) == pytest.approx(5e-5)
    assert lr_at(30250, **kw) == pytest.approx(2.5e-5)  # halfway through the cosine
    assert lr_at(60000, **kw) == pytest.approx(0.0, abs=1e-15)
    for step in range(0, 60001, 997):
        assert lr_at(step, **kw) == pytest.approx(reference_lr(step, 5e-5, 500, 60000), rel=1e-12, abs=1e-18)


def _small_model_with_grads(seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.GELU(), torch.nn.Linear(32, 4))
    model(torch.randn(8, 16)).pow(2).sum().mul(10).backward()
    return model


@pytest.mark.parametrize("max_norm", [0.5, 1e6])
def test_clipping_figures_equal_torchs_own(max_norm):
    ours = _small_model_with_grads(0)
    theirs = _small_model_with_grads(0)
    raw = [p.grad.clone() for p in theirs.parameters()]
    pre, post, max_abs, min_abs = grad_stats(list(ours.parameters()), max_norm).tolist()
    torch_pre = torch.nn.utils.clip_grad_norm_(theirs.parameters(), max_norm).item()
    torch_post = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in theirs.parameters()])).item()
    assert pre == pytest.approx(torch_pre, rel=1e-6)
    assert post == pytest.approx(torch_post, rel=1e-6)
    assert post == pytest.approx(min(pre, max_norm), rel=1e-5)
    assert max_abs == pytest.approx(max(g.abs().max().item() for g in raw))
    assert min_abs == pytest.approx(min(g.abs().min().item() for g in raw))
    for a, b in zip(ours.parameters(), theirs.parameters()):
        assert torch.allclose(a.grad, b.grad)


def test_health_verdicts():
    health = HealthConfig(instability_norm=100.0, vanishing_norm=0.001)
    assert judge(1.0, 5.0, health) is None
    assert judge(150.0, 5.0, health).kind == "instability"
    assert judge(0.0005, 5.0, health).kind == "vanishing"
    assert judge(float("nan"), 5.0, health).kind == "nonfinite"
    assert judge(1.0, float("inf"), health).kind == "nonfinite"
    assert "lower lr or check data" in judge(150.0, 5.0, health).message


def test_accumulation_4x1_equals_one_batch_of_4():
    one, _, ev_one = run_steps(["train.batch_size=4", "train.grad_accum_steps=1"], 2)
    four, _, ev_four = run_steps(["train.batch_size=1", "train.grad_accum_steps=4"], 2)
    loss_one = [e.loss for e in ev_one if isinstance(e, StepEvent)]
    loss_four = [e.loss for e in ev_four if isinstance(e, StepEvent)]
    assert loss_one == pytest.approx(loss_four, rel=1e-5)
    for (name, a), (_, b) in zip(one.model.named_parameters(), four.model.named_parameters()):
        assert torch.allclose(a, b, atol=1e-6, rtol=1e-4), name


def test_training_is_deterministic_on_cpu():
    _, _, a = run_steps([], 4)
    _, _, b = run_steps([], 4)
    assert [e.loss for e in a if isinstance(e, StepEvent)] == [e.loss for e in b if isinstance(e, StepEvent)]


def test_non_finite_step_is_skipped_and_weights_stay(monkeypatch):
    real_loss = model_module.masked_token_loss
    calls = {"n": 0}
    snapshots = {}

    def poisoned(*args):
        calls["n"] += 1
        per_sample, correct = real_loss(*args)
        if calls["n"] == 3:  # the third optimizer step (batch 2, one micro-batch a step)
            return per_sample * float("nan"), correct
        return per_sample, correct

    real_step = trainer_module.Trainer._train_step

    def spy(self, prefetcher):
        step = self.session.state.step + 1
        if step == 3:
            snapshots["before"] = {k: v.clone() for k, v in self.model.state_dict().items()}
            snapshots["opt_before"] = {
                k: {n: t.clone() for n, t in s.items()} for k, s in self.session.optimizer.state.items()
            }
        result = real_step(self, prefetcher)
        if step == 3:
            snapshots["after"] = {k: v.clone() for k, v in self.model.state_dict().items()}
            snapshots["opt_after"] = {
                k: {n: t.clone() for n, t in s.items()} for k, s in self.session.optimizer.state.items()
            }
        return result

    monkeypatch.setattr(model_module, "masked_token_loss", poisoned)
    monkeypatch.setattr(trainer_module.Trainer, "_train_step", spy)
    _, status, events = run_steps([], 5)
    assert status == "completed"
    for name, before in snapshots["before"].items():
        assert torch.equal(before, snapshots["after"][name]), name
    for key, state in snapshots["opt_before"].items():
        for name, value in state.items():
            assert torch.equal(value, snapshots["opt_after"][key][name])
    steps = {e.step: e for e in events if isinstance(e, StepEvent)}
    assert steps[3].skipped and not steps[2].skipped and not steps[4].skipped
    warnings = [e for e in events if isinstance(e, WarningEvent)]
    assert [(w.step, w.kind) for w in warnings if w.kind == "nonfinite"] == [(3, "nonfinite")]


def test_repeated_nonfinite_steps_stop_the_run_as_diverged_or_failed_without_the_guard(monkeypatch):
    real_loss = model_module.masked_token_loss

    def always_nan(*args):
        per_sample, correct = real_loss(*args)
        return per_sample * float("nan"), correct

    monkeypatch.setattr(model_module, "masked_token_loss", always_nan)
    _, status, events = run_steps(["train.max_nonfinite_steps=3"], 10)
    assert status == "diverged"
    assert max(e.step for e in events if isinstance(e, StepEvent)) == 3
    [divergence] = [e for e in events if isinstance(e, WarningEvent) and e.kind == "divergence"]
    assert "[nonfinite]" in divergence.message and "3 non-finite steps in a row" in divergence.message
    _, status, _ = run_steps(["train.max_nonfinite_steps=3", "health.divergence_guard=false"], 10)
    assert status == "failed"  # as before the guard: the same rule, without its verdict


def test_pause_and_resume_are_always_answered():
    """p pressed twice quickly can reach the trainer as a lone resume; it must still
    say where it stands, or the dashboard would show 'resuming…' for ever."""
    from hwm_core.events.types import StateEvent
    from hwm_core.runs.inbox import PAUSE, RESUME, decode_commands, encode_commands

    assert decode_commands(encode_commands([PAUSE, RESUME])) == [RESUME]
    assert decode_commands(encode_commands(["checkpoint", RESUME, PAUSE, "stop"])) == ["checkpoint", PAUSE, "stop"]
    session = prepare(
        TrainRequest(preset="cpu", overrides=tiny_sets("eval.eval_steps=0", "train.max_steps=2")), create_run=False
    )
    bus = EventBus(None)
    events = bus.subscribe()
    inbox = CommandInbox()
    inbox.send(RESUME)  # while running
    assert Trainer(session, bus, inbox).run() == "completed"
    states = []
    while not events.empty():
        event = events.get()
        if isinstance(event, StateEvent):
            states.append(event.state)
    assert states[:2] == ["running", "running"]


@pytest.mark.parametrize("world_size", [1, 2, 3])
@pytest.mark.parametrize("accum", [1, 2, 3])
def test_micro_batches_of_all_ranks_partition_the_global_batch(world_size, accum):
    from hwm_core.data.batches import micro_batch_samples

    batch = 2
    held = [
        i
        for rank in range(world_size)
        for micro in range(accum)
        for i in micro_batch_samples(micro, rank, world_size, batch)
    ]
    assert sorted(held) == list(range(batch * accum * world_size))


def test_validation_masks_but_does_not_corrupt_the_context():
    session = prepare(TrainRequest(preset="cpu", overrides=tiny_sets("masking.max_corrupt_rate=0.5")), create_run=False)
    try:
        builder, factors = session.builder, session.builder.factors
        batch = builder.val_batch(list(range(4)))
        masked = (batch.factor_ids == torch.tensor(factors.mask_ids())).all(dim=-1)
        assert torch.equal(masked[:, -1].flatten(1), batch.target_mask)  # the target frame's masked tokens
        assert not masked[:, :-1].any()
        truth = torch.stack(
            [
                torch.from_numpy(
                    builder.val_set.get(int(builder.val_order[g]))[0].reshape(batch.factor_ids.shape[1], -1)
                )
                for g in range(4)
            ]
        )
        seen = factors.codes_to_factors(truth)
        assert torch.equal(batch.factor_ids[~masked], seen[~masked])  # every unmasked token is the true one
        train = builder.train_batch(1, 0, list(range(4)))
        assert train.target_mask.any()
    finally:
        session.close()


def test_weight_decay_applies_to_linear_weights_only():
    session = prepare(TrainRequest(preset="cpu", overrides=tiny_sets()), create_run=False)
    try:
        decayed = {id(p) for g in session.optimizer.param_groups if g["weight_decay"] > 0 for p in g["params"]}
        for module_name, module in session.model.named_modules():
            for name, p in module.named_parameters(recurse=False):
                expected = isinstance(module, torch.nn.Linear) and name == "weight"
                assert (id(p) in decayed) == expected, f"{module_name}.{name}"
        state_weight = session.model.state_embedding[0].weight
        assert id(state_weight) in decayed  # the state MLP is a weight matrix like any other
    finally:
        session.close()


def test_a_run_whose_final_checkpoint_fails_is_not_completed(tmp_path, monkeypatch):
    import hwm_core.runs.checkpoint as ckpt

    real_save = ckpt.save_checkpoint

    def disk_full_at_the_end(directory, step, *args, **kwargs):
        if step == 4:
            raise OSError(28, "No space left on device")
        return real_save(directory, step, *args, **kwargs)

    monkeypatch.setattr(ckpt, "save_checkpoint", disk_full_at_the_end)
    session = prepare(
        TrainRequest(
            preset="cpu",
            runs_dir=str(tmp_path / "runs"),
            overrides=tiny_sets("eval.eval_steps=0", "checkpoint.save_steps=2", "train.max_steps=4"),
        )
    )
    bus = EventBus(session.folder.metrics)
    trainer = Trainer(session, bus, CommandInbox(session.folder.path))
    try:
        assert trainer.run() == "failed"
    finally:
        bus.close()
        session.close()
    assert "could not be written" in trainer.error and "continues from step 2" in trainer.error
    assert session.folder.read_meta()["status"] == "failed"


def test_every_parameter_gets_a_gradient_with_or_without_state_conditioning():
    """DDP refuses parameters that get no gradient: an unused state MLP must not exist."""
    from hwm_core.model.masked_hwm import masked_token_loss

    for condition in ("true", "false"):
        session = prepare(
            TrainRequest(preset="cpu", overrides=tiny_sets(f"model.condition_on_states={condition}")), create_run=False
        )
        try:
            batch = session.builder.train_batch(1, 0, [0, 1])
            logits = session.model(batch.factor_ids, batch.states, batch.target_frames)
            masked_token_loss(logits, batch.targets, batch.target_mask)[0].sum().backward()
            missing = [n for n, p in session.model.named_parameters() if p.grad is None]
            assert missing == [], condition
            assert (session.model.state_embedding is None) == (condition == "false")
        finally:
            session.close()
