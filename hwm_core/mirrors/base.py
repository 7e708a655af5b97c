"""What a mirror is and what it knows about its run (opening one by name: opening.py).

A mirror takes events one at a time on the mirror thread (thread.py) and may be
slow or fail: the thread keeps the training thread from waiting on it and turns
its failure into one warning.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from ..config.schema import MIRRORS
from ..errors import ConfigError
from ..events.types import Event

# The package each mirror needs, and the extra that installs it.
PACKAGES = {"tensorboard": "tensorboard", "wandb": "wandb"}


@dataclass
class MirrorContext:
    run_id: str
    run_dir: Path  # mirrors keep their files under it: tensorboard/, wandb/
    config: dict[str, Any]  # the run's config.toml, as a dict
    start_step: int = 0  # the step the session starts from (a resume's checkpoint)
    resumed: bool = False
    wandb_project: str = "hwm-tui"
    wandb_mode: str | None = None  # None: online with credentials, else offline (wandb_run.wandb_mode)


class Mirror(Protocol):
    name: str
    notices: list[str]  # lines for the user (a resume W&B cannot rewrite); the thread publishes them

    def write(self, event: Event) -> None: ...

    def close(self) -> None: ...


def check_installed(names: list[str]) -> None:
    """Before a run starts: each mirror asked for can be imported (one line if not)."""
    for name in names:
        if name not in MIRRORS:
            raise ConfigError(f"unknown mirror {name!r}: choose {', '.join(MIRRORS)}")
        if importlib.util.find_spec(PACKAGES[name]) is None:
            raise ConfigError(
                f"log.mirrors has {name} but the {PACKAGES[name]} package is not installed: "
                f"pip install 'hwm-tui[{name}]', or train without it (--log none)"
            )
