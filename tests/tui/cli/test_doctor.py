"""`hwm-tui doctor`: one line a check, JSON for scripts, exit 0 / 1 / 2."""

from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

import hwm_core.runtime.machine_checks as machine_checks
import hwm_core.training.doctor as doctor_module
from hwm_core.training.bench import BenchResult
from hwm_tui.cli import app
from tests.helpers import hwm

STATUSES = {"ok", "notice", "fail"}


def invoke(*args: str):
    return CliRunner().invoke(app, ["doctor", *args], catch_exceptions=False)


def test_json_has_one_entry_a_check_and_exit_0_when_nothing_failed(tmp_path):
    result = invoke("--runs-dir", str(tmp_path / "runs"), "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["ok"] is True
    names = [c["name"] for c in report["checks"]]
    for name in ("versions", "torch.compile", "torchrun", "runs folder", "/dev/shm"):
        assert name in names
    for check in report["checks"]:
        assert set(check) == {"name", "status", "detail", "fix", "data"} and check["status"] in STATUSES
    if not torch.cuda.is_available():  # the GPU lines are one notice, not a failure
        [gpu] = [c for c in report["checks"] if c["name"].startswith("gpu")]
        assert gpu["status"] == "notice" and "no GPU" in gpu["detail"]
    assert not (tmp_path / "runs").exists()  # a check leaves nothing behind


def test_a_runs_folder_that_cannot_be_written_fails_with_what_to_do(tmp_path, monkeypatch):
    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(machine_checks.tempfile, "NamedTemporaryFile", refuse)
    result = invoke("--runs-dir", str(tmp_path))
    assert result.exit_code == 1
    [line] = [line for line in result.output.splitlines() if "runs folder" in line]
    assert line.startswith("✗") and "Permission denied" in line and "--runs-dir" in line
    monkeypatch.undo()
    a_file = tmp_path / "runs"
    a_file.write_text("not a folder")
    report = json.loads(invoke("--runs-dir", str(a_file / "deeper"), "--json").stdout)
    [runs] = [c for c in report["checks"] if c["name"] == "runs folder"]
    assert runs["status"] == "fail" and "is a file" in runs["detail"] and report["ok"] is False


def test_a_preset_too_large_for_the_disk_fails(tmp_path, monkeypatch):
    monkeypatch.setattr(machine_checks.shutil, "disk_usage", lambda path: type("U", (), {"free": 2**20})())
    checks = machine_checks.runs_folder(tmp_path, need_bytes=2**30)
    assert checks[0].status == "fail" and "checkpoints need" in checks[0].detail


def test_a_preset_trial_is_reported_a_line_a_figure(tmp_path, monkeypatch):
    def fake_bench(preset, **kwargs):
        result = BenchResult.not_run(preset, "ok", "")
        result.error, result.steps, result.warmup_steps = None, 3, 1
        result.samples_per_s, result.flops_share, result.first_loss = 12.5, 0.31, 11.1
        return result

    monkeypatch.setattr(doctor_module, "run_bench", fake_bench)
    result = invoke("--preset", "cpu", "--runs-dir", str(tmp_path), "--json")
    report = json.loads(result.stdout)
    names = [c["name"] for c in report["checks"]]
    assert names[-6:] == ["preset cpu", "memory", "speed", "compile", "loss at init", "gradients"]
    assert result.exit_code == 0 and report["ok"]

    def out_of_memory(preset, **kwargs):
        return BenchResult.not_run(preset, "does not fit", "failed: out of GPU memory at step 1", budget_gib=11)

    monkeypatch.setattr(doctor_module, "run_bench", out_of_memory)
    result = invoke("--preset", "cpu", "--runs-dir", str(tmp_path))
    assert result.exit_code == 1 and "✗ trial: does not fit" in result.output


def test_a_gpu_preset_without_a_gpu_fails_without_training(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(doctor_module, "run_bench", lambda *a, **k: pytest.fail("no steps without a GPU"))
    report = json.loads(invoke("--preset", "12gb", "--runs-dir", str(tmp_path), "--json").stdout)
    [trial] = [c for c in report["checks"] if c["name"] == "trial"]
    assert trial["status"] == "fail" and "made for a GPU" in trial["detail"]


def test_a_bad_preset_is_one_line_and_exit_2():
    result = hwm("doctor", "--preset", "nope")
    assert result.returncode == 2 and "unknown preset 'nope'" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_doctor_runs_the_cpu_preset_for_real(tmp_path):
    result = hwm("doctor", "--preset", "cpu", "--runs-dir", str(tmp_path), "--json", timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    checks = {c["name"]: c for c in json.loads(result.stdout)["checks"]}
    assert checks["loss at init"]["status"] == "ok" and abs(checks["loss at init"]["data"]["loss"] - 11.07) < 0.5
    assert checks["gradients"]["status"] == "ok" and checks["speed"]["data"]["samples_per_s"] > 0
