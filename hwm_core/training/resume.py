"""Continuing a run: which checkpoint, whether it fits, and the run folder rewound to it.

Everything here is checked before the folder is touched, so a resume that cannot
go on (no readable checkpoint, another model shape, nothing left to train) ends
with one line and leaves the run as it was.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..config.schema import Config
from ..errors import CheckpointError, ConfigError, RunError
from ..events.log import parse_line
from ..runs import checkpoint as ckpt
from ..runs.checkpoint_contents import model_shape, shape_text
from ..runs.folder import RunFolder
from ..runtime.atomic import append_bytes_durable, write_bytes_atomic, write_text_atomic
from .request import TrainRequest, resumed_config


@dataclass
class ResumePoint:
    """A run, the config it continues with and the newest checkpoint that verifies."""

    folder: RunFolder
    config: Config
    checkpoint: ckpt.Checkpoint
    damaged: list[tuple[Path, str]] = field(default_factory=list)  # newer checkpoints passed over, and why

    @property
    def step(self) -> int:
        return self.checkpoint.step

    def notices(self, global_batch: int) -> list[str]:
        out = [
            f"resuming run {self.folder.id} from step {self.step}"
            + (
                f"; set aside newer damaged checkpoints: {'; '.join(why for _, why in self.damaged)}"
                if self.damaged
                else ""
            )
        ]
        before = self.checkpoint.meta.get("global_batch")
        if before and before != global_batch:
            out.append(
                f"the global batch changes from {before} to {global_batch} samples a step: keep "
                "batch_size x grad_accum_steps x processes equal to continue the same run"
            )
        return out


def find_resume_point(request: TrainRequest, folder: RunFolder) -> ResumePoint:
    config = resumed_config(request, folder)
    checkpoint, damaged = ckpt.newest_good(
        folder.checkpoints, folder.id, purpose=" to resume from", to_do="start a new run with the same preset"
    )
    if checkpoint.meta.get("model_shape") != model_shape(config):
        raise CheckpointError(
            f"checkpoint {checkpoint.path.name} is from another model shape "
            f"({shape_text(checkpoint.meta.get('model_shape'))}) than run {folder.id}'s config "
            f"({shape_text(model_shape(config))}): resume with the config it was trained with"
        )
    if config.train.max_steps <= checkpoint.step:
        raise ConfigError(
            f"run {folder.id} has done {checkpoint.step} of train.max_steps = "
            f"{config.train.max_steps} steps: resume with --max-steps above {checkpoint.step} "
            "to train further"
        )
    return ResumePoint(folder, config, checkpoint, damaged)


def rewind_folder(point: ResumePoint, config: Config) -> None:
    """The run folder as it stood at the checkpoint: partial writes gone, damaged
    checkpoints set aside, metrics rewound, the resumed `config` written (as recorded,
    its batch resolved)."""
    folder = point.folder
    try:
        ckpt.remove_partial_writes(folder.checkpoints)
        for path, _ in point.damaged:  # so keep-last-K never counts them as kept checkpoints
            ckpt.set_aside(path)
        rewind_metrics(folder, point.step)
        write_text_atomic(folder.config_toml, config.to_toml())
    except OSError as exc:
        raise RunError(
            f"cannot update run {folder.id} for the resume ({exc.strerror}): free disk "
            "space or check permissions; its files are as they were"
        ) from None


def rewind_metrics(folder: RunFolder, step: int) -> int:
    """Keep the events up to the checkpoint's step, so the resumed run's metrics
    continue without duplicated steps; later lines (and a torn last line) move to
    metrics.rolled_back.jsonl rather than vanish. Returns how many lines moved."""
    try:
        raw = folder.metrics.read_bytes()
    except FileNotFoundError:
        return 0
    keep, moved = [], []
    for line in raw.splitlines(keepends=True):
        event = parse_line(line)
        if event is not None and line.endswith(b"\n") and getattr(event, "step", 0) <= step:
            keep.append(line)
        elif line.strip():
            moved.append(line if line.endswith(b"\n") else line + b"\n")
    if moved:  # on disk before metrics.jsonl loses them
        append_bytes_durable(folder.rolled_back_metrics, b"".join(moved))
    write_bytes_atomic(folder.metrics, b"".join(keep))
    return len(moved)
