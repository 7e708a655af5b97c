"""The Weights & Biases mirror: the W&B run whose id is the hwm run's id, its config
the run's config.toml, every figure logged at the run's own step.

Without credentials (no WANDB_API_KEY, no `wandb login`) it logs offline, into the
run folder's wandb/, for `wandb sync` later. A resume continues the same W&B run
(resume="allow"). W&B cannot rewrite a run's history: steps it already holds from
before a resume (a run killed between checkpoints) are kept there as they were, and
the resumed session logs from the step after them, so no step is logged twice.
"""

from __future__ import annotations

import netrc
import os
import time
from urllib.parse import urlparse

from ..events.types import Event
from ..runtime.atomic import write_text_atomic
from .base import MirrorContext
from .figures import scalars, text

FOLDER = "wandb"
LAST_STEP_FILE = "hwm-last-step"  # in wandb/: the highest step this run has sent to W&B
SAVE_EVERY_S = 2.0


def wandb_mode() -> str | None:
    """None (W&B decides: WANDB_MODE, else online) when the user set a mode or has
    credentials; "offline" when W&B would otherwise stop to ask for a key."""
    if os.environ.get("WANDB_MODE") or os.environ.get("WANDB_API_KEY"):
        return None
    host = urlparse(os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")).hostname or "api.wandb.ai"
    try:
        if netrc.netrc(os.environ.get("NETRC") or None).authenticators(host):
            return None
    except (OSError, netrc.NetrcParseError):
        pass
    return "offline"


class WandbMirror:
    name = "wandb"

    def __init__(self, context: MirrorContext):
        import wandb

        self.notices: list[str] = []
        self.folder = context.run_dir / FOLDER
        self.folder.mkdir(parents=True, exist_ok=True)
        mode = context.wandb_mode or wandb_mode()
        self.run = wandb.init(
            project=context.wandb_project or None,
            id=context.run_id,
            name=context.run_id,
            config=context.config,
            resume="allow",
            dir=str(context.run_dir),
            mode=mode,  # type: ignore[arg-type]  # None: W&B's own choice
            reinit="create_new",
            settings=wandb.Settings(
                silent=True,
                console="off",  # never capture the dashboard's terminal
                x_disable_stats=True,  # GPU readings come from the run's own events
                disable_git=True,
                save_code=False,
            ),
        )
        held = self._read_last_step()
        # W&B's own count where it knows one (online resume); offline, what this run wrote down.
        self.floor = max(held, int(self.run.step) - 1 if self.run.resumed else -1)
        if context.resumed and self.floor > context.start_step:
            self.notices.append(
                f"W&B run {context.run_id} already holds steps {context.start_step + 1}..{self.floor} from before "
                f"this resume and cannot rewrite them: it keeps those values and continues at step "
                f"{self.floor + 1} (metrics.jsonl and TensorBoard hold the resumed ones)"
            )
        self.last_step = max(self.floor, context.start_step)
        self._saved_at = 0.0

    def write(self, event: Event) -> None:
        step = getattr(event, "step", 0)
        if step <= self.floor:  # W&B holds this step from before a resume
            return
        # W&B steps only go forward: a GPU reading taken just before the step ended rides on it.
        step = max(step, self.last_step)
        row: dict[str, object] = dict(scalars(event))
        line = text(event)
        if line is not None:
            row[line[0]] = line[1]
        if row:
            self.run.log(row, step=step)
        self.last_step = step
        if time.monotonic() - self._saved_at > SAVE_EVERY_S:
            self._save_last_step()

    def close(self) -> None:
        try:
            self.run.finish()
        finally:
            self._save_last_step()

    def _read_last_step(self) -> int:
        try:
            return int((self.folder / LAST_STEP_FILE).read_text().strip())
        except (OSError, ValueError):
            return -1

    def _save_last_step(self) -> None:
        write_text_atomic(self.folder / LAST_STEP_FILE, f"{self.last_step}\n")
        self._saved_at = time.monotonic()
