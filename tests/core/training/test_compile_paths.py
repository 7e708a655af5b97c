"""train.compile's GPU-only paths, driven on the CPU with a fake torch.compile: CUDA graphs'
persistent gradient buffers, the fallback window over compile and capture (out of memory
included), and the compiled state released between runs (issue 19, points 1, 6, 7)."""

from __future__ import annotations

import pytest
import torch

from hwm_core.events.bus import EventBus
from hwm_core.events.types import CompileEvent, StateEvent, StepEvent, WarningEvent
from hwm_core.runs.inbox import CommandInbox
from hwm_core.training.grad_health import grad_stats
from hwm_core.training.session import TrainRequest, prepare
from hwm_core.training.trainer import Trainer
from tests.helpers import tiny_sets, train_here


def train(overrides: list[str], steps: int):
    trainer, _, status, events = train_here(overrides, steps)
    assert status == "completed", [e for e in events if isinstance(e, StateEvent)]
    return trainer, events


def losses(events) -> dict[int, float]:
    return {e.step: e.loss for e in events if isinstance(e, StepEvent)}


class FakeCompile:
    """torch.compile that runs the function itself; `fail(call)` says what call n raises."""

    def __init__(self, fail=lambda call: None):
        self.calls, self.fail = 0, fail

    def __call__(self, fn, **kwargs):
        def compiled(*args, **kw):
            self.calls += 1
            error = self.fail(self.calls)
            if error is not None:
                raise error
            return fn(*args, **kw)

        return compiled


@pytest.fixture
def resets(monkeypatch):
    """How often the compiled state was released (torch._dynamo.reset)."""
    count = [0]
    real = torch._dynamo.reset

    def counted():
        count[0] += 1
        real()

    monkeypatch.setattr(torch._dynamo, "reset", counted)
    return count


def test_under_cuda_graphs_backward_accumulates_into_persistent_grad_buffers(monkeypatch, resets):
    monkeypatch.setattr(torch, "compile", FakeCompile())
    seen: list[set[int]] = []

    def watch(parameters, max_norm):
        seen.append({p.grad.data_ptr() for p in parameters})
        return grad_stats(parameters, max_norm)

    monkeypatch.setattr("hwm_core.training.trainer.grad_stats", watch)
    sets = ["train.batch_size=1", "train.grad_accum_steps=2"]
    trainer, graphs = train([*sets, "train.compile=reduce-overhead"], 4)
    assert all(p.grad is not None for p in trainer.parameters)  # zeroed in place, never set to None
    assert len(seen) == 4 and all(s == seen[0] for s in seen)  # the same buffers every step
    monkeypatch.setattr(torch, "compile", FakeCompile())
    _, eager = train([*sets, "train.compile=off"], 4)
    assert losses(graphs) == losses(eager)  # the same training, to the bit


@pytest.mark.parametrize(
    "error, says",
    [
        (RuntimeError("CUDA error: operation not permitted when stream is capturing"), "failed"),
        (torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"), "ran out of memory"),
    ],
)
def test_a_failure_while_capturing_in_step_two_goes_on_eager_with_the_graphs_released(monkeypatch, resets, error, says):
    # one micro-batch a step: compiled in call 1 (step 1), CUDA graphs recorded in call 2 (step 2)
    monkeypatch.setattr(torch, "compile", FakeCompile(lambda call: error if call == 2 else None))
    _, events = train(["train.compile=reduce-overhead"], 4)
    _, eager = train(["train.compile=off"], 4)
    assert losses(events) == losses(eager)  # step 2 replayed eager from the same batches
    compiled, failed = [e for e in events if isinstance(e, CompileEvent)]
    assert compiled.ok and compiled.step == 1 and not failed.ok and failed.step == 2
    [warning] = [e for e in events if isinstance(e, WarningEvent) and e.kind == "compile"]
    assert says in warning.message and "memory was released" in warning.message
    assert resets[0] >= 2  # at the fallback, and at the run's end


def test_an_out_of_memory_while_compiling_is_a_fallback_not_a_failed_run(monkeypatch, resets):
    oom = torch.OutOfMemoryError("CUDA out of memory while autotuning")
    monkeypatch.setattr(torch, "compile", FakeCompile(lambda call: oom if call == 1 else None))
    _, events = train(["train.compile=on"], 3)
    [failed] = [e for e in events if isinstance(e, CompileEvent)]
    assert not failed.ok and failed.step == 1 and sorted(losses(events)) == [1, 2, 3]


def test_after_the_window_an_error_is_the_runs_own(monkeypatch, resets):
    boom = RuntimeError("a real bug in step 3")
    monkeypatch.setattr(torch, "compile", FakeCompile(lambda call: boom if call == 3 else None))
    session = prepare(
        TrainRequest(preset="cpu", overrides=tiny_sets("eval.eval_steps=0", "train.compile=on"), max_steps=4),
        create_run=False,
    )
    trainer = Trainer(session, EventBus(None), CommandInbox())
    with pytest.raises(RuntimeError, match="a real bug"):
        trainer.run()
    assert trainer.status == "failed"


def test_a_compiled_run_releases_its_graphs_when_it_ends_and_an_eager_one_has_none(monkeypatch, resets):
    monkeypatch.setattr(torch, "compile", FakeCompile())
    train(["train.compile=on"], 2)
    assert resets[0] == 1  # the next run of a bench or sweep in this process starts clean
    train(["train.compile=off"], 2)
    assert resets[0] == 1
