"""How far a rollout stays right, per horizon: each imagined window (h = 1..H) and
each of its 3 grids, against the truth and the trivial predictors beside it.

All token figures are means over the samples' tokens (1,024 a grid); with a decoder the
PSNR figures are means over the samples' video frames (pixel_figures.py). `DEFINITIONS` is
what `imagine --json` says of them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ..data.split import FRAMES_PER_WINDOW, LATENT_FRAME_GROUPS, LATENTS_PER_WINDOW
from ..data.synth import shifted_view, view_shifts
from ..pixels.frames import WindowPixels
from .pixel_figures import COPY_LAST_DEFINITION, PSNR_DEFINITION, SAMPLING_TRACK_FRAME, target_psnr

if TYPE_CHECKING:
    from .rollout import SampleRollout

DEFINITIONS = {
    "token_accuracy": "share of the true grid's tokens the imagined grid has right (every factor)",
    "ce_nats": (
        "cross-entropy of the true grid (nats, summed over the factors: the joint CE under the factorised "
        "pmf), the grid predicted fully masked in one forward pass after the imagined sequence before it: "
        "the context windows as they stand at that step (true at horizon 1, imagined windows after) and the "
        "grids of the same window MaskGIT generated before it, under the actions used; at horizon 1 grid 1 "
        "it is evaluate's teacher-forced CE of the first target grid"
    ),
    "copy_last_accuracy": "the last true context grid copied to every later grid, scored against the truth",
    "reference_accuracy": (
        "synthetic splits only (else null): the last true context grid moved by the view shift the actions "
        "used add up to since (synth.view_shifts summed over the grids from the context's end to that grid), "
        "entering edges counted wrong: what following those actions predicts of the truth"
    ),
    "reference_agreement": (
        "synthetic splits only (else null): share of the tokens the reference knows (not its entering "
        "edges) where the imagined grid equals it: how far the imagination moves the way the actions used "
        "say, whatever the truth did; under other, zero or a file's actions the figure that tells whether "
        "the model follows them (objects and the arm move on their own, so never 100 %)"
    ),
    "frames_ahead": "frames from the last context frame to the last frame the grid (the window) covers",
    "psnr_db": (
        "with a decoder (else null): PSNR of the decoded imagined window against the decoded true window over "
        f"the frames the grid (the window) covers, {PSNR_DEFINITION}"
    ),
    "copy_last_psnr_db": f"with a decoder (else null): the same for {COPY_LAST_DEFINITION}",
    "sampling_track_frame": (
        f"with a decoder and a horizon that reaches it (else null): PSNR at the frame {SAMPLING_TRACK_FRAME} "
        "frames after the last context frame, the 1X sampling track's frame (77 after a 17-frame context, "
        "2 s at 30 Hz), the imagined and copy-last"
    ),
}
UNKNOWN = -1  # a reference token that entered at an edge: no code is ever -1


def frames_ahead(grid: int) -> int:
    """Imagined grid `grid` (0-based) ends this many frames after the last context frame."""
    window, inside = divmod(grid, LATENTS_PER_WINDOW)
    return FRAMES_PER_WINDOW * window + LATENT_FRAME_GROUPS[inside][1]


def reference_grids(rollout: SampleRollout, fill: int = UNKNOWN) -> np.ndarray:
    """[3H, 32, 32]: the last context grid moved by the shift its actions add up to since."""
    first = len(rollout.context)
    moved = np.cumsum(view_shifts(rollout.states)[first:], axis=0)  # since the last context grid
    return np.stack([shifted_view(rollout.context[-1], shift, fill) for shift in moved])


PIXEL_CHUNK = 4  # samples decoded at a time: 4 x (H + 1 + H) windows of 3.3 MB stay small


def frame_psnr_of(rollouts: list[SampleRollout], pixels: WindowPixels) -> tuple[np.ndarray, np.ndarray]:
    """PSNR of every imagined frame and of copy-last's, [n, 17H] each: frame k is k + 1 after the context."""
    imagined, still = [], []
    for first in range(0, len(rollouts), PIXEL_CHUNK):
        chunk = rollouts[first : first + PIXEL_CHUNK]
        truth = np.stack([np.concatenate([r.context, r.truth]) for r in chunk])
        scored = target_psnr(pixels, truth, np.stack([r.imagined for r in chunk]))
        imagined.append(scored.frames("predicted"))
        still.append(scored.frames("copy_last"))
    return np.concatenate(imagined), np.concatenate(still)


def score(
    rollouts: list[SampleRollout], *, hz: float, synthetic: bool, pixels: WindowPixels | None = None
) -> dict[str, Any]:
    """{"per_window": [...], "per_grid": [...], "sampling_track_frame": ...}: one entry a horizon
    (a grid), stable keys; the PSNR figures null without `pixels`."""
    if not rollouts:
        return {"per_window": [], "per_grid": [], "sampling_track_frame": None}
    truth = np.stack([r.truth for r in rollouts])  # [n, 3H, 32, 32]
    per_token = {
        "token_accuracy": (np.stack([r.imagined for r in rollouts]) == truth).mean(axis=(2, 3)),
        "ce_nats": np.stack([r.ce_nats for r in rollouts]),
        "copy_last_accuracy": (np.stack([r.context[-1:] for r in rollouts]) == truth).mean(axis=(2, 3)),
    }
    known = None  # [n, 3H]: tokens the reference knows, to weigh reference_agreement by
    if synthetic:
        reference = np.stack([reference_grids(r) for r in rollouts])
        imagined = np.stack([r.imagined for r in rollouts])
        per_token["reference_accuracy"] = (reference == truth).mean(axis=(2, 3))
        known = (reference != UNKNOWN).sum(axis=(2, 3))
        agreeing = (reference == imagined).sum(axis=(2, 3))
    grids = truth.shape[1]
    frames = frame_psnr_of(rollouts, pixels) if pixels is not None else None

    def grid_frames_slice(grid_slice: slice) -> slice:
        """The video frames (after the context) of the grids in `grid_slice`."""
        first, last = grid_slice.start, grid_slice.stop - 1
        start = FRAMES_PER_WINDOW * (first // LATENTS_PER_WINDOW) + LATENT_FRAME_GROUPS[first % LATENTS_PER_WINDOW][0]
        end = FRAMES_PER_WINDOW * (last // LATENTS_PER_WINDOW) + LATENT_FRAME_GROUPS[last % LATENTS_PER_WINDOW][1]
        return slice(start, end)

    def entry(h: int, grid_slice: slice, ahead: int, **extra: int) -> dict[str, Any]:
        figures: dict[str, Any] = {name: float(v[:, grid_slice].mean()) for name, v in per_token.items()}
        figures.setdefault("reference_accuracy", None)
        figures["reference_agreement"] = None
        if known is not None and known[:, grid_slice].sum():  # a shift of a whole grid or more leaves none
            figures["reference_agreement"] = float(agreeing[:, grid_slice].sum() / known[:, grid_slice].sum())
        figures["psnr_db"] = figures["copy_last_psnr_db"] = None
        if frames is not None:
            in_view = grid_frames_slice(grid_slice)
            figures["psnr_db"] = float(frames[0][:, in_view].mean())
            figures["copy_last_psnr_db"] = float(frames[1][:, in_view].mean())
        return {"horizon": h, **extra, "frames_ahead": ahead, "seconds_ahead": ahead / hz, **figures}

    per_window = [
        entry(
            h + 1,
            slice(LATENTS_PER_WINDOW * h, LATENTS_PER_WINDOW * (h + 1)),
            frames_ahead(LATENTS_PER_WINDOW * (h + 1) - 1),
        )
        for h in range(grids // LATENTS_PER_WINDOW)
    ]
    per_grid = [
        entry(g // LATENTS_PER_WINDOW + 1, slice(g, g + 1), frames_ahead(g), grid=g % LATENTS_PER_WINDOW + 1)
        for g in range(grids)
    ]
    track = None
    if frames is not None and frames[0].shape[1] >= SAMPLING_TRACK_FRAME:
        k = SAMPLING_TRACK_FRAME - 1  # frame 1 after the context is column 0
        track = {
            "frames_ahead": SAMPLING_TRACK_FRAME,
            "seconds_ahead": SAMPLING_TRACK_FRAME / hz,
            "horizon": k // FRAMES_PER_WINDOW + 1,
            "psnr_db": float(frames[0][:, k].mean()),
            "copy_last_psnr_db": float(frames[1][:, k].mean()),
        }
    return {"per_window": per_window, "per_grid": per_grid, "sampling_track_frame": track}
