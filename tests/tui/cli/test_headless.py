"""`hwm-tui train --headless` end to end, in a real process, as a user runs it."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest

from hwm_core.runs.checkpoint import list_checkpoints
from tests.helpers import hwm, only_run, read_metrics, set_args, tiny_sets, train_cli

STEP_KEYS = {
    "type",
    "step",
    "loss",
    "lr",
    "grad_norm_pre_clip",
    "grad_norm_post_clip",
    "grad_max_abs",
    "grad_min_abs",
    "clipped",
    "samples_per_s",
    "tokens_per_s",
    "step_time_s",
    "memory_bytes",
    "time",
}


def test_headless_run_trains_and_writes_its_folder(runs_dir):
    result = train_cli(
        runs_dir,
        "--max-steps",
        "40",
        *set_args(["train.lr=3e-3", "eval.eval_steps=20", "checkpoint.save_steps=10", "checkpoint.keep_checkpoints=2"]),
    )
    assert result.returncode == 0, result.stderr
    run = only_run(runs_dir)
    assert str(run) in result.stdout and "completed" in result.stdout

    events = read_metrics(run)
    steps = [e for e in events if e["type"] == "step"]
    assert [e["step"] for e in steps] == list(range(1, 41))
    assert set(steps[0]) >= STEP_KEYS
    first, last = steps[0]["loss"], sum(e["loss"] for e in steps[-5:]) / 5
    assert abs(first - math.log(64000)) < 0.15
    assert last < first - 0.5, (first, last)
    evals = [e for e in events if e["type"] == "eval"]
    assert [e["step"] for e in evals] == [20, 40]
    assert all(0 <= e["val_token_acc"] <= 1 and math.isfinite(e["val_loss"]) for e in evals)

    meta = json.loads((run / "run.json").read_text())
    assert meta["status"] == "completed" and meta["preset"] == "cpu" and meta["ended"]
    assert {"hwm_tui", "torch", "python"} <= set(meta["versions"])
    assert "max_steps = 40" in (run / "config.toml").read_text()
    assert (run / "state_stats.json").exists()
    assert [step for step, _ in list_checkpoints(run / "checkpoints")] == [40, 30]  # keep the last 2


def test_gpu_preset_without_data_says_what_to_pass(runs_dir):
    result = train_cli(runs_dir, preset="12gb", tiny=False)
    assert result.returncode == 2
    assert "pass --data DIR" in result.stderr and "Traceback" not in result.stderr
    assert not runs_dir.exists()


def test_gpu_preset_without_val_split_says_so_once(runs_dir, tmp_path):
    from hwm_core.data.synth import write_split

    train_dir = write_split(tmp_path / "train", shards=1, frames=340, seed=0)
    result = train_cli(
        runs_dir,
        "--data",
        str(train_dir),
        "--max-steps",
        "2",
        *set_args(["train.device=cpu", "data.windows=1", "data.future_latents=1", "eval.eval_steps=1"]),
        preset="12gb",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("no val split") == 1
    assert not [e for e in read_metrics(only_run(runs_dir)) if e["type"] == "eval"]


def test_help_everywhere():
    for args in (
        ["--help"],
        ["train", "--help"],
        ["bench", "--help"],
        ["data", "synth", "--help"],
        ["data", "inspect", "--help"],
        ["presets", "list", "--help"],
        ["runs", "list", "--help"],
        ["runs", "show", "--help"],
        ["history", "--help"],
        ["watch", "--help"],
    ):
        result = hwm(*args)
        assert result.returncode == 0, (args, result.stderr)
        assert "Usage" in result.stdout


def test_bench_reports_its_figures():
    result = hwm("bench", "--preset", "cpu", "--steps", "2", "--json", *set_args(tiny_sets()))
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    for key in (
        "step_time_s",
        "samples_per_s",
        "tokens_per_s",
        "peak_memory_bytes",
        "model_flops_per_step",
        "achieved_flops_per_s",
        "matmul_flops_per_s",
        "flops_share",
    ):
        assert info[key] > 0, key
    assert info["steps"] == 2 and info["peak_memory_kind"] == "process peak RSS"
    assert info["tokens_per_s"] == pytest.approx(info["samples_per_s"] * 3 * 1024, rel=1e-9)
    assert 0 < info["flops_share"] < 1.5


def test_bench_subcommands_honour_or_refuse_every_option():
    result = hwm("bench", "train", "--preset", "cpu", "--steps", "1", "--json", *set_args(tiny_sets()))
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert (info["compile"], info["compile_s"], info["micro_batch"], info["grad_accum_steps"]) == ("off", None, 2, 1)
    assert 0 <= info["data_wait_share"] < 1 and info["fits_budget"] is None  # no budget on the CPU
    for args, says in (
        (["--ui", "--preset", "cpu"], "bench ui takes no --preset"),
        (["--ui", "--dashboard"], "two benches"),
        (["--repeats", "2"], "bench train takes no --repeats"),
        (["--steps", "2", "train"], "go after the subcommand"),
    ):
        result = hwm("bench", *args)
        assert result.returncode == 2 and says in result.stderr, (args, result.stderr)
    result = hwm("bench", "ui", "--device", "cuda")  # not an option of bench ui at all
    assert result.returncode == 2 and "--device" in result.stderr
    result = hwm("bench", "dashboard", "--preset", "12gb", "--steps", "40", "--device", "cpu")
    assert result.returncode == 2 and "warmup_steps (500) must be <= train.max_steps (40)" in result.stderr
    assert "Traceback" not in result.stderr


def test_presets_runs_and_data_commands_start_without_torch(tmp_path):
    """The CLI imports the engine inside each command, so listing things stays fast."""
    script = (
        "import sys\nfrom hwm_tui.cli import app\n"
        "for args in (['presets', 'list'], ['runs', 'list', '--runs-dir', sys.argv[1]], ['data', '--help']):\n"
        "    try:\n        app(args)\n    except SystemExit as done:\n        assert not done.code, (args, done.code)\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    result = subprocess.run([sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
