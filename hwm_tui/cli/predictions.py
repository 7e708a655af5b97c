"""`hwm-tui evaluate` and `hwm-tui samples`: what a checkpoint predicts, scored or drawn."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.table import Table

from .console import console, err_console
from .options import DECODER_HELP, JSON_HELP, NO_PIXELS_HELP, RUNS_DIR_HELP, device_overrides
from .user_errors import user_errors


@user_errors
def evaluate(
    run: str = typer.Argument(
        ..., help="Run id, unique prefix or path (its newest good checkpoint), or a checkpoint file."
    ),
    data: str | None = typer.Option(
        None, "--data", help="Val split folder, or 'synthetic' (default: the run's own val split)."
    ),
    train_data: str | None = typer.Option(
        None, "--train-data", help="Train split for the unigram baseline (default: the run's own)."
    ),
    batch_size: int = typer.Option(16, "--batch-size", min=1, help="Samples per forward pass."),
    limit: int | None = typer.Option(None, "--limit", min=1, help="Only the first N valid samples."),
    device: str | None = typer.Option(None, "--device", help="cpu or cuda (default: cuda when present)."),
    maskgit_steps: int = typer.Option(8, "--maskgit-steps", min=1, help="MaskGIT rounds per target frame."),
    temperature: float = typer.Option(
        0.0, "--temperature", min=0.0, help="MaskGIT sampling temperature (0: each factor's argmax)."
    ),
    decoder: str | None = typer.Option(None, "--decoder", help=DECODER_HELP),
    no_pixels: bool = typer.Option(False, "--no-pixels", help=NO_PIXELS_HELP),
    runs_dir: Path | None = typer.Option(None, "--runs-dir", help=RUNS_DIR_HELP),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Score a checkpoint on a whole split: teacher-forced CE and accuracy per target frame, the 1X
    compression track's Top-500 CE beside its published first place, MaskGIT generation,
    controllability (the same under another sample's states), and the uniform, unigram and
    copy-last baselines on the same samples (on a synthetic split also what the states make
    predictable). With a decoder, also PSNR of the decoded MaskGIT generation and of copy-last."""
    from rich.progress import Progress

    from hwm_core.data import Split
    from hwm_core.pixels.frames import command_pixels
    from hwm_core.predictions.evaluate import EvalOptions, factor_unigram
    from hwm_core.predictions.evaluate import evaluate as run_evaluation
    from hwm_core.predictions.evaluation_store import save_evaluation
    from hwm_core.predictions.inference import load_trained, open_samples, split_path
    from hwm_core.runs.folder import default_runs_dir

    device_overrides(device, [])  # cpu or cuda, or one line
    pixels = command_pixels(decoder, wanted=not no_pixels)  # a bad file: one line, before any model runs
    trained = load_trained(run, default_runs_dir(runs_dir), device=device)
    samples = open_samples(trained, split_path(trained, data, "val"))
    train_split = Split.open(split_path(trained, train_data, "train"), role="train")
    options = EvalOptions(batch_size=batch_size, limit=limit, maskgit_steps=maskgit_steps, temperature=temperature)
    with Progress(console=err_console, transient=True, disable=not err_console.is_terminal) as bar:
        task = bar.add_task("unigram of the train split", total=None)
        unigram = factor_unigram(train_split, trained.factors)
        bar.update(task, description=f"evaluating step {trained.step}", total=1)
        result = run_evaluation(
            trained,
            samples,
            unigram,
            options,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
            pixels=pixels,
        )
    saved = save_evaluation(trained.folder, result) if trained.folder is not None else None
    if as_json:
        print(json.dumps(result, indent=1))
        return
    console.print(evaluation_table(result))
    if saved is not None:
        console.print(f"saved to {saved}", style="dim")


def evaluation_table(result: dict) -> Table:
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
    top = result.get("top_k_ce")  # absent from evaluations kept before it was measured
    if top is not None:
        k, top_base = top["k"], top["baselines"]
        row(
            f"Top-{k} CE (nats; published first place {top['published_first_place_ce_nats']:.4f})",
            top["ce_nats"],
            top["ce_nats_per_frame"],
            "{:.3f}",
        )
        row(f"true code among the Top-{k}", top["inside_fraction"], top["inside_fraction_per_frame"], "{:.1%}")
        row(f"Top-{k} CE, unigram", top_base["unigram_ce_nats"], top_base["unigram_ce_nats_per_frame"], "{:.3f}")
        row(
            f"Top-{k} CE, copy-last (full CE {top_base['copy_last_full_ce_nats']:.3f})",
            top_base["copy_last_ce_nats"],
            top_base["copy_last_ce_nats_per_frame"],
            "{:.3f}",
        )
        row(f"Top-{k} CE, uniform", top_base["uniform_ce_nats"], [top_base["uniform_ce_nats"]] * frames, "{:.3f}")
        table.caption = (
            f"Top-{k} CE: {top['definition']}. Copy-last as a pmf: {top_base['copy_last_definition']}. "
            f"The published figure: {top['published_first_place']}."
        )
    row("token accuracy, argmax", tf["token_accuracy"], tf["token_accuracy_per_frame"], "{:.1%}")
    row(
        f"token accuracy, MaskGIT ({result['maskgit_steps']} steps, T={result['temperature']:g})",
        gen["token_accuracy"],
        gen["token_accuracy_per_frame"],
        "{:.1%}",
    )
    control = result.get("controllability")
    if control is not None:
        row(
            "token accuracy, another sample's states",
            control["other_states_token_accuracy"],
            control["other_states_token_accuracy_per_frame"],
            "{:.1%}",
        )
        table.add_row(
            "controllability: accuracy lost, CE gained",
            f"{control['delta_token_accuracy'] * 100:+.1f} pts, {control['delta_ce_nats']:+.3f} nats",
            *([""] * (frames if frames > 1 else 0)),
        )
    row("copy-last accuracy", base["copy_last_accuracy"], base["copy_last_accuracy_per_frame"], "{:.1%}")
    if "states_shift_accuracy" in base:
        row(
            "what the states make predictable (synthetic: last frame moved by their shift)",
            base["states_shift_accuracy"],
            base["states_shift_accuracy_per_frame"],
            "{:.1%}",
        )
    table.add_row(
        "factor accuracy", " ".join(f"{v:.1%}" for v in tf["factor_accuracy"]), *([""] * (frames if frames > 1 else 0))
    )
    pixels = result.get("pixels")  # null without a decoder, absent from evaluations kept before
    if pixels:
        row("PSNR (dB), MaskGIT decoded", pixels["psnr_db"], pixels["psnr_db_per_frame"], "{:.2f}")
        row(
            "PSNR (dB), copy-last decoded", pixels["copy_last_psnr_db"], pixels["copy_last_psnr_db_per_frame"], "{:.2f}"
        )
        table.caption = (table.caption + " " if table.caption else "") + (
            f"PSNR: {pixels['definition']}; copy-last: {pixels['copy_last_definition']}; decoder {pixels['decoder']}."
        )
    return table


@user_errors
def samples(
    run: str = typer.Argument(
        ..., help="Run id, unique prefix or path (its newest good checkpoint), or a checkpoint file."
    ),
    png: Path = typer.Option(..., "--png", help="Write the panels to this PNG file."),
    data: str | None = typer.Option(
        None, "--data", help="Val split folder, or 'synthetic' (default: the run's own val split)."
    ),
    count: int = typer.Option(4, "--count", min=1, help="Val samples, the first ones validation takes."),
    device: str | None = typer.Option(None, "--device", help="cpu or cuda (default: cuda when present)."),
    maskgit_steps: int = typer.Option(8, "--maskgit-steps", min=1, help="MaskGIT rounds per target frame."),
    temperature: float = typer.Option(0.0, "--temperature", min=0.0, help="MaskGIT sampling temperature."),
    decoder: str | None = typer.Option(None, "--decoder", help=DECODER_HELP),
    no_pixels: bool = typer.Option(
        False, "--no-pixels", help="False colours of the codes even when a decoder is found."
    ),
    runs_dir: Path | None = typer.Option(None, "--runs-dir", help=RUNS_DIR_HELP),
) -> None:
    """Draw what a checkpoint predicts for a few val samples (context, truth, argmax, MaskGIT, errors) as a
    PNG: decoded RGB frames (256 x 256) with a decoder, false colours of the codes without."""
    from hwm_core.data.batches import val_sample_order
    from hwm_core.errors import DataError
    from hwm_core.pixels.frames import command_pixels
    from hwm_core.predictions.inference import load_trained, open_samples, split_path
    from hwm_core.predictions.predict import predict_samples
    from hwm_core.runs.folder import default_runs_dir

    from ..sample_png import write_png

    device_overrides(device, [])
    if png.suffix.lower() != ".png":
        raise DataError(f"--png {png}: give a file name ending in .png")
    pixels = command_pixels(decoder, wanted=not no_pixels)
    trained = load_trained(run, default_runs_dir(runs_dir), device=device)
    val = open_samples(trained, split_path(trained, data, "val"))
    indices = [int(i) for i in val_sample_order(len(val), trained.config.train.seed)[:count]]
    record = predict_samples(
        trained, val, indices, step=trained.step, maskgit_steps=maskgit_steps, temperature=temperature
    )
    name = trained.folder.id if trained.folder is not None else trained.checkpoint.name if trained.checkpoint else run
    try:
        width, height = write_png(
            record,
            png,
            title=f"{name} · step {trained.step} · {val.split.root.name} · "
            f"MaskGIT {maskgit_steps} steps, T={temperature:g}",
            pixels=pixels,
        )
    except OSError as exc:
        raise DataError(f"cannot write {png} ({exc.strerror}): choose a writable path") from None
    how = pixels.description if pixels is not None else "false colours: no decoder (hwm-tui data download --decoder)"
    console.print(f"wrote {png} ({width}x{height}, {len(indices)} samples, {how})")
