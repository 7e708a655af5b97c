"""Opening a mirror by name: the one module that knows every mirror's class.

Apart from base.py (what a mirror is), so each mirror imports base and nothing
imports back: base -> tensorboard_files -> base was a circle.
"""

from __future__ import annotations

from collections.abc import Callable

from ..config.schema import MIRRORS
from ..errors import ConfigError
from .base import Mirror, MirrorContext


def opener(name: str, context: MirrorContext) -> Callable[[], Mirror]:
    """A function that opens the mirror (on the mirror thread: W&B takes a second to start)."""
    if name == "tensorboard":
        from .tensorboard_files import TensorBoardMirror

        return lambda: TensorBoardMirror.for_run(context)
    if name == "wandb":
        from .wandb_run import WandbMirror

        return lambda: WandbMirror(context)
    raise ConfigError(f"unknown mirror {name!r}: choose {', '.join(MIRRORS)}")
