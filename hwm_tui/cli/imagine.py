"""`hwm-tui imagine`: a run whose target is the next window rolled forward, window by
window, under the actions the user chooses, scored per horizon against the truth."""

from __future__ import annotations

import json
import time
from pathlib import Path

import typer
from rich.table import Table

from .console import console, err_console
from .options import DECODER_HELP, JSON_HELP, NO_PIXELS_HELP, RUNS_DIR_HELP, device_overrides
from .user_errors import user_errors


@user_errors
def imagine(
    run: str = typer.Argument(
        ..., help="Run id, unique prefix or path (its newest good checkpoint), or a checkpoint file."
    ),
    horizon: int = typer.Option(4, "--horizon", min=1, help="Windows to imagine (17 frames each; 4: 2.3 s at 30 Hz)."),
    actions: str = typer.Option(
        "own",
        "--actions",
        help="own (each sample's states), other (another sample's, as evaluate pairs them), zero, or a "
        "float32 [frames, 25] file (.bin as states_*.bin, or .npy) from the first context frame on.",
    ),
    data: str | None = typer.Option(
        None, "--data", help="Val split folder, or 'synthetic' (default: the run's own val split)."
    ),
    limit: int | None = typer.Option(16, "--limit", min=1, help="The first N samples of the split."),
    batch_size: int = typer.Option(16, "--batch-size", min=1, help="Samples per forward pass."),
    maskgit_steps: int = typer.Option(8, "--maskgit-steps", min=1, help="MaskGIT rounds per latent grid (3 a window)."),
    temperature: float = typer.Option(
        0.0, "--temperature", min=0.0, help="MaskGIT sampling temperature (0: each factor's argmax)."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of MaskGIT's draws (the same seed: the same tokens)."),
    out: Path | None = typer.Option(
        None, "--out", help="Write the imagined sequences as a v2.0 split into this new folder."
    ),
    gif: Path | None = typer.Option(
        None,
        "--gif",
        help="Write an animated GIF: context, imagined and true grids of the first 8 samples, a frame per latent grid.",
    ),
    device: str | None = typer.Option(None, "--device", help="cpu or cuda (default: cuda when present)."),
    decoder: str | None = typer.Option(None, "--decoder", help=DECODER_HELP),
    no_pixels: bool = typer.Option(False, "--no-pixels", help=NO_PIXELS_HELP),
    runs_dir: Path | None = typer.Option(None, "--runs-dir", help=RUNS_DIR_HELP),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Roll a run forward: from val samples' context, MaskGIT imagines the next window,
    appends it, drops the oldest window, and goes on for --horizon windows, under the
    chosen actions. Per horizon: token accuracy and CE against the truth, copy-last from
    the last context grid and, on a synthetic split, what the states make predictable
    (the reference) and how much of it the imagined grids follow. Only a run whose target
    is the whole next window can (the compression, 12gb and 24gb presets). With a decoder, also
    PSNR per horizon and at frame 60 after the context (the sampling track's), and a GIF of RGB
    frames."""
    from rich.progress import Progress

    from hwm_core.pixels.frames import command_pixels
    from hwm_core.predictions.actions import parse_actions
    from hwm_core.predictions.imagined_split import check_out_dir, write_imagined_split
    from hwm_core.predictions.inference import load_trained, split_path
    from hwm_core.predictions.rollout import (
        RolloutOptions,
        check_whole_window,
        open_rollout_samples,
        roll_out,
        rollout_report,
        sample_indices,
        span_frames,
    )
    from hwm_core.runs.folder import default_runs_dir

    from ..rollout_gif import check_gif_path, gif_rows, write_gif

    device_overrides(device, [])  # cpu or cuda, or one line
    if out is not None:
        check_out_dir(out.expanduser())  # before any model runs
    if gif is not None:
        check_gif_path(gif.expanduser())
    pixels = command_pixels(decoder, wanted=not no_pixels)  # a bad file: one line, before any model runs
    trained = load_trained(run, default_runs_dir(runs_dir), device=device)
    check_whole_window(trained.config)
    chosen = parse_actions(actions, span_frames(trained.config, horizon))
    samples = open_rollout_samples(trained, split_path(trained, data, "val"), horizon)
    options = RolloutOptions(
        horizon=horizon,
        limit=limit,
        batch_size=batch_size,
        maskgit_steps=maskgit_steps,
        temperature=temperature,
        seed=seed,
    )
    started = time.time()
    with Progress(console=err_console, transient=True, disable=not err_console.is_terminal) as bar:
        task = bar.add_task(f"imagining from step {trained.step}", total=None)
        rollouts = roll_out(
            trained,
            samples,
            sample_indices(samples, limit),
            chosen,
            options,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )
    seconds = time.time() - started
    with Progress(console=err_console, transient=True, disable=not err_console.is_terminal or pixels is None) as bar:
        bar.add_task("decoding to pixels", total=None)
        report = rollout_report(trained, samples, chosen, options, rollouts, seconds=seconds, pixels=pixels)
    if out is not None:
        written = write_imagined_split(
            out,
            rollouts,
            hz=report["hz"],
            imagined_by={k: report[k] for k in ("run", "checkpoint", "step", "actions", "horizon", "seed")},
        )
        report["out"] = str(written)
    if gif is not None:
        width, height, frames = write_gif(
            rollouts, gif.expanduser(), title=f"step {trained.step}, {report['actions']} actions", pixels=pixels
        )
        report["gif"] = {
            "path": str(gif.expanduser()),
            "width": width,
            "height": height,
            "frames": frames,
            "samples": min(len(rollouts), gif_rows(pixels)),  # the rows drawn
            "pixels": pixels is not None,
        }
    if as_json:
        print(json.dumps(report, indent=1))
        return
    console.print(rollout_table(report))
    track = report.get("sampling_track_frame")
    if track is not None:
        console.print(
            f"frame {track['frames_ahead']} after the context (the sampling track's, {track['seconds_ahead']:.1f} s): "
            f"PSNR {track['psnr_db']:.2f} dB imagined, {track['copy_last_psnr_db']:.2f} dB copy-last"
        )
    if gif is not None:
        console.print(f"GIF written to {report['gif']['path']} ({width}x{height}, {frames} frames)", style="dim")
    if out is not None:
        console.print(f"imagined split written to {report['out']}", style="dim")


def rollout_table(report: dict) -> Table:
    """One row a window imagined: how far ahead, and each figure against the truth (80 columns wide)."""
    table = Table(
        title=f"step {report['step']}: {report['samples']} samples of {report['split']} rolled out "
        f"{report['horizon']} windows under {report['actions']} actions",
        caption="frames: ahead of the last context frame (seconds at the split's rate); CE: nats of the "
        "true grid; reference: the last context grid moved by the shift the actions add up to (synthetic "
        "splits); follows: imagined tokens equal to that reference (imagine --json: definitions)",
    )
    pixels = report.get("decoder") is not None
    names = ["window", "frames", "accuracy", "CE", "copy-last", "reference", "follows"]
    names += ["PSNR dB", "copy-last dB"] if pixels else []
    for name in names:
        table.add_column(name, justify="right")
    share = lambda value: "-" if value is None else f"{value:.1%}"  # noqa: E731 - null off a synthetic split
    for w in report["per_window"]:
        table.add_row(
            str(w["horizon"]),
            f"{w['frames_ahead']} ({w['seconds_ahead']:.2f} s)",
            share(w["token_accuracy"]),
            f"{w['ce_nats']:.3f}",
            share(w["copy_last_accuracy"]),
            share(w["reference_accuracy"]),
            share(w["reference_agreement"]),
            *([f"{w['psnr_db']:.2f}", f"{w['copy_last_psnr_db']:.2f}"] if pixels else []),
        )
    if pixels:
        table.caption = f"{table.caption}; PSNR: decoded imagined window against the decoded true one (imagine --json)"
    return table
