"""Predictions scored in pixel space: decoded prediction against decoded truth (PSNR).

A prediction of target grids is decoded as the windows it belongs to: each window is the
true grids before the target in that window (the context part of it) and then the
predicted grids, so a target grid is never decoded alone (the tokenizer is causal in time).
The truth is decoded the same way from the true grids. Copy-last in pixels is the last
context frame (the last frame the last true context grid covers, decoded with its window)
held still over every target frame: what "nothing moves" looks like on screen.

evaluate.py reports the figures per target grid, rollout_figures.py per horizon and at the
sampling track's frame (60 frames after the context's last, 2 s at 30 Hz).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..data.split import LATENTS_PER_WINDOW
from ..pixels.frames import WindowPixels, grid_frames, last_frame, windows_of
from ..pixels.psnr import DEFINITION, PSNR_CAP_DB, frame_psnr

SAMPLING_TRACK_FRAME = 60  # frames after the last context frame: the 1X sampling track's frame 77 after 17
COPY_LAST_DEFINITION = (
    "the last context frame (the last frame the last true context grid covers, decoded with its window) "
    "held still over the target frames"
)
PSNR_DEFINITION = DEFINITION


@dataclass
class TargetPSNR:
    """Per target grid g (in order): PSNR in dB of each of its frames [B, frames g covers]."""

    predicted: list[np.ndarray]
    copy_last: list[np.ndarray]

    def frames(self, which: str = "predicted") -> np.ndarray:
        """[B, target frames]: every target frame in order (the grids tile them)."""
        return np.concatenate(getattr(self, which), axis=1)


def target_psnr(pixels: WindowPixels, truth: np.ndarray, predicted: np.ndarray) -> TargetPSNR:
    """truth codes [B, G, 32, 32] (the context grids, then the true target grids), predicted
    codes [B, Tf, 32, 32] of the last Tf grids -> their frames' PSNR against the truth's.

    Decodes the windows that hold target grids, both ways, and the last context grid's window
    where it holds no target (a context that ends with a window)."""
    truth, predicted = np.asarray(truth), np.asarray(predicted)
    batch, grids = truth.shape[:2]
    first = grids - predicted.shape[1]  # the first target grid
    if first < 1 or grids % LATENTS_PER_WINDOW:
        raise ValueError(f"{grids} grids with {predicted.shape[1]} targets: not whole windows after a context")
    w0 = first // LATENTS_PER_WINDOW  # the first window holding a target
    guess = np.concatenate([truth[:, :first], predicted], axis=1)
    spans = [windows_of(seq[LATENTS_PER_WINDOW * w0 :]) for seq in (*truth, *guess)]
    decoded = pixels.windows(np.concatenate(spans))
    per = len(spans[0])
    true_frames = decoded[: batch * per].reshape(batch, per, *decoded.shape[1:])
    guessed = decoded[batch * per :].reshape(batch, per, *decoded.shape[1:])
    last = first - 1
    if last // LATENTS_PER_WINDOW < w0:  # the context's last window holds no target: decode it
        start = LATENTS_PER_WINDOW * (last // LATENTS_PER_WINDOW)
        still = pixels.windows(truth[:, start : start + LATENTS_PER_WINDOW])[:, last_frame(last)]
    else:
        still = true_frames[:, 0, last_frame(last)]
    predicted_psnr, copy_psnr = [], []
    for g in range(first, grids):
        w, frames = g // LATENTS_PER_WINDOW - w0, list(grid_frames(g))
        true_g = true_frames[:, w, frames]  # [B, f, H, W, 3]
        predicted_psnr.append(frame_psnr(guessed[:, w, frames], true_g))
        copy_psnr.append(frame_psnr(np.broadcast_to(still[:, None], true_g.shape), true_g))
    return TargetPSNR(predicted_psnr, copy_psnr)


def pixel_section(pixels: WindowPixels, predicted: list[float], copy_last: list[float], frames: list[int]) -> dict:
    """evaluate's "pixels" keys from per-grid sums of frame PSNRs and frame counts."""
    n = np.maximum(np.asarray(frames, dtype=np.float64), 1)
    total = max(sum(frames), 1)
    return {
        "psnr_db": float(sum(predicted) / total),
        "psnr_db_per_frame": [float(v) for v in np.asarray(predicted) / n],
        "copy_last_psnr_db": float(sum(copy_last) / total),
        "copy_last_psnr_db_per_frame": [float(v) for v in np.asarray(copy_last) / n],
        "video_frames_scored": [int(f) for f in frames],
        "prediction": "the MaskGIT generation (the maskgit figures' tokens)",
        "definition": PSNR_DEFINITION,
        "cap_db": PSNR_CAP_DB,
        "copy_last_definition": COPY_LAST_DEFINITION,
        "decoder": str(pixels.decoder.path),
        "decoder_device": pixels.decoder.device,
    }
