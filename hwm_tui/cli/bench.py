"""`hwm-tui bench`: training steps timed, the dashboard's charts, the dashboard against headless."""

from __future__ import annotations

import json

import typer
from rich.table import Table

from .console import console
from .options import JSON_HELP, PRESET_HELP, SET_HELP, STEPS_HELP, device_overrides, mirror_names
from .user_errors import user_errors

bench_app = typer.Typer(help="Benchmarks: training steps, the dashboard's charts, the dashboard vs headless.")


@bench_app.callback(invoke_without_command=True)
@user_errors
def bench(
    ctx: typer.Context,
    preset: str | None = typer.Option(None, "--preset", "-p", help="Same as `bench train --preset`."),
    steps: int | None = typer.Option(None, "--steps", min=1, help="Same as the subcommand's --steps."),
    device: str | None = typer.Option(None, "--device", help="Same as the subcommand's --device."),
    set_: list[str] = typer.Option([], "--set", help="Same as the subcommand's --set."),
    as_json: bool = typer.Option(False, "--json", help="Same as the subcommand's --json."),
    ui: bool = typer.Option(False, "--ui", help="Same as `bench ui`."),
    dashboard: bool = typer.Option(False, "--dashboard", help="Same as `bench dashboard`."),
    repeats: int | None = typer.Option(None, "--repeats", min=1, help="Same as `bench dashboard --repeats`."),
    side_by_side: bool = typer.Option(False, "--side-by-side", help="Same as `bench dashboard --side-by-side`."),
) -> None:
    """Time training steps (train), the dashboard's charts (ui) or the dashboard against headless
    (dashboard). Without a subcommand: `bench train`, or the one --ui / --dashboard names."""
    from hwm_core.errors import ConfigError

    given = [
        name
        for name, value in (
            ("--preset", preset),
            ("--steps", steps),
            ("--device", device),
            ("--set", set_ or None),
            ("--repeats", repeats),
        )
        if value is not None
    ]
    given += [
        name
        for name, value in (
            ("--json", as_json),
            ("--ui", ui),
            ("--dashboard", dashboard),
            ("--side-by-side", side_by_side),
        )
        if value
    ]
    if ctx.invoked_subcommand is not None:
        if given:
            raise ConfigError(
                f"{', '.join(given)} go after the subcommand: hwm-tui bench "
                f"{ctx.invoked_subcommand} {' '.join(given)} ..."
            )
        return
    if ui and dashboard:
        raise ConfigError(
            "--ui and --dashboard are two benches: run `hwm-tui bench ui` and "
            "`hwm-tui bench dashboard` one after the other"
        )
    if ui:
        _refuse(given, allowed={"--ui", "--json"}, what="bench ui")
        bench_ui(as_json=as_json)
    elif dashboard:
        _refuse(
            given,
            allowed={
                "--dashboard",
                "--preset",
                "--steps",
                "--device",
                "--set",
                "--repeats",
                "--side-by-side",
                "--json",
            },
            what="bench dashboard",
        )
        bench_dashboard(
            preset=preset or "cpu",
            steps=steps or DASHBOARD_STEPS,
            device=device,
            set_=set_,
            repeats=repeats or 3,
            side_by_side=side_by_side,
            as_json=as_json,
        )
    else:
        _refuse(given, allowed={"--preset", "--steps", "--device", "--set", "--json"}, what="bench train")
        bench_train(
            preset=preset or "cpu",
            steps=steps or 5,
            device=device,
            set_=set_,
            memory_limit=None,
            log=[],
            as_json=as_json,
        )


def _refuse(given: list[str], *, allowed: set[str], what: str) -> None:
    from hwm_core.errors import ConfigError

    extra = [name for name in given if name not in allowed]
    if extra:
        raise ConfigError(f"{what} takes no {', '.join(extra)}: see hwm-tui {what} --help")


@bench_app.command("train")
@user_errors
def bench_train(
    preset: str = typer.Option("cpu", "--preset", "-p", help=PRESET_HELP + " `all`: every preset, one after another."),
    steps: int = typer.Option(5, "--steps", min=1, help=STEPS_HELP),
    device: str | None = typer.Option(None, "--device", help="cpu or cuda (default: the preset's)."),
    set_: list[str] = typer.Option([], "--set", help=SET_HELP),
    memory_limit: float | None = typer.Option(
        None,
        "--memory-limit",
        min=0,
        help="Cap CUDA memory at this many GiB (with --preset all: each preset's own budget).",
    ),
    log: list[str] = typer.Option(
        [],
        "--log",
        help="Also time the steps mirrored to tensorboard or wandb (repeatable; W&B offline), side by side "
        "with none, and each one's step time over none's.",
    ),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Time real training steps of a preset: step time, throughput, memory, FLOP/s, compile time.
    A preset that runs out of memory or fails is reported as such; the others still run.
    Exit 1 when any preset did not complete or does not fit its memory budget."""
    from functools import partial

    from hwm_core.config.loading import load_config
    from hwm_core.training.bench import OK, BenchResult, bench_each, bench_presets, run_bench, with_mirror_ratios

    mirrors = mirror_names(log) or []
    # each preset alone, then with each mirror (and with all, when several): side by side
    variants: list[list[str]] = [[]] + [[m] for m in mirrors] + ([mirrors] if len(mirrors) > 1 else [])

    def run_one(name: str, *, variant: list[str]) -> BenchResult:
        limit = memory_limit
        if limit is None and preset == "all":
            limit = load_config(name).memory_budget_gib or None
        return run_bench(
            name,
            steps=steps,
            overrides=device_overrides(device, set_),
            memory_limit_gib=limit if _on_cuda(device) else None,
            mirrors=variant,
        )

    results = []
    for variant in variants:
        results += bench_each(bench_presets(preset), partial(run_one, variant=variant))
    results.sort(key=lambda r: bench_presets(preset).index(r.preset) if r.preset in bench_presets(preset) else 0)
    with_mirror_ratios(results)
    if as_json:
        out = [r.to_json() for r in results]
        print(json.dumps(out if preset == "all" or mirrors else out[0], indent=1))
    else:
        table = Table(title="bench train", show_header=True)
        table.add_column("")
        for r in results:
            name = f"{r.preset}{''.join(' + ' + m for m in r.mirrors)}"
            table.add_column(f"{name}\n{r.device} ({r.precision})" if r.outcome == OK else name)
        table.add_row("outcome", *(_outcome(r) for r in results))
        rows = _BENCH_ROWS if not mirrors else [*_BENCH_ROWS[:5], _MIRROR_ROW, *_BENCH_ROWS[5:]]
        for label, cell in rows:
            table.add_row(label, *(cell(r) if r.outcome == OK else "-" for r in results))
        console.print(table)
    if any(r.outcome != OK or r.fits_budget is False for r in results):
        raise typer.Exit(1)


def _outcome(r) -> str:
    if r.outcome == "ok":
        return "ran" if r.fits_budget is not False else f"ran, OVER its {r.memory_budget_gib:g} GiB budget"
    return f"{r.outcome}: {r.error}"


def _on_cuda(device: str | None) -> bool:
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

    def held(r) -> str:
        if not r.held_memory_bytes:
            return "-"
        text = f"{format_bytes(r.held_memory_bytes)} ({r.held_memory_kind})"
        if r.fits_budget is not None:
            text += f": {'fits' if r.fits_budget else 'OVER'} {r.memory_budget_gib:g} GiB"
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
        ("peak memory", lambda r: f"{format_bytes(r.peak_memory_bytes)} ({r.peak_memory_kind})"),
        ("memory held on the GPU", held),
        ("memory limit", lambda r: f"{r.memory_limit_gib:g} GiB" if r.memory_limit_gib else "none"),
        ("model FLOPs per step", lambda r: f"{r.model_flops_per_step:.3e}"),
        ("achieved FLOP/s", lambda r: f"{r.achieved_flops_per_s:.3e}"),
        ("dense matmul FLOP/s here", lambda r: f"{r.matmul_flops_per_s:.3e}"),
        ("share of matmul FLOP/s", lambda r: f"{r.flops_share:.1%}"),
    ]


_BENCH_ROWS = _bench_rows()
_MIRROR_ROW = (
    "step time / no mirror",
    lambda r: (
        f"{r.step_time_ratio:.3f}" if r.step_time_ratio is not None else ("1 (no mirror)" if not r.mirrors else "-")
    ),
)


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
    device: str | None = typer.Option(None, "--device", help="cpu or cuda (default: the preset's)."),
    set_: list[str] = typer.Option([], "--set", help=SET_HELP),
    repeats: int = typer.Option(3, "--repeats", min=1, help="Runs of each kind (alternating pairs)."),
    side_by_side: bool = typer.Option(
        False,
        "--side-by-side",
        help="Run each pair at the same time, each on a core of its own, and compare the seconds they share.",
    ),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Samples/s headless vs under the dashboard (in tmux), the dashboard's drawing live vs frozen (f)
    in blocks within each run, and key-press-to-screen latency."""
    from ..bench.dashboard import TrainCommand, dashboard_vs_headless
    from ..bench.dashboard import side_by_side as run_side_by_side

    train = TrainCommand(preset, steps, device_overrides(device, set_))
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
