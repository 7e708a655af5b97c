"""Reader for a 1X World Model Challenge v2.0 split, memory-mapped and checked.

A split holds `metadata.json` and per shard s a video, states, segment-index and
metadata file, either in sub-folders (the train layout) or flat in the root (the
val layout). Every file's size is checked against its metadata before anything
trains, so a truncated download fails in the first second, naming the file.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DataError
from ..fsq import CODEBOOK_SIZE

FRAMES_PER_WINDOW = 17
LATENTS_PER_WINDOW = 3
TOKENS_SIDE = 32
STATE_DIM = 25
HAND_CLOSURE_DIMS = (21, 22)
LINEAR_VELOCITY_DIM = 23
ANGULAR_VELOCITY_DIM = 24

# The frames of a 17-frame window that each of its 3 latent frames covers: the
# Cosmos tokenizer is causal in time, so latent 0 is frame 0 alone.
LATENT_FRAME_GROUPS = ((0, 1), (1, 9), (9, 17))

NESTED_DIRS = {"video": "videos", "states": "robot_states", "segments": "segment_indices", "metadata": "metadata"}
FILE_NAMES = {
    "video": "video_{s}.bin",
    "states": "states_{s}.bin",
    "segments": "segment_idx_{s}.bin",
    "metadata": "metadata_{s}.json",
}


def shard_file(root: Path, layout: str, kind: str, shard: int) -> Path:
    name = FILE_NAMES[kind].format(s=shard)
    return root / NESTED_DIRS[kind] / name if layout == "nested" else root / name


def video_shape(num_frames: int) -> tuple[int, int, int, int]:
    return (math.ceil(num_frames / FRAMES_PER_WINDOW), LATENTS_PER_WINDOW, TOKENS_SIDE, TOKENS_SIDE)


@dataclass
class Shard:
    index: int
    num_frames: int
    video: np.ndarray  # int32 [ceil(F/17), 3, 32, 32], memory-mapped
    states: np.ndarray  # float32 [F, 25], memory-mapped
    segments: np.ndarray  # int32 [F], memory-mapped

    @property
    def num_windows(self) -> int:
        """Complete 17-frame windows; a shorter last window has no full states."""
        return self.num_frames // FRAMES_PER_WINDOW

    def valid_starts(self, windows: int) -> np.ndarray:
        """First-window indices of samples of `windows` windows that stay in one segment."""
        n = self.num_windows - windows + 1
        if n <= 0:
            return np.zeros(0, dtype=np.int64)
        seg = np.asarray(self.segments[: self.num_windows * FRAMES_PER_WINDOW], dtype=np.int64)
        # cuts[t] = number of segment changes among frames 1..t
        cuts = np.concatenate([[0], np.cumsum(seg[1:] != seg[:-1])])
        starts = np.arange(n, dtype=np.int64) * FRAMES_PER_WINDOW
        ends = starts + windows * FRAMES_PER_WINDOW - 1
        return np.nonzero(cuts[ends] == cuts[starts])[0].astype(np.int64)

    def num_segments(self) -> int:
        seg = np.asarray(self.segments)
        return int(1 + np.count_nonzero(seg[1:] != seg[:-1])) if len(seg) else 0


class Split:
    """A checked, memory-mapped v2.0 split."""

    def __init__(self, root: Path, layout: str, metadata: dict, shards: list[Shard]):
        self.root = root
        self.layout = layout
        self.metadata = metadata
        self.shards = shards
        self.notices: list[str] = []  # said once when training starts; nothing here stops it

    @classmethod
    def open(cls, root: str | Path, *, role: str = "data") -> Split:
        root = Path(root).expanduser()
        flag = "--data" if role == "train" else "--val-data" if role == "val" else "the path"
        if not root.exists():
            raise DataError(
                f"{role} split {root} does not exist: pass {flag} with a 1X v2.0 split "
                "folder (e.g. train_v2.0), or 'synthetic'"
            )
        if not root.is_dir():
            raise DataError(f"{role} split {root} is not a folder: pass the split folder that holds metadata.json")
        meta_path = root / "metadata.json"
        metadata = _read_json(meta_path, "split metadata")
        num_shards = metadata.get("num_shards")
        if "num_shards" not in metadata:
            raise DataError(
                f"{meta_path} has no 'num_shards' field: the split is incomplete or "
                "not a v2.0 split; re-download it or regenerate with `hwm-tui data synth`"
            )
        if isinstance(num_shards, bool) or not isinstance(num_shards, int) or num_shards < 1:
            raise DataError(f"{meta_path}: 'num_shards' must be a positive integer, got {num_shards!r}")
        layout = _layout(root)
        shards = [_open_shard(root, layout, s) for s in range(num_shards)]
        split = cls(root, layout, metadata, shards)
        notice = _num_images_notice(meta_path, metadata, shards)
        if notice:
            split.notices.append(notice)
        return split

    @property
    def num_frames(self) -> int:
        return sum(s.num_frames for s in self.shards)

    @property
    def num_windows(self) -> int:
        return sum(s.num_windows for s in self.shards)

    def sample_index(self, windows: int) -> np.ndarray:
        """[N, 2] (shard, first window) of every valid sample."""
        parts = []
        for shard in self.shards:
            starts = shard.valid_starts(windows)
            parts.append(np.stack([np.full_like(starts, shard.index), starts], axis=1))
        return np.concatenate(parts) if parts else np.zeros((0, 2), dtype=np.int64)

    def check_contents(self) -> None:
        """Scan tokens and states once: codes outside the codebook or non-finite
        states would otherwise surface as an index error or NaN loss hours later."""
        for shard in self.shards:
            video_path = shard_file(self.root, self.layout, "video", shard.index)
            if shard.video.size:
                lo, hi = int(shard.video.min()), int(shard.video.max())
                if lo < 0 or hi >= CODEBOOK_SIZE:
                    bad = lo if lo < 0 else hi
                    raise DataError(
                        f"{video_path} holds token {bad}, outside the codebook "
                        f"0..{CODEBOOK_SIZE - 1}: the file is corrupt or not Cosmos "
                        "DV8x8x8 tokens; re-download or regenerate it"
                    )
            states_path = shard_file(self.root, self.layout, "states", shard.index)
            finite = np.isfinite(shard.states)
            if not finite.all():
                frame = int(np.argwhere(~finite)[0][0])
                raise DataError(
                    f"{states_path} has a NaN or infinite state at frame {frame}: "
                    "fix or drop that shard (re-download or regenerate it)"
                )

    def token_range(self) -> tuple[int, int]:
        los = [int(s.video.min()) for s in self.shards if s.video.size]
        his = [int(s.video.max()) for s in self.shards if s.video.size]
        return (min(los), max(his)) if los else (0, 0)


def _layout(root: Path) -> str:
    """'nested' if any of the train layout's sub-folders is there, and then all must be,
    so a split missing one is named as such rather than read as flat."""
    present = [sub for sub in NESTED_DIRS.values() if (root / sub).is_dir()]
    if not present:
        return "flat"
    for sub in NESTED_DIRS.values():
        if sub not in present:
            raise DataError(
                f"{root / sub}/ is missing: the split keeps its shards in sub-folders "
                f"({', '.join(s + '/' for s in present)} are there) and needs {sub}/ too; "
                "re-download or regenerate it"
            )
    return "nested"


def _num_images_notice(meta_path: Path, metadata: dict, shards: list[Shard]) -> str | None:
    """metadata.json's frame count against the shards'. Only a notice: every shard is
    checked against its own metadata already, and a split's total may be counted
    differently than this reader assumes; refusing real data on that would be worse."""
    num_images = metadata.get("num_images")
    total = sum(shard.num_frames for shard in shards)
    if num_images is None or num_images == total:
        return None
    return (
        f"{meta_path} says num_images = {num_images!r}, but the shards hold {total} frames: "
        "if shards are missing, re-download the split"
    )


def _read_json(path: Path, what: str) -> dict:
    if not path.is_file():
        raise DataError(f"{path} is missing: {what} is needed; the split is incomplete or not a 1X v2.0 split")
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"{path} cannot be read as JSON ({exc}): re-download or regenerate the split") from None
    if not isinstance(value, dict):
        raise DataError(f"{path} must hold a JSON object: re-download or regenerate the split")
    return value


def _open_shard(root: Path, layout: str, s: int) -> Shard:
    meta_path = shard_file(root, layout, "metadata", s)
    meta = _read_json(meta_path, f"metadata of shard {s}")
    frames = meta.get("shard_num_frames")
    if isinstance(frames, bool) or not isinstance(frames, int) or frames < 1:
        raise DataError(
            f"{meta_path}: 'shard_num_frames' must be a positive integer, "
            f"got {frames!r}; re-download or regenerate the split"
        )
    expected = {
        "video": (np.int32, video_shape(frames)),
        "states": (np.float32, (frames, STATE_DIM)),
        "segments": (np.int32, (frames,)),
    }
    arrays = {}
    for kind, (dtype, shape) in expected.items():
        path = shard_file(root, layout, kind, s)
        want = int(np.prod(shape)) * np.dtype(dtype).itemsize
        if not path.is_file():
            raise DataError(
                f"{path} is missing (shard {s} of {root}): the split is incomplete; re-download or regenerate it"
            )
        have = path.stat().st_size
        if have != want:
            state = "truncated" if have < want else "longer than expected"
            raise DataError(
                f"{path} is {state}: {have} bytes, but {meta_path.name} says "
                f"{frames} frames, i.e. {want} bytes; re-download or regenerate it"
            )
        arrays[kind] = np.memmap(path, dtype=dtype, mode="r", shape=shape) if want else np.zeros(shape, dtype=dtype)
    return Shard(
        index=s, num_frames=frames, video=arrays["video"], states=arrays["states"], segments=arrays["segments"]
    )
