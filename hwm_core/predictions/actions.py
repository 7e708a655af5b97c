"""The robot states a rollout is imagined under (`hwm-tui imagine --actions`).

- `own`: each sample's recorded states;
- `other`: the states of the sample evaluate pairs it with (controllability.py:
  half the rollout's spans away, at horizon 1 evaluate's very pairing), so a
  rollout under them shows how far the imagined future follows the actions;
- `zero`: every raw state 0 (the robot stands still, hands open);
- a file: raw float32 [frames, 25] as `states_*.bin` holds them, or a `.npy`
  array, from the rollout's first context frame on; its first frames are used for
  every sample rolled out.

Always raw states, for the whole span (context included, as evaluate replaces a
sample's states whole); the model sees them normalised by the run's StateStats.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..data import WindowDataset
from ..data.split import FRAMES_PER_WINDOW, STATE_DIM
from ..errors import DataError
from .controllability import paired_sample

OWN, OTHER, ZERO, FILE = "own", "other", "zero", "file"
KEYWORDS = (OWN, OTHER, ZERO)
STATE_BYTES = STATE_DIM * np.dtype(np.float32).itemsize  # a frame of a raw states file


@dataclass(frozen=True)
class Actions:
    kind: str  # own, other, zero or file
    path: Path | None = None  # the file's, for kind file
    states: np.ndarray | None = None  # raw float32 [frames, 25] of the file, exactly the span

    @property
    def label(self) -> str:
        return f"{FILE}:{self.path}" if self.kind == FILE else self.kind


def parse_actions(value: str, frames: int) -> Actions:
    """`--actions` checked: a keyword, or a file of at least `frames` frames (read now,
    so a bad one is one line before any model runs). A file named like a keyword: ./own."""
    if value in KEYWORDS:
        return Actions(value)
    path = Path(value).expanduser()
    if not path.exists():
        raise DataError(
            f"--actions {value}: not {', '.join(KEYWORDS)} nor an existing file: give one of those, "
            "or the path of a float32 [frames, 25] states file (.bin as states_*.bin, or .npy)"
        )
    return Actions(FILE, path, read_actions_file(path, frames))


def read_actions_file(path: Path, frames: int) -> np.ndarray:
    """The first `frames` raw states of a .npy array or raw float32 bytes, checked."""
    what = f"actions file {path}"
    try:
        if path.suffix.lower() == ".npy":
            array = np.load(path, allow_pickle=False)  # never unpickle a file given on the command line
        else:
            raw = path.read_bytes()
            if len(raw) % STATE_BYTES:
                raise DataError(
                    f"{what} is {len(raw)} bytes, not a whole number of frames of {STATE_DIM} float32 "
                    f"states ({STATE_BYTES} bytes each): write it as states_*.bin are, or as a .npy [frames, 25]"
                )
            array = np.frombuffer(raw, dtype=np.float32).reshape(-1, STATE_DIM)
    except DataError:
        raise
    except (OSError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise DataError(
            f"cannot read {what} ({reason}): give a readable float32 [frames, 25] .bin or .npy file"
        ) from None
    if array.ndim != 2 or array.shape[1] != STATE_DIM or not np.issubdtype(array.dtype, np.number):
        raise DataError(
            f"{what} holds an array of shape {list(array.shape)} ({array.dtype}): it must be "
            f"[frames, {STATE_DIM}] numbers, one row of robot states a frame"
        )
    if len(array) < frames:
        raise DataError(
            f"{what} holds {len(array)} frames but the rollout spans {frames} (17 per window, its context "
            "and horizon windows) from the first context frame: give a longer file or a shorter --horizon"
        )
    span = np.asarray(array[:frames], dtype=np.float32)
    finite = np.isfinite(span)
    if not finite.all():
        frame = int(np.argwhere(~finite)[0][0])
        raise DataError(f"{what} has a NaN or infinite state at frame {frame}: fix that frame or give another file")
    return span


def raw_actions(actions: Actions, samples: WindowDataset, index: int) -> np.ndarray:
    """The raw states sample `index` of `samples` is rolled out under: float32 [17 x windows, 25]."""
    frames = samples.windows * FRAMES_PER_WINDOW
    if actions.kind == OWN:
        return np.array(samples.raw_states(index), dtype=np.float32)
    if actions.kind == OTHER:
        if len(samples) < 2:
            raise DataError(
                f"--actions other: the split has {len(samples)} sample of this span, none to lend its states: "
                "use own, zero or a file, or a longer split"
            )
        return np.array(samples.raw_states(paired_sample(index, len(samples))), dtype=np.float32)
    if actions.kind == ZERO:
        return np.zeros((frames, STATE_DIM), dtype=np.float32)
    assert actions.states is not None  # a file's, read by parse_actions
    return actions.states[:frames].copy()
