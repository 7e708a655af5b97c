"""The `hwm-tui` command.

Every command turns a user mistake (hwm_core.errors.UserError) into one line on
stderr and exit code 2; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import functools
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Callable, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich import box
from rich.table import Table

from hwm_core.errors import UserError

app = typer.Typer(no_args_is_help=True, add_completion=False, rich_markup_mode=None,
                  help="Train Masked Humanoid World Models on 1X World Model Challenge data.")
data_app = typer.Typer(no_args_is_help=True, help="Generate and inspect v2.0 data splits.")
presets_app = typer.Typer(no_args_is_help=True, help="Hardware presets (TOML files in presets/).")
runs_app = typer.Typer(no_args_is_help=True, help="Runs in the runs dir, for scripts.")
bench_app = typer.Typer(help="Benchmarks: training steps, the dashboard's charts, the dashboard vs headless.")
app.add_typer(bench_app, name="bench")
app.add_typer(data_app, name="data")
app.add_typer(presets_app, name="presets")
app.add_typer(runs_app, name="runs")

console = Console(soft_wrap=True)
err_console = Console(stderr=True)

RUNS_DIR_HELP = "Folder of runs (default: $HWM_RUNS_DIR, else ./runs)."


def user_errors(fn: Callable) -> Callable:
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except UserError as exc:
            err_console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
            raise typer.Exit(exc.exit_code) from None
        except RuntimeError as exc:
            if type(exc).__name__ != "OutOfMemoryError":  # torch's, named so the CLI starts without torch
                raise
            err_console.print(f"[bold red]error:[/] out of GPU memory ({escape(str(exc).splitlines()[0])}): lower "
                              "train.batch_size (or set it to auto), or use a smaller preset", highlight=False,
                              soft_wrap=True)
            raise typer.Exit(1) from None
        except BrokenPipeError:
            # The reader went away (`| head`): stop writing, quietly, as other tools do.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise typer.Exit(0) from None
        except OSError as exc:
            # The file system said no (permissions, full disk, a file where a folder
            # should be): that is the user's to fix, in one line, not a traceback.
            where = f" ({exc.filename})" if exc.filename else ""
            err_console.print(f"[bold red]error:[/] {escape(exc.strerror or str(exc))}{escape(where)}: check "
                              "the path, its permissions and the free disk space", highlight=False,
                              soft_wrap=True)
            raise typer.Exit(2) from None
    return wrapper


# ---------------------------------------------------------------------------- train

@app.command()
@user_errors
def train(
    preset: Optional[str] = typer.Option(None, "--preset", "-p", help="Preset name (cpu, 12gb, 24gb, 48gb, "
                                         "80gb) or path to a TOML file. Default: cpu."),
    data: Optional[str] = typer.Option(None, "--data", help="Train split folder (1X v2.0), or 'synthetic'."),
    val_data: Optional[str] = typer.Option(None, "--val-data", help="Val split folder, or 'synthetic'."),
    set_: list[str] = typer.Option([], "--set", help="Override a preset key: section.key=value (repeatable)."),
    runs_dir: Optional[Path] = typer.Option(None, "--runs-dir", help=RUNS_DIR_HELP),
    max_steps: Optional[int] = typer.Option(None, "--max-steps", help="Optimizer steps in the whole run."),
    resume: Optional[str] = typer.Option(None, "--resume", help="Continue a run (id or path) from its latest "
                                         "good checkpoint."),
    headless: bool = typer.Option(False, "--headless", help="No dashboard: one progress line (servers, scripts)."),
    nproc: int = typer.Option(1, "--nproc", min=1, help="Processes (GPUs) to train on, launched with torchrun."),
    memory_limit: Optional[float] = typer.Option(None, "--memory-limit", min=0, help="Cap this process's CUDA "
                                                 "memory at this many GiB (emulate a smaller card)."),
    run_id: Optional[str] = typer.Option(None, "--run-id", hidden=True, help="Name the new run (launchers)."),
) -> None:
    """Train a Masked-HWM: the dashboard by default, or --headless."""
    from hwm_core.errors import ConfigError
    from hwm_core.training.session import TrainRequest

    if resume is not None and not resume.strip():
        raise ConfigError("--resume needs a run id or path: see `hwm-tui runs list`")
    request = TrainRequest(preset=preset, data=data, val_data=val_data, overrides=list(set_),
                           runs_dir=str(runs_dir) if runs_dir else None, max_steps=max_steps, resume=resume,
                           run_id=run_id, memory_limit_gib=memory_limit)
    if nproc > 1:
        from ..launch import launch_distributed
        raise typer.Exit(launch_distributed(request, nproc=nproc, headless=headless))
    from hwm_core.runtime import distributed
    from hwm_core.training.session import prepare

    dist = distributed.from_env()
    if dist.enabled:
        raise typer.Exit(_train_distributed(request, dist, headless))
    try:
        session = prepare(request, dist)
    except KeyboardInterrupt:
        err_console.print("interrupted before training started; nothing to resume")
        raise typer.Exit(130) from None
    if headless or not sys.stdout.isatty():
        from ..headless import run_headless
        raise typer.Exit(run_headless(session, console))
    from ..app import run_dashboard
    raise typer.Exit(run_dashboard(session))


def _train_distributed(request, dist, headless: bool) -> int:
    """One rank under torchrun: always headless; only rank 0 prints and writes."""
    from hwm_core.runtime.distributed import shutdown
    from hwm_core.training.session import prepare_distributed

    from ..headless import run_headless

    try:
        session = prepare_distributed(request, dist)
        return run_headless(session, console)
    finally:
        shutdown(dist)


# ---------------------------------------------------------------------------- sweep

@app.command()
@user_errors
def sweep(
    preset: Optional[str] = typer.Option(None, "--preset", "-p", help="Preset name or TOML path. Default: cpu."),
    data: Optional[str] = typer.Option(None, "--data", help="Train split folder (1X v2.0), or 'synthetic'."),
    val_data: Optional[str] = typer.Option(None, "--val-data", help="Val split folder, or 'synthetic'."),
    set_: list[str] = typer.Option([], "--set", help="section.key=a,b,c: a grid axis (values split at commas "
                                   "outside brackets); section.key=value: for every run. Repeatable."),
    max_steps: Optional[int] = typer.Option(None, "--max-steps", help="Optimizer steps of every run."),
    runs_dir: Optional[Path] = typer.Option(None, "--runs-dir", help=RUNS_DIR_HELP),
    headless: bool = typer.Option(False, "--headless", help="No dashboard: one progress line per run."),
    resume: Optional[str] = typer.Option(None, "--resume", help="Continue a sweep (its id): finish its interrupted "
                                         "run from its checkpoint, skip the completed ones, train the rest."),
) -> None:
    """Train a grid of runs one after another (e.g. --set train.lr=3e-5,5e-5,1e-4), each a normal run carrying
    the sweep's id; the grid and its order are printed first."""
    from hwm_core.errors import ConfigError
    from hwm_core.training.request import TrainRequest, request_overrides
    from hwm_core.runs.folder import default_runs_dir
    from hwm_core.experiments.sweep import load_sweep, new_sweep, plan

    from ..sweep_runs import grid_table, run_sweep_headless

    folder = default_runs_dir(runs_dir)
    if resume is not None:
        if set_ or preset or data or val_data or max_steps is not None:
            raise ConfigError("--resume continues a sweep with its own grid and settings: drop --set, --preset, "
                              "--data, --val-data and --max-steps")
        the_sweep = load_sweep(folder, resume)
    else:
        sets = request_overrides(TrainRequest(data=data, val_data=val_data, max_steps=max_steps, overrides=list(set_)))
        the_sweep = new_sweep(preset or "cpu", sets, folder)
        folder.mkdir(parents=True, exist_ok=True)
        the_sweep.save()
    steps = plan(the_sweep)
    console.print(grid_table(the_sweep, steps))
    console.print(f"sweep record: {the_sweep.path}  (continue it after a stop with: hwm-tui sweep --resume "
                  f"{the_sweep.id})", style="dim")
    if headless or not sys.stdout.isatty():
        raise typer.Exit(run_sweep_headless(the_sweep, console))
    from ..app import run_sweep_dashboard
    raise typer.Exit(run_sweep_dashboard(the_sweep))


# ---------------------------------------------------------------------------- bench

PRESET_HELP = "Preset to benchmark."
STEPS_HELP = "Timed optimizer steps (after warm-up)."
SET_HELP = "Override a preset key: section.key=value (repeatable)."
JSON_HELP = "Print one JSON object."


@bench_app.callback(invoke_without_command=True)
@user_errors
def bench(
    ctx: typer.Context,
    preset: Optional[str] = typer.Option(None, "--preset", "-p", help="Same as `bench train --preset`."),
    steps: Optional[int] = typer.Option(None, "--steps", min=1, help="Same as the subcommand's --steps."),
    device: Optional[str] = typer.Option(None, "--device", help="Same as the subcommand's --device."),
    set_: list[str] = typer.Option([], "--set", help="Same as the subcommand's --set."),
    as_json: bool = typer.Option(False, "--json", help="Same as the subcommand's --json."),
    ui: bool = typer.Option(False, "--ui", help="Same as `bench ui`."),
    dashboard: bool = typer.Option(False, "--dashboard", help="Same as `bench dashboard`."),
    repeats: Optional[int] = typer.Option(None, "--repeats", min=1, help="Same as `bench dashboard --repeats`."),
    side_by_side: bool = typer.Option(False, "--side-by-side", help="Same as `bench dashboard --side-by-side`."),
) -> None:
    """Time training steps (train), the dashboard's charts (ui) or the dashboard against headless
    (dashboard). Without a subcommand: `bench train`, or the one --ui / --dashboard names."""
    from hwm_core.errors import ConfigError

    given = [name for name, value in (("--preset", preset), ("--steps", steps), ("--device", device),
                                      ("--set", set_ or None), ("--repeats", repeats)) if value is not None]
    given += [name for name, value in (("--json", as_json), ("--ui", ui), ("--dashboard", dashboard),
                                       ("--side-by-side", side_by_side)) if value]
    if ctx.invoked_subcommand is not None:
        if given:
            raise ConfigError(f"{', '.join(given)} go after the subcommand: hwm-tui bench "
                              f"{ctx.invoked_subcommand} {' '.join(given)} ...")
        return
    if ui and dashboard:
        raise ConfigError("--ui and --dashboard are two benches: run `hwm-tui bench ui` and "
                          "`hwm-tui bench dashboard` one after the other")
    if ui:
        _refuse(given, allowed={"--ui", "--json"}, what="bench ui")
        bench_ui(as_json=as_json)
    elif dashboard:
        _refuse(given, allowed={"--dashboard", "--preset", "--steps", "--device", "--set", "--repeats",
                                "--side-by-side", "--json"}, what="bench dashboard")
        bench_dashboard(preset=preset or "cpu", steps=steps or DASHBOARD_STEPS, device=device, set_=set_,
                        repeats=repeats or 3, side_by_side=side_by_side, as_json=as_json)
    else:
        _refuse(given, allowed={"--preset", "--steps", "--device", "--set", "--json"}, what="bench train")
        bench_train(preset=preset or "cpu", steps=steps or 5, device=device, set_=set_, as_json=as_json)


def _refuse(given: list[str], *, allowed: set[str], what: str) -> None:
    from hwm_core.errors import ConfigError

    extra = [name for name in given if name not in allowed]
    if extra:
        raise ConfigError(f"{what} takes no {', '.join(extra)}: see hwm-tui {what} --help")


def _device_overrides(device: Optional[str], set_: list[str]) -> list[str]:
    from hwm_core.errors import ConfigError

    if device not in (None, "cpu", "cuda"):
        raise ConfigError(f"--device must be cpu or cuda, got {device!r}")
    return [*set_, f"train.device={device}"] if device else list(set_)


@bench_app.command("train")
@user_errors
def bench_train(
    preset: str = typer.Option("cpu", "--preset", "-p", help=PRESET_HELP + " `all`: every preset, one after another."),
    steps: int = typer.Option(5, "--steps", min=1, help=STEPS_HELP),
    device: Optional[str] = typer.Option(None, "--device", help="cpu or cuda (default: the preset's)."),
    set_: list[str] = typer.Option([], "--set", help=SET_HELP),
    memory_limit: Optional[float] = typer.Option(None, "--memory-limit", min=0, help="Cap CUDA memory at this "
                                                 "many GiB (with --preset all: each preset's own budget)."),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Time real training steps of a preset: step time, throughput, memory, FLOP/s, compile time."""
    from hwm_core.training.bench import bench_presets, run_bench
    from hwm_core.config.loading import load_config

    results = []
    for name in bench_presets(preset):
        limit = memory_limit
        if limit is None and preset == "all":
            limit = load_config(name).memory_budget_gib or None
        results.append(run_bench(name, steps=steps, overrides=_device_overrides(device, set_),
                                 memory_limit_gib=limit if _on_cuda(device) else None))
    if as_json:
        out = [r.to_json() for r in results]
        print(json.dumps(out if preset == "all" else out[0], indent=1))
        return
    table = Table(title="bench train", show_header=True)
    table.add_column("")
    for r in results:
        table.add_column(f"{r.preset}\n{r.device} ({r.precision})")
    for label, cell in _BENCH_ROWS:
        table.add_row(label, *(cell(r) for r in results))
    console.print(table)


def _on_cuda(device: Optional[str]) -> bool:
    if device == "cpu":
        return False
    import torch

    return torch.cuda.is_available()


def _bench_rows():
    from hwm_core.figures import format_bytes, format_rate

    def compiled(r) -> str:
        if r.compile == "off":
            return "off"
        if r.compile_error:
            return f"failed, ran eager ({r.compile_error})"
        return f"{r.compile}: {r.compile_s:.1f} s (in warm-up)" if r.compile_s is not None else r.compile

    def memory(r) -> str:
        text = format_bytes(r.peak_memory_bytes)
        if r.fits_budget is not None:
            text += f" ({'fits' if r.fits_budget else 'OVER'} {r.memory_budget_gib:g} GiB)"
        return text

    return [
        ("optimizer steps timed", lambda r: f"{r.steps} (after {r.warmup_steps} warm-up)"),
        ("global batch", lambda r: f"{r.global_batch} = {r.micro_batch} x {r.grad_accum_steps}"),
        ("parameters", lambda r: f"{r.num_parameters:,}"),
        ("compile", compiled),
        ("step time (median)", lambda r: f"{r.step_time_s * 1000:.1f} ms (best {r.step_time_min_s * 1000:.1f})"),
        ("waiting for data", lambda r: f"{r.data_wait_share:.1%} of the step"),
        ("samples/s", lambda r: f"{r.samples_per_s:.2f}"),
        ("tokens/s", lambda r: format_rate(r.tokens_per_s)),
        ("peak memory", lambda r: f"{memory(r)} ({r.peak_memory_kind})"),
        ("memory limit", lambda r: f"{r.memory_limit_gib:g} GiB" if r.memory_limit_gib else "none"),
        ("model FLOPs per step", lambda r: f"{r.model_flops_per_step:.3e}"),
        ("achieved FLOP/s", lambda r: f"{r.achieved_flops_per_s:.3e}"),
        ("dense matmul FLOP/s here", lambda r: f"{r.matmul_flops_per_s:.3e}"),
        ("share of matmul FLOP/s", lambda r: f"{r.flops_share:.1%}"),
    ]


_BENCH_ROWS = _bench_rows()


@bench_app.command("ui")
@user_errors
def bench_ui(as_json: bool = typer.Option(False, "--json", help=JSON_HELP)) -> None:
    """How long the dashboard's charts take to draw, with 60,000 steps of history."""
    from ..bench.charts import chart_redraw_ms

    _print_result(chart_redraw_ms(), as_json, title="chart drawing, 60,000 steps of history")


DASHBOARD_STEPS = 100


@bench_app.command("dashboard")
@user_errors
def bench_dashboard(
    preset: str = typer.Option("cpu", "--preset", "-p", help=PRESET_HELP),
    steps: int = typer.Option(DASHBOARD_STEPS, "--steps", min=1, help="Optimizer steps in each run."),
    device: Optional[str] = typer.Option(None, "--device", help="cpu or cuda (default: the preset's)."),
    set_: list[str] = typer.Option([], "--set", help=SET_HELP),
    repeats: int = typer.Option(3, "--repeats", min=1, help="Runs of each kind (alternating pairs)."),
    side_by_side: bool = typer.Option(False, "--side-by-side", help="Run each pair at the same time, each on a "
                                      "core of its own, and compare the seconds they share."),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Samples/s headless vs under the dashboard (in tmux), the dashboard's drawing live vs frozen (f)
    in blocks within each run, and key-press-to-screen latency."""
    from ..bench.dashboard import TrainCommand, dashboard_vs_headless, side_by_side as run_side_by_side

    train = TrainCommand(preset, steps, _device_overrides(device, set_))
    if side_by_side:
        result = run_side_by_side(train, repeats=repeats)
    else:
        result = dashboard_vs_headless(train, repeats=repeats)
    _print_result(result, as_json, title=f"dashboard vs headless: preset {preset}, {steps} steps")


def _print_result(result: dict, as_json: bool, *, title: str) -> None:
    if as_json:
        print(json.dumps(result, indent=1))
        return
    table = Table(title=title, show_header=False)
    for key, value in _flatten(result):
        table.add_row(key, value)
    console.print(table)


def _flatten(value: dict, prefix: str = "") -> list[tuple[str, str]]:
    rows = []
    for key, item in value.items():
        name = f"{prefix}{key}"
        if isinstance(item, dict):
            rows += _flatten(item, f"{name}.")
        elif isinstance(item, list):
            rows.append((name, ", ".join(_figure(v) for v in item)))
        else:
            rows.append((name, _figure(item)))
    return rows


def _figure(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "-" if value is None else str(value)


# ---------------------------------------------------------------------------- evaluate

@app.command()
@user_errors
def evaluate(
    run: str = typer.Argument(..., help="Run id, unique prefix or path (its newest good checkpoint), or a "
                              "checkpoint file."),
    data: Optional[str] = typer.Option(None, "--data", help="Val split folder, or 'synthetic' (default: the "
                                       "run's own val split)."),
    train_data: Optional[str] = typer.Option(None, "--train-data", help="Train split for the unigram baseline "
                                             "(default: the run's own)."),
    batch_size: int = typer.Option(16, "--batch-size", min=1, help="Samples per forward pass."),
    limit: Optional[int] = typer.Option(None, "--limit", min=1, help="Only the first N valid samples."),
    device: Optional[str] = typer.Option(None, "--device", help="cpu or cuda (default: cuda when present)."),
    maskgit_steps: int = typer.Option(8, "--maskgit-steps", min=1, help="MaskGIT rounds per target frame."),
    temperature: float = typer.Option(0.0, "--temperature", min=0.0, help="MaskGIT sampling temperature "
                                      "(0: each factor's argmax)."),
    runs_dir: Optional[Path] = typer.Option(None, "--runs-dir", help=RUNS_DIR_HELP),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Score a checkpoint on a whole split: teacher-forced CE and accuracy per target frame, MaskGIT
    generation, and the uniform, unigram and copy-last baselines on the same samples."""
    from rich.progress import Progress

    from hwm_core.data import Split
    from hwm_core.predictions.evaluate import EvalOptions, evaluate as run_evaluation, factor_unigram
    from hwm_core.predictions.evaluation_store import save_evaluation
    from hwm_core.predictions.inference import load_trained, open_samples, split_path
    from hwm_core.runs.folder import default_runs_dir

    _device_overrides(device, [])  # cpu or cuda, or one line
    trained = load_trained(run, default_runs_dir(runs_dir), device=device)
    samples = open_samples(trained, split_path(trained, data, "val"))
    train_split = Split.open(split_path(trained, train_data, "train"), role="train")
    options = EvalOptions(batch_size=batch_size, limit=limit, maskgit_steps=maskgit_steps, temperature=temperature)
    with Progress(console=err_console, transient=True, disable=not err_console.is_terminal) as bar:
        task = bar.add_task("unigram of the train split", total=None)
        unigram = factor_unigram(train_split, trained.factors)
        bar.update(task, description=f"evaluating step {trained.step}", total=1)
        result = run_evaluation(trained, samples, unigram, options,
                                progress=lambda done, total: bar.update(task, completed=done, total=total))
    saved = save_evaluation(trained.folder, result) if trained.folder is not None else None
    if as_json:
        print(json.dumps(result, indent=1))
        return
    console.print(_evaluation_table(result))
    if saved is not None:
        console.print(f"saved to {saved}", style="dim")


def _evaluation_table(result: dict) -> Table:
    tf, base, gen = result["teacher_forced"], result["baselines"], result["maskgit"]
    frames = len(tf["ce_nats_per_frame"])
    table = Table(title=f"step {result['step']} on {result['samples']} samples of {result['split']}")
    table.add_column("")
    table.add_column("all target frames", justify="right")
    if frames > 1:
        for k in range(frames):
            table.add_column(f"frame {k + 1}", justify="right")

    def row(label: str, overall: float, per_frame: list[float], fmt: str) -> None:
        cells = [fmt.format(overall)] + ([fmt.format(v) for v in per_frame] if frames > 1 else [])
        table.add_row(label, *cells)

    row("teacher-forced CE (nats)", tf["ce_nats"], tf["ce_nats_per_frame"], "{:.3f}")
    row("unigram CE (nats)", base["unigram_ce_nats"], base["unigram_ce_nats_per_frame"], "{:.3f}")
    row("uniform CE (nats)", base["uniform_ce_nats"], [base["uniform_ce_nats"]] * frames, "{:.3f}")
    row("token accuracy, argmax", tf["token_accuracy"], tf["token_accuracy_per_frame"], "{:.1%}")
    row(f"token accuracy, MaskGIT ({result['maskgit_steps']} steps, T={result['temperature']:g})",
        gen["token_accuracy"], gen["token_accuracy_per_frame"], "{:.1%}")
    row("copy-last accuracy", base["copy_last_accuracy"], base["copy_last_accuracy_per_frame"], "{:.1%}")
    table.add_row("factor accuracy", " ".join(f"{v:.1%}" for v in tf["factor_accuracy"]),
                  *([""] * (frames if frames > 1 else 0)))
    return table


@app.command()
@user_errors
def samples(
    run: str = typer.Argument(..., help="Run id, unique prefix or path (its newest good checkpoint), or a "
                              "checkpoint file."),
    png: Path = typer.Option(..., "--png", help="Write the panels to this PNG file."),
    data: Optional[str] = typer.Option(None, "--data", help="Val split folder, or 'synthetic' (default: the "
                                       "run's own val split)."),
    count: int = typer.Option(4, "--count", min=1, help="Val samples, the first ones validation takes."),
    device: Optional[str] = typer.Option(None, "--device", help="cpu or cuda (default: cuda when present)."),
    maskgit_steps: int = typer.Option(8, "--maskgit-steps", min=1, help="MaskGIT rounds per target frame."),
    temperature: float = typer.Option(0.0, "--temperature", min=0.0, help="MaskGIT sampling temperature."),
    runs_dir: Optional[Path] = typer.Option(None, "--runs-dir", help=RUNS_DIR_HELP),
) -> None:
    """Draw what a checkpoint predicts for a few val samples (context, truth, argmax, MaskGIT, errors) as a PNG."""
    from hwm_core.data.batches import val_sample_order
    from hwm_core.errors import DataError
    from hwm_core.predictions.inference import load_trained, open_samples, split_path
    from hwm_core.predictions.predict import predict_samples
    from hwm_core.runs.folder import default_runs_dir

    from ..sample_png import write_png

    _device_overrides(device, [])
    if png.suffix.lower() != ".png":
        raise DataError(f"--png {png}: give a file name ending in .png")
    trained = load_trained(run, default_runs_dir(runs_dir), device=device)
    val = open_samples(trained, split_path(trained, data, "val"))
    indices = [int(i) for i in val_sample_order(len(val), trained.config.train.seed)[:count]]
    record = predict_samples(trained, val, indices, step=trained.step, maskgit_steps=maskgit_steps,
                             temperature=temperature)
    name = trained.folder.id if trained.folder is not None else trained.checkpoint.name
    try:
        width, height = write_png(record, png, title=f"{name} · step {trained.step} · {val.split.root.name} · "
                                                     f"MaskGIT {maskgit_steps} steps, T={temperature:g}")
    except OSError as exc:
        raise DataError(f"cannot write {png} ({exc.strerror}): choose a writable path") from None
    console.print(f"wrote {png} ({width}x{height}, {len(indices)} samples)")


# ---------------------------------------------------------------------------- data

@data_app.command("synth")
@user_errors
def data_synth(
    out: Path = typer.Argument(..., help="Folder to write the split into."),
    shards: int = typer.Option(2, "--shards", min=1, help="Number of shards."),
    frames: int = typer.Option(4080, "--frames", min=17, help="Frames per shard (30 Hz)."),
    seed: int = typer.Option(0, "--seed", min=0, help="Same seed, same bytes."),
    flat: bool = typer.Option(False, "--flat", help="Flat layout (like val_v2.0) instead of sub-folders."),
) -> None:
    """Write a synthetic split in the exact 1X v2.0 format, with action-driven dynamics."""
    from hwm_core.data.synth import write_split
    from hwm_core.errors import DataError

    if out.exists() and not out.is_dir():
        raise DataError(f"{out} is a file: give a new folder to write the split into")
    if out.exists() and any(out.iterdir()):
        raise DataError(f"{out} exists and is not empty: choose a new folder, so no data is overwritten")
    try:
        write_split(out, shards=shards, frames=frames, seed=seed, flat=flat)
    except OSError as exc:
        raise DataError(f"cannot write {out} ({exc.strerror}): choose a writable folder with free space") from None
    console.print(f"wrote {shards} shard(s) x {frames} frames to {out} ({'flat' if flat else 'sub-folder'} layout)")


@data_app.command("inspect")
@user_errors
def data_inspect(
    path: Path = typer.Argument(..., help="A split folder (holds metadata.json)."),
    windows: int = typer.Option(1, "--windows", min=1, help="Windows per sample, for num_valid_samples."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Shards, frames, windows, valid samples, segments, token range, state statistics."""
    from hwm_core.data.inspect import describe_split

    info = describe_split(path, windows)
    if as_json:
        print(json.dumps(info, indent=1))
        return
    table = Table(title=f"{info['path']} ({info['layout']} layout)", show_header=False)
    for key in ("num_shards", "num_frames", "num_windows", "windows_per_sample", "num_valid_samples",
                "num_segments", "token_min", "token_max", "hz", "synthetic"):
        table.add_row(key, str(info[key]))
    console.print(table)
    states = Table("dim", "state", "mean", "std", title="robot states")
    for row in info["state_stats"]:
        states.add_row(str(row["dim"]), row["name"], f"{row['mean']:.4g}", f"{row['std']:.4g}")
    console.print(states)


# ---------------------------------------------------------------------------- presets

@presets_app.command("list")
@user_errors
def presets_list() -> None:
    """Every preset with its model size and batch."""
    from hwm_core.config.loading import load_config
    from hwm_core.config.presets import preset_names

    table = Table("preset", "model", "batch x accum", "lr", "data", "description")
    for name in preset_names():
        c = load_config(name)
        table.add_row(name, f"{c.model.n_layers}L d{c.model.d_model} h{c.model.n_heads}",
                      f"{c.train.batch_size} x {c.train.grad_accum_steps}", f"{c.train.lr:g}",
                      c.data.train or "--data required", c.description)
    console.print(table)


@presets_app.command("show")
@user_errors
def presets_show(name: str = typer.Argument(..., help="Preset name or TOML path.")) -> None:
    """The fully resolved preset, as TOML."""
    from hwm_core.config.loading import load_config

    print(load_config(name).to_toml(), end="")


# ---------------------------------------------------------------------------- runs

@runs_app.command("list")
@user_errors
def runs_list(
    runs_dir: Optional[Path] = typer.Option(None, "--runs-dir", help=RUNS_DIR_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON list."),
) -> None:
    """Every run: id, preset, status, steps, val loss, latest good checkpoint."""
    from hwm_core.runs.folder import default_runs_dir
    from hwm_core.runs.history import list_runs

    summaries = list_runs(default_runs_dir(runs_dir))
    if as_json:
        print(json.dumps([s.to_json() for s in summaries], indent=1))
        return
    if not summaries:
        console.print(f"no runs in {default_runs_dir(runs_dir)}")
        return
    columns = [("id", lambda s: s.id), ("status", lambda s: s.status), ("steps", lambda s: f"{s.step}/{s.max_steps}"),
               ("best val", lambda s: _loss(s.best_val_loss)), ("preset", lambda s: s.preset),
               ("last val", lambda s: _loss(s.last_val_loss)), ("warnings", lambda s: str(s.warning_count)),
               ("checkpoint", lambda s: f"step {s.latest_checkpoint_step}" if s.latest_checkpoint else "-"),
               ("sweep", lambda s: s.sweep or "-")]
    if not any(s.sweep for s in summaries):
        columns.pop()
    rows = [[cell(s) for _, cell in columns] for s in summaries]
    # Ids are never cut (they are pasted into --resume): other columns go first, the last first.
    while len(columns) > 2 and _table_width(columns, rows) > console.width:
        columns.pop()
        rows = [row[:-1] for row in rows]
    table = Table(*(name for name, _ in columns))
    table.columns[0].no_wrap = True
    table.columns[0].min_width = max(len(row[0]) for row in rows)
    for row in rows:
        table.add_row(*row)
    console.print(table)


def _table_width(columns: list, rows: list[list[str]]) -> int:
    """Width of a Rich table with these cells: the widest cell of each column, its padding and rules."""
    widths = [max(len(name), *(len(row[i]) for row in rows)) for i, (name, _) in enumerate(columns)]
    return sum(widths) + 3 * len(widths) + 1


@runs_app.command("show")
@user_errors
def runs_show(
    run: str = typer.Argument(..., help="Run id, unique prefix, or path."),
    runs_dir: Optional[Path] = typer.Option(None, "--runs-dir", help=RUNS_DIR_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """One run's facts, as on the history screen."""
    from hwm_core.runs.folder import default_runs_dir
    from hwm_core.runs.history import resolve_run, safe_summarize

    from hwm_core.predictions.evaluation_store import latest_evaluation

    folder = resolve_run(default_runs_dir(runs_dir), run)
    summary = safe_summarize(folder, time.time())
    info = summary.to_json()
    evaluation = latest_evaluation(folder)
    if as_json:
        print(json.dumps({**info, "latest_evaluation": evaluation}, indent=1))
        return
    table = Table(show_header=False, title=f"run {summary.id}")
    for key, value in info.items():
        if key in ("started", "ended") and value:
            value = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(value))
        table.add_row(key, "-" if value is None else str(value))
    console.print(table)
    if evaluation is not None:
        console.print(_evaluation_table(evaluation))


@runs_app.command("compare")
@user_errors
def runs_compare(
    runs: list[str] = typer.Argument(..., help="2 to 8 runs (ids, unique prefixes or paths)."),
    runs_dir: Optional[Path] = typer.Option(None, "--runs-dir", help=RUNS_DIR_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """The comparison table: the config values in which the runs differ, and each run's steps, best and last
    val loss, warnings and status."""
    from hwm_core.experiments.comparison import compare, format_value, short_key
    from hwm_core.errors import ConfigError
    from hwm_core.runs.folder import default_runs_dir
    from hwm_core.runs.history import resolve_run

    if len(runs) < 2:
        raise ConfigError("runs compare needs two runs or more: hwm-tui runs compare RUN RUN ...")
    folder = default_runs_dir(runs_dir)
    comparison = compare([resolve_run(folder, ref) for ref in runs], time.time())
    if as_json:
        print(json.dumps(comparison.to_json(), indent=1))
        return
    table = Table("run", *(short_key(k) for k in comparison.keys), "status", "steps", "best val", "last val",
                  "warnings", title=f"{len(runs)} runs: they differ in "
                                    f"{', '.join(comparison.keys) or 'nothing in their configs'}",
                  box=box.SIMPLE_HEAD)
    for column in table.columns:
        column.no_wrap = True
    table.columns[0].min_width = max(len(run.summary.id) for run in comparison.runs)  # ids are never cut
    for run in comparison.runs:
        s = run.summary
        table.add_row(s.id, *(format_value(run.values[k]) for k in comparison.keys), s.status,
                      f"{s.step}/{s.max_steps}", _loss(s.best_val_loss), _loss(s.last_val_loss), str(s.warning_count))
    # A pipe (a script) takes the whole table, however wide; a terminal, what fits.
    (console if console.is_terminal else Console(width=10_000, soft_wrap=True)).print(table)


EXPORT_COLUMNS = ("type", "step", "time", "loss", "lr", "grad_norm_pre_clip", "grad_norm_post_clip", "grad_max_abs",
                  "grad_min_abs", "clipped", "skipped", "samples_per_s", "tokens_per_s", "step_time_s",
                  "data_wait_s", "memory_bytes", "val_loss", "val_token_acc")


@runs_app.command("export")
@user_errors
def runs_export(
    run: str = typer.Argument(..., help="Run id, unique prefix or path."),
    csv_: bool = typer.Option(False, "--csv", help="As CSV (the one format so far): one row per step and eval."),
    out: Optional[Path] = typer.Option(None, "--out", help="Write to this file instead of standard output."),
    runs_dir: Optional[Path] = typer.Option(None, "--runs-dir", help=RUNS_DIR_HELP),
) -> None:
    """Every step and eval row of a run's metrics.jsonl, for a spreadsheet or a script."""
    import csv
    import dataclasses

    from hwm_core.errors import ConfigError
    from hwm_core.events.types import EvalEvent, StepEvent, iter_events
    from hwm_core.runs.folder import default_runs_dir
    from hwm_core.runs.history import resolve_run

    if not csv_:
        raise ConfigError("runs export needs a format: --csv")
    folder = resolve_run(default_runs_dir(runs_dir), run)
    handle = open(out, "w", newline="") if out is not None else sys.stdout
    try:
        writer = csv.DictWriter(handle, fieldnames=EXPORT_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        for event in iter_events(folder.metrics):
            if isinstance(event, (StepEvent, EvalEvent)):
                writer.writerow(dataclasses.asdict(event))
    finally:
        if out is not None:
            handle.close()


def _loss(value: float | None) -> str:
    return f"{value:.4f}" if value is not None and math.isfinite(value) else "-"


# ---------------------------------------------------------------------------- screens

@app.command()
@user_errors
def history(runs_dir: Optional[Path] = typer.Option(None, "--runs-dir", help=RUNS_DIR_HELP)) -> None:
    """Browse past runs: curves, config; resume or delete."""
    from ..app import run_history_app

    raise typer.Exit(run_history_app(runs_dir))


@app.command()
@user_errors
def watch(
    run: Optional[str] = typer.Argument(None, help="Run id or path (default: the newest running run)."),
    runs_dir: Optional[Path] = typer.Option(None, "--runs-dir", help=RUNS_DIR_HELP),
) -> None:
    """Open the dashboard on a run another process is training; p, c, q reach it."""
    from ..app import run_watch

    raise typer.Exit(run_watch(run, runs_dir))


def main() -> None:
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    app()


if __name__ == "__main__":
    main()
