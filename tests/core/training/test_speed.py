"""What makes training fast on a GPU, checked where CI can: on the CPU.

Shape-stable steps, the loss they compute, torch.compile (compiled vs eager, and
checkpoints across the two), the automatic micro-batch, the memory limit, and
the GPU health reader when there is no GPU to read."""

from __future__ import annotations

import shutil
import sys

import pytest
import torch
import torch.nn.functional as F

import hwm_core.training.trainer as trainer_module
from hwm_core.config.loading import load_config
from hwm_core.errors import ConfigError
from hwm_core.events.bus import EventBus
from hwm_core.events.run_state import RunState
from hwm_core.events.types import CompileEvent, StateEvent, StepEvent
from hwm_core.model.masked_hwm import masked_token_loss
from hwm_core.runs.checkpoint import list_checkpoints, load_checkpoint
from hwm_core.runs.inbox import CommandInbox
from hwm_core.runtime.gpu_health import GpuSampler
from hwm_core.training.micro_batch import choose_micro_batch, resolve_auto_batch
from hwm_core.training.session import TrainRequest, prepare
from hwm_core.training.trainer import Trainer
from tests.helpers import FakeNvml, only_run, read_metrics, set_args, tiny_sets, train_cli, train_here


def train(overrides: list[str], steps: int, runs_dir=None, resume: str | None = None):
    _, session, status, events = train_here(overrides, steps, runs_dir=runs_dir, resume=resume)
    assert status == "completed", [e for e in events if isinstance(e, StateEvent)]
    return session, events


def losses(events) -> dict[int, float]:
    return {e.step: e.loss for e in events if isinstance(e, StepEvent)}


def test_every_micro_batch_of_a_run_has_the_same_shapes():
    session = prepare(
        TrainRequest(preset="cpu", overrides=tiny_sets("data.windows=2", "data.future_latents=2")), create_run=False
    )
    try:
        shapes = {
            tuple((t.shape, t.dtype) for t in session.builder.train_batch(step, 2 * step, [0, 1]).tensors())
            for step in range(1, 40)
        }  # 39 different mask ratios and corruption rates
        assert len(shapes) == 1
        (factor_ids, _), (states, _), (targets, _), (mask, _) = shapes.pop()
        assert factor_ids == (2, 6, 1024, 3) and targets == (2, 2048, 3) and mask == (2, 2048)
    finally:
        session.close()


def test_the_loss_of_a_step_is_the_per_sample_mean_over_masked_tokens_as_before():
    """Today's definition, written out the old way: gather the masked target tokens,
    sum the factors' cross-entropies, average each sample's own tokens."""
    session = prepare(TrainRequest(preset="cpu", overrides=tiny_sets("train.batch_size=3")), create_run=False)
    try:
        batch = session.builder.train_batch(7, 21, [0, 1, 2])
        torch.manual_seed(1)
        for p in session.model.heads.parameters():  # logits far from uniform, so errors would show
            p.data.normal_(0, 0.5)
        with torch.no_grad():
            logits = session.model(batch.factor_ids, batch.states, batch.target_frames)
            per_sample, _ = masked_token_loss(logits, batch.targets, batch.target_mask)
        expected = []
        for b in range(batch.num_samples):
            masked = batch.target_mask[b].nonzero().squeeze(1)
            ce = sum(
                F.cross_entropy(
                    factor[b].index_select(0, masked).float(), batch.targets[b, masked, f], reduction="none"
                )
                for f, factor in enumerate(logits)
            )
            expected.append(ce.mean())
        assert 0 < batch.target_mask.float().mean() < 1  # some target tokens are not scored
        assert torch.allclose(per_sample, torch.stack(expected), rtol=1e-6, atol=1e-6)
    finally:
        session.close()


def _compile_unavailable() -> str | None:
    if not any(shutil.which(cc) for cc in ("cc", "gcc", "clang")):
        return "torch.compile on the CPU needs a C compiler"
    return None


@pytest.mark.skipif(_compile_unavailable() is not None, reason=_compile_unavailable() or "")
def test_compiled_and_eager_train_alike_and_load_each_others_checkpoints(tmp_path):
    eager_runs, compiled_runs = tmp_path / "eager", tmp_path / "compiled"
    # 20 steps each: compiled vs eager
    _, eager = train(["train.compile=off", "checkpoint.save_steps=10"], 20, eager_runs)
    _, compiled = train(["train.compile=on", "checkpoint.save_steps=10"], 20, compiled_runs)
    a, b = losses(eager), losses(compiled)
    assert sorted(a) == sorted(b) == list(range(1, 21))
    assert all(abs(a[s] - b[s]) <= 1e-3 * abs(a[s]) for s in a), (a, b)
    assert any(isinstance(e, StateEvent) and e.state == "compiling" for e in compiled)
    [done] = [e for e in compiled if isinstance(e, CompileEvent)]
    assert done.ok and done.seconds > 0 and done.step == 1
    assert not [e for e in eager if isinstance(e, CompileEvent)]

    # the checkpoints hold the model's own names, whichever way it ran
    for runs in (eager_runs, compiled_runs):
        checkpoint = load_checkpoint(list_checkpoints(only_run(runs) / "checkpoints")[0][1])
        assert not [k for k in checkpoint.tensors if "_orig_mod" in k]
    # each resumes the other way: a compiled run eager, an eager run compiled
    eager_run, compiled_run = only_run(eager_runs).name, only_run(compiled_runs).name
    _, eager_then_compiled = train(["train.compile=on"], 30, eager_runs, resume=eager_run)
    _, compiled_then_eager = train(["train.compile=off"], 30, compiled_runs, resume=compiled_run)
    assert sorted(losses(eager_then_compiled)) == sorted(losses(compiled_then_eager)) == list(range(21, 31))
    assert any(isinstance(e, CompileEvent) and e.ok for e in eager_then_compiled)
    # a compiled run resumed compiled continues exactly (a constant lr: max_steps moves the cosine)
    steady = ["train.compile=on", "checkpoint.save_steps=10", "train.schedule=constant"]
    _, straight = train(steady, 30, tmp_path / "straight")
    again = tmp_path / "again"
    train(steady, 20, again)
    _, resumed = train([], 30, again, resume=only_run(again).name)
    after = {s: loss for s, loss in losses(straight).items() if s > 20}
    # as exact as two compiled runs are to each other (inductor's parallel CPU reductions
    # differ in the last bit now and then); an eager resume is bit for bit (test_resume)
    assert sorted(after) == sorted(losses(resumed))
    assert all(abs(after[s] - losses(resumed)[s]) <= 1e-6 * after[s] for s in after)


def test_a_compile_failure_falls_back_to_eager_with_one_warning(monkeypatch):
    def broken_compile(fn, **kwargs):
        def compiled(*args, **kw):
            raise RuntimeError("inductor could not build this graph\nlong backtrace")

        return compiled

    monkeypatch.setattr(torch, "compile", broken_compile)
    _, events = train(["train.compile=on"], 3)
    _, eager = train(["train.compile=off"], 3)
    assert losses(events) == losses(eager)  # the first step replayed eager, from the same batches
    [failed] = [e for e in events if isinstance(e, CompileEvent)]
    assert not failed.ok and "inductor could not build this graph" in failed.message
    warnings = [e for e in events if getattr(e, "kind", None) == "compile"]
    assert len(warnings) == 1 and "training goes on eager" in warnings[0].message


def test_auto_micro_batch_takes_the_largest_divisor_that_fits():
    assert choose_micro_batch(16, lambda m: m <= 6) == 4
    assert choose_micro_batch(12, lambda m: m <= 6) == 6
    assert choose_micro_batch(16, lambda m: False) is None
    tried = []
    config = load_config("12gb", ["train.batch_size=auto"])
    assert config.train.effective_batch == 16  # the preset's 4 x 4 is kept
    notices: list[str] = []
    split = resolve_auto_batch(
        config, lambda m: tried.append(m) or m <= 8, agree=lambda m: m, notices=notices, device_name="a fake 12 GB GPU"
    )
    assert tried == [1, 2, 4, 8, 16]  # from the smallest up, stopping at the first that does not fit
    assert (split.micro_batch, split.grad_accum_steps) == (8, 2)
    assert config.train.batch_size == "auto"  # what the user asked for stays as asked
    assert "micro-batch 8 x 2" in notices[0]
    none_fit = load_config("12gb", ["train.batch_size=auto"])
    with pytest.raises(ConfigError, match="not even a micro-batch of 1 fits"):
        resolve_auto_batch(none_fit, lambda m: False, agree=lambda m: m, notices=[], device_name="gpu")
    with pytest.raises(ConfigError, match="needs train.effective_batch"):
        load_config("12gb", ["train.batch_size=auto", "train.effective_batch=0"])


def test_auto_on_the_cpu_keeps_the_split_and_writes_numbers_to_config_toml(tmp_path):
    session = prepare(
        TrainRequest(
            preset="cpu",
            runs_dir=str(tmp_path),
            overrides=tiny_sets("train.batch_size=2", "train.grad_accum_steps=3", "train.batch_size=auto"),
        )
    )
    try:
        assert (session.config.train.batch_size, session.config.train.grad_accum_steps) == (2, 3)
        written = session.folder.config_toml.read_text()
        assert "batch_size = 2\n" in written and "effective_batch = 6\n" in written and "auto" not in written
        assert any("batch_size = auto" in n for n in session.notices)
    finally:
        session.close()


def test_memory_limit_and_oom_are_one_line(tmp_path, monkeypatch):
    result = train_cli(tmp_path, "--memory-limit", "8")
    assert result.returncode == 2 and "caps CUDA memory" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and not list(tmp_path.iterdir())

    def out_of_memory(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(trainer_module, "forward_loss", out_of_memory)
    session = prepare(TrainRequest(preset="cpu", runs_dir=str(tmp_path), overrides=tiny_sets("train.compile=off")))
    bus = EventBus(session.folder.metrics)
    trainer = Trainer(session, bus, CommandInbox(session.folder.path))
    assert trainer.run() == "failed"
    bus.close()
    session.close()
    assert trainer.error.startswith("out of GPU memory at step 1: lower train.batch_size")
    assert session.folder.read_meta()["status"] == "failed"


def test_gpu_health_is_read_through_nvml_and_shown(monkeypatch):
    from hwm_tui.widgets.status_bar import gpu_line

    published = []
    sampler = GpuSampler(FakeNvml(), [0], published.append, step=lambda: 12, interval_s=0.01)
    event = sampler.sample()
    assert (event.step, event.utilization, event.power_w, event.temperature_c) == (12, [97.0], [412.0], [61.0])
    assert event.memory_used == [10 * 2**30] and event.memory_total == [80 * 2**30]
    assert gpu_line(event).plain == "GPU0 97% · 10.0/80 GiB · 412 W · 61°C"
    run = RunState()
    run.add(event)
    run.add(event)
    assert run.progress.gpu is event and run.gpu.samples == 2 and run.gpu.mean_utilization == 97.0


def test_without_nvml_or_an_nvidia_gpu_nothing_is_read_and_nothing_fails(monkeypatch, runs_dir):
    device = torch.device("cuda", 0)
    # this machine has no NVIDIA driver: NVML's library is not found
    assert GpuSampler.start_for(device, lambda e: None, lambda: 0) is None
    monkeypatch.setitem(sys.modules, "pynvml", None)  # nvidia-ml-py not installed at all
    assert GpuSampler.start_for(device, lambda e: None, lambda: 0) is None
    assert GpuSampler.start_for(torch.device("cpu"), lambda e: None, lambda: 0) is None
    result = train_cli(runs_dir, "--max-steps", "2", *set_args(["eval.eval_steps=0"]))
    assert result.returncode == 0, result.stderr
    metrics = read_metrics(only_run(runs_dir))
    assert not [m for m in metrics if m["type"] == "gpu"] and "gpu" not in result.stdout.lower()
