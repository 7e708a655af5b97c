"""GPU-only paths of the runtime, checked on the CPU with fakes (issue 19, points 3, 4, 5,
8, 9): the auto probe's order, its errors and its compiled step; the fused minimum |g|;
the training thread's CUDA device; TF32; NVML fields read one by one; each rank's CUDA
RNG state in a checkpoint."""

from __future__ import annotations

import math
import types

import pytest
import torch

import hwm_core.training.runner as runner_module
from hwm_core.events.log import event_to_json, parse_line
from hwm_core.events.run_state import RunState
from hwm_core.model.masked_hwm import forward_loss
from hwm_core.runs.checkpoint_contents import cuda_rng_tensors, own_cuda_rng
from hwm_core.runtime.device import enable_tf32, tf32_enabled
from hwm_core.runtime.failures import does_not_fit
from hwm_core.runtime.gpu_health import GpuSampler
from hwm_core.training.compile import CompiledStep
from hwm_core.training.grad_health import grad_stats, min_abs_value
from hwm_core.training.micro_batch import choose_micro_batch, cuda_memory_probe
from hwm_core.training.runner import TrainingRunner
from hwm_core.training.session import TrainRequest, _try_micro_batch, prepare
from tests.helpers import FakeNvml, tiny_sets


def test_the_probe_tries_small_sizes_first_and_keeps_the_largest_that_fits():
    tried = []
    assert choose_micro_batch(16, lambda m: tried.append(m) or m <= 4) == 4
    assert tried == [1, 2, 4, 8]  # 8 did not fit: 16 is not tried
    assert choose_micro_batch(12, lambda m: m <= 6) == 6
    assert choose_micro_batch(16, lambda m: False) is None


@pytest.fixture
def fake_cuda(monkeypatch):
    for name in ("empty_cache", "reset_peak_memory_stats", "synchronize"):
        monkeypatch.setattr(torch.cuda, name, lambda *a, **k: None)
    monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda *a, **k: 2**30)


@pytest.mark.parametrize(
    "message",
    [
        "CUDA error: invalid configuration argument",
        "CUDA error: CUBLAS_STATUS_ALLOC_FAILED when calling `cublasCreate(handle)`",
        "CUDA out of memory. Tried to allocate 1.00 GiB",
    ],
)
def test_a_launch_error_or_out_of_memory_in_the_probe_is_does_not_fit(fake_cuda, message):
    def try_step(m):
        raise RuntimeError(message)

    fits = cuda_memory_probe(try_step, torch.device("cuda", 0), 0, 8 * 2**30)
    assert fits(64) is False
    wrapped = RuntimeError("backend compiler failed")
    wrapped.__cause__ = RuntimeError(message)
    assert does_not_fit(wrapped)  # as inductor wraps it


def test_any_other_error_in_the_probe_is_raised(fake_cuda):
    def try_step(m):
        raise RuntimeError("shape mismatch: a bug")

    fits = cuda_memory_probe(try_step, torch.device("cuda", 0), 0, 8 * 2**30)
    with pytest.raises(RuntimeError, match="a bug"):
        fits(1)
    assert cuda_memory_probe(lambda m: None, torch.device("cuda", 0), 2**30, 8 * 2**30)(1) is True


class CountingCompile:
    def __init__(self, fail_first: bool = False):
        self.calls, self.fail_first = 0, fail_first

    def __call__(self, fn, **kwargs):
        def compiled(*args, **kw):
            self.calls += 1
            if self.fail_first:
                raise RuntimeError("inductor: no C compiler")
            return fn(*args, **kw)

        return compiled


@pytest.mark.parametrize("setting, calls", [("on", 1), ("reduce-overhead", 3)])
def test_the_probe_runs_the_step_training_runs_and_leaves_no_trace(monkeypatch, setting, calls):
    fake = CountingCompile()
    monkeypatch.setattr(torch, "compile", fake)
    session = prepare(TrainRequest(preset="cpu", overrides=tiny_sets()), create_run=False)
    try:
        rng = torch.get_rng_state()
        step = CompiledStep(forward_loss, setting)
        _try_micro_batch(step, session.model, session.builder, session.config, session.device, 2)
        # under CUDA graphs: warm-up, record, replay, so the graph pool is in the peak
        assert fake.calls == calls
        assert all(p.grad is None for p in session.model.parameters()) and torch.equal(torch.get_rng_state(), rng)
    finally:
        session.close()


def test_a_compiler_error_in_the_probe_goes_on_eager_as_training_will(monkeypatch):
    monkeypatch.setattr(torch, "compile", CountingCompile(fail_first=True))
    session = prepare(TrainRequest(preset="cpu", overrides=tiny_sets()), create_run=False)
    try:
        step = CompiledStep(forward_loss, "on")
        _try_micro_batch(step, session.model, session.builder, session.config, session.device, 2)
        assert not step.active and "no C compiler" in (step.error or "")
    finally:
        session.close()


def test_the_fused_minimum_abs_gradient_equals_the_per_parameter_one():
    torch.manual_seed(0)
    grads = [torch.randn(5, 7), torch.randn(3) * 1e-4, torch.tensor([0.3, -2e-9, 4.0]), torch.randn(2, 2, 2)]
    old = torch.stack(torch._foreach_norm(grads, float("-inf"))).min()
    assert torch.equal(min_abs_value(grads), old)
    params = [torch.nn.Parameter(torch.zeros_like(g)) for g in grads]
    for p, g in zip(params, grads):
        p.grad = g.clone()
    assert grad_stats(params, 1.0)[3].item() == pytest.approx(2e-9, rel=1e-6)


def test_the_training_thread_makes_the_runs_gpu_its_current_device(monkeypatch):
    bound = []
    where = runner_module.threading.current_thread
    monkeypatch.setattr(torch.cuda, "set_device", lambda d: bound.append((where().name, d)))

    class FakeTrainer:
        def __init__(self, *args):
            pass

        def run(self):
            return "completed"

    monkeypatch.setattr(runner_module, "Trainer", FakeTrainer)
    no_mirrors = types.SimpleNamespace(log=types.SimpleNamespace(mirrors=[]))
    session = types.SimpleNamespace(config=no_mirrors, folder=None, device=torch.device("cuda", 3), close=lambda: None)
    runner = TrainingRunner(session).start()  # type: ignore[arg-type]
    assert runner.join(10) and runner.status == "completed"
    assert bound == [("hwm-trainer", torch.device("cuda", 3))]  # rank 3's thread on GPU 3, not GPU 0


def test_tf32_is_enabled_for_fp32_matmuls_on_cuda():
    before = torch.get_float32_matmul_precision()
    try:
        torch.set_float32_matmul_precision("highest")
        assert not tf32_enabled()
        enable_tf32()
        assert tf32_enabled() and torch.backends.cuda.matmul.allow_tf32
        torch.get_float32_matmul_precision()  # legacy and new flags agree: torch (and inductor) can read them
    finally:
        torch.set_float32_matmul_precision(before)


class NotSupported(Exception):
    pass


@pytest.mark.parametrize(
    "broken",
    ["nvmlDeviceGetMemoryInfo", "nvmlDeviceGetUtilizationRates", "nvmlDeviceGetPowerUsage", "nvmlDeviceGetTemperature"],
)
def test_a_field_nvml_does_not_report_leaves_the_others(broken):
    nvml = FakeNvml()

    def refuse(*args):
        raise NotSupported("NVML_ERROR_NOT_SUPPORTED")

    setattr(nvml, broken, refuse)
    event = GpuSampler(nvml, [0], lambda e: None, step=lambda: 5).sample()
    fields = {
        "nvmlDeviceGetMemoryInfo": ["memory_used", "memory_total"],
        "nvmlDeviceGetUtilizationRates": ["utilization"],
        "nvmlDeviceGetPowerUsage": ["power_w"],
        "nvmlDeviceGetTemperature": ["temperature_c"],
    }
    for name in ("memory_used", "memory_total", "utilization", "power_w", "temperature_c"):
        value = getattr(event, name)[0]
        assert math.isnan(value) == (name in fields[broken]), name
    again = parse_line(event_to_json(event))  # metrics.jsonl: null, read back as NaN
    assert again is not None and math.isnan(getattr(again, fields[broken][0])[0])
    assert "NaN" not in event_to_json(event)
    run = RunState()
    run.add(event)
    assert run.gpu.samples == 1


def test_each_rank_restores_its_own_cuda_rng_state_and_old_checkpoints_still_load():
    states = [torch.full((16,), r, dtype=torch.uint8) for r in range(3)]
    tensors = cuda_rng_tensors(states)
    for rank in range(3):
        assert torch.equal(own_cuda_rng(tensors, rank, device_index=rank), states[rank])
    assert own_cuda_rng(tensors, 5, device_index=5) is None  # more ranks now: the seeded state stays
    # before: rank 0 wrote its view of every GPU as rng.cuda.<i>, and each rank restored its GPU's entry
    old = {f"rng.cuda.{i}": torch.full((16,), 10 + i, dtype=torch.uint8) for i in range(2)}
    assert torch.equal(own_cuda_rng(old, 1, device_index=1), old["rng.cuda.1"])
    assert own_cuda_rng({}, 0, device_index=0) is None  # a CPU run's checkpoint
