"""Sequences of latent grids as video frames: a decoder with the windows it decoded kept.

A v2.0 window is 3 latent grids and 17 frames: grid 0 is frame 0, grid 1 frames 1-8, grid 2
frames 9-16 (data.split.LATENT_FRAME_GROUPS). The tokenizer is causal in time, so a grid is
decoded only as part of its whole window: the frames of a prediction's grid come from the
window [the grids before it in its window, then the predicted grids]. Views step back and
forth over the same windows, so decoded windows are kept (the newest KEEP of them).
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict

import numpy as np

from ..data.split import LATENT_FRAME_GROUPS, LATENTS_PER_WINDOW
from ..errors import DataError
from .decoder import GET_IT, Decoder, find_decoder, shared_decoder

KEEP = 64  # decoded windows kept: 3.3 MB each at 256 x 256, about 210 MB in all
NO_DECODER = f"false colours of the token codes: for RGB frames, {GET_IT.removeprefix('get it with: ')}"


def grid_frames(grid: int) -> range:
    """Frames (of its window) that latent grid `grid` (0, 1, 2 within the window) covers."""
    start, end = LATENT_FRAME_GROUPS[grid % LATENTS_PER_WINDOW]
    return range(start, end)


def last_frame(grid: int) -> int:
    """The frame of its window a grid is shown by: the last it covers (0, 8 or 16)."""
    return grid_frames(grid)[-1]


def windows_of(grids: np.ndarray) -> np.ndarray:
    """[3W, 32, 32] grids -> [W, 3, 32, 32] windows (a sequence starts at a window's first grid)."""
    grids = np.asarray(grids)
    if len(grids) % LATENTS_PER_WINDOW:
        raise ValueError(f"{len(grids)} grids are not whole windows of {LATENTS_PER_WINDOW}")
    return grids.reshape(-1, LATENTS_PER_WINDOW, *grids.shape[1:])


def _key(window: np.ndarray) -> bytes:
    return hashlib.blake2b(np.ascontiguousarray(window, dtype=np.int32).tobytes(), digest_size=16).digest()


class WindowPixels:
    """Decodes windows of codes to uint8 frames [17, H, W, 3], keeping the newest KEEP."""

    def __init__(self, decoder: Decoder, keep: int = KEEP):
        self.decoder, self.keep = decoder, keep
        self._kept: OrderedDict[bytes, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def description(self) -> str:
        return f"decoded by {self.decoder.path.name} on {self.decoder.device}"

    def cached(self, window: np.ndarray) -> bool:
        with self._lock:
            return _key(window) in self._kept

    def windows(self, windows: np.ndarray) -> np.ndarray:
        """[N, 3, 32, 32] -> uint8 [N, 17, H, W, 3]; those not kept decoded in one call."""
        windows = np.asarray(windows)
        keys = [_key(w) for w in windows]
        with self._lock:
            missing = [i for i, k in enumerate(keys) if k not in self._kept]
        if missing:
            # the same window twice in one call is decoded once
            first = {keys[i]: i for i in reversed(missing)}
            decoded = self.decoder.decode(windows[list(first.values())])
            with self._lock:
                for k, frames in zip(first, decoded, strict=True):
                    self._kept[k] = frames
        with self._lock:
            out = []
            for k in keys:
                self._kept.move_to_end(k)
                out.append(self._kept[k])
            while len(self._kept) > max(self.keep, len(windows)):
                self._kept.popitem(last=False)
        return np.stack(out)

    def window(self, window: np.ndarray) -> np.ndarray:
        return self.windows(np.asarray(window)[None])[0]

    def sequence(self, grids: np.ndarray) -> np.ndarray:
        """[3W, 32, 32] -> uint8 [17W, H, W, 3]: every window of the sequence, in order."""
        decoded = self.windows(windows_of(grids))
        return decoded.reshape(-1, *decoded.shape[2:])

    def grid_frame(self, grids: np.ndarray, grid: int) -> np.ndarray:
        """The frame latent grid `grid` of the sequence `grids` is shown by (its last), [H, W, 3]."""
        start = LATENTS_PER_WINDOW * (grid // LATENTS_PER_WINDOW)
        return self.window(np.asarray(grids)[start : start + LATENTS_PER_WINDOW])[last_frame(grid)]


def open_pixels(path: str | None = None) -> tuple[WindowPixels | None, str]:
    """For a view: the decoder named, or found in the Hub cache, loaded and checked (slow: call it
    from a worker thread), or None and the line the view shows instead (how to get pixels, or
    what is wrong with the file)."""
    try:
        found = find_decoder(path)
        if found is None:
            return None, NO_DECODER
        decoder = shared_decoder(found)
    except DataError as exc:
        return None, str(exc)
    pixels = WindowPixels(decoder)
    return pixels, f"RGB frames {pixels.description}"


def command_pixels(path: str | None, *, wanted: bool = True) -> WindowPixels | None:
    """For a command: the decoder named (a missing or bad file is one DataError) or found in
    the Hub cache, loaded and checked; None without one, or when not `wanted` (--no-pixels)."""
    if not wanted:
        return None
    found = find_decoder(path)
    return WindowPixels(shared_decoder(found)) if found is not None else None
