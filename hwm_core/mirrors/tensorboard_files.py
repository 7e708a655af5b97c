"""The TensorBoard mirror: event files in the run folder's tensorboard/, so
`tensorboard --logdir runs` shows every run beside the others.

A resumed run starts a new event file with a purge step: TensorBoard then hides
whatever an earlier session wrote from that step on (the steps a resume rewinds),
so a resumed run's curves continue and never hold a step twice.
"""

from __future__ import annotations

from pathlib import Path

from ..config.schema import toml_value
from ..events.types import Event, StartEvent
from .base import MirrorContext
from .figures import scalars, text

FLUSH_SECS = 5  # what `tensorboard` shows trails the run by at most this much
FOLDER = "tensorboard"


class TensorBoardMirror:
    name = "tensorboard"

    def __init__(self, log_dir: Path, *, resumed_from: int | None = None, config_toml: str = ""):
        from torch.utils.tensorboard import SummaryWriter

        self.notices: list[str] = []
        self.log_dir = log_dir
        # Events of a resumed session at or before its checkpoint's step (a GPU reading
        # before the first step) would land beside the first session's: they are left out.
        self.after = resumed_from if resumed_from is not None else -1
        purge = resumed_from + 1 if resumed_from is not None else None
        self.writer = SummaryWriter(log_dir=str(log_dir), purge_step=purge, flush_secs=FLUSH_SECS)
        self.config_toml = config_toml

    @classmethod
    def for_run(cls, context: MirrorContext) -> TensorBoardMirror:
        return cls(
            context.run_dir / FOLDER,
            resumed_from=context.start_step if context.resumed else None,
            config_toml=config_text(context.config),
        )

    def write(self, event: Event) -> None:
        step = getattr(event, "step", 0)
        if isinstance(event, StartEvent) and self.config_toml and not event.resumed:
            # indented: TensorBoard's text tab renders markdown, and this keeps the lines as they are
            self.writer.add_text("config", "    " + self.config_toml.replace("\n", "\n    "), step, event.time)
        if step > self.after:
            for tag, value in scalars(event).items():
                self.writer.add_scalar(tag, value, step, walltime=event.time)
        line = text(event)
        if line is not None:
            self.writer.add_text(line[0], line[1], step, walltime=event.time)

    def close(self) -> None:
        self.writer.close()


def config_text(config: dict) -> str:
    """The run's config as `section.key = value` lines, for TensorBoard's text tab."""
    lines = []
    for section, values in config.items():
        if isinstance(values, dict):
            lines += [f"{section}.{key} = {toml_value(value)}" for key, value in values.items()]
        else:
            lines.append(f"{section} = {toml_value(values)}")
    return "\n".join(lines)
