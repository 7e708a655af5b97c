"""`bench train --preset all` reports every preset, one out of memory or not, and never
shows a traceback; whether a preset fits its budget is judged on what the process holds
(issue 19, points 2 and 7)."""

from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

import hwm_core.training.bench as bench_module
import hwm_core.training.trainer as trainer_module
from hwm_core.errors import ConfigError
from hwm_core.training.bench import DOES_NOT_FIT, FAILED, OK, BenchResult, bench_each, held_memory, run_bench
from hwm_tui.cli import app
from hwm_tui.cli import console as cli_console
from tests.helpers import tiny_sets


def fake_result(name: str) -> BenchResult:
    result = BenchResult.not_run(name, OK, "")
    result.error, result.device, result.steps, result.step_time_s = None, "cuda:0 fake", 2, 0.5
    return result


def fake_run(name: str) -> BenchResult:
    if name == "24gb":
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 3.00 GiB")
    if name == "48gb":
        raise RuntimeError("CUDA error: invalid configuration argument")
    return fake_result(name)


@pytest.fixture
def releases(monkeypatch):
    count = [0]
    monkeypatch.setattr(bench_module, "release_compiled_memory", lambda: count.__setitem__(0, count[0] + 1))
    return count


def test_a_preset_out_of_memory_is_its_row_and_the_others_still_run(releases):
    names = ["cpu", "12gb", "24gb", "48gb", "80gb"]
    results = bench_each(names, fake_run)
    assert [r.preset for r in results] == names
    assert [r.outcome for r in results] == [OK, OK, DOES_NOT_FIT, DOES_NOT_FIT, OK]
    assert results[2].fits_budget is False and "out of memory" in results[2].error
    assert releases[0] == len(names)  # compile state and CUDA cache released after every preset

    def broken(name):
        raise ValueError("a bug in this preset")

    assert bench_each(["cpu", "12gb"], broken)[0].outcome == FAILED

    def bad_input(name):
        raise ConfigError("unknown key train.nope")

    with pytest.raises(ConfigError):  # one preset: a user error is the command's one line, exit 2
        bench_each(["cpu"], bad_input)
    assert bench_each(["cpu", "12gb"], bad_input)[1].outcome == FAILED


def test_bench_all_prints_every_preset_and_no_traceback(monkeypatch, releases):
    monkeypatch.setattr(bench_module, "run_bench", lambda name, **kwargs: fake_run(name))
    monkeypatch.setattr(cli_console.console, "width", 400)  # one line a row, as a wide terminal shows it
    result = CliRunner().invoke(app, ["bench", "train", "--preset", "all"], catch_exceptions=False)
    assert result.exit_code == 1  # a preset did not fit
    assert "Traceback" not in result.output and "does not fit" in result.output
    assert all(name in result.output for name in ("12gb", "24gb", "48gb", "80gb"))
    result = CliRunner().invoke(app, ["bench", "train", "--preset", "all", "--json"], catch_exceptions=False)
    rows = json.loads(result.stdout)
    assert [r["preset"] for r in rows] == ["cpu", "12gb", "24gb", "48gb", "80gb", "compression"]
    assert [r["outcome"] for r in rows] == [OK, OK, DOES_NOT_FIT, DOES_NOT_FIT, OK, OK]


def test_a_bench_whose_training_runs_out_of_memory_returns_does_not_fit(monkeypatch):
    def out_of_memory(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(trainer_module, "forward_loss", out_of_memory)
    result = run_bench("cpu", steps=1, warmup=1, overrides=tiny_sets())
    assert result.outcome == DOES_NOT_FIT and "out of GPU memory" in (result.error or "")


def test_the_budget_is_judged_on_what_the_process_holds(monkeypatch):
    gib = 2**30
    monkeypatch.setattr(torch.cuda, "max_memory_reserved", lambda device=None: 10 * gib)
    monkeypatch.setattr(torch.cuda, "memory_reserved", lambda device=None: 6 * gib)
    monkeypatch.setattr(bench_module, "process_memory_bytes", lambda device: 6 * gib + gib // 2)
    held, kind = held_memory(torch.device("cuda", 0))
    assert held == 10 * gib + gib // 2 and "NVML" in kind  # reserved peak + the context NVML shows
    monkeypatch.setattr(bench_module, "process_memory_bytes", lambda device: None)
    held, kind = held_memory(torch.device("cuda", 0))
    assert held == 10 * gib + bench_module.CONTEXT_ESTIMATE_BYTES and "estimated" in kind
