"""`hwm-tui imagine --gif`: a rollout as an animated GIF (Pillow).

Each GIF frame holds one row per sample rolled out (the first ROWS), three panels a
row: where the rollout started (the last true context grid), what was imagined at this
point and the truth there. Without a decoder a GIF frame is a latent grid, in the samples
view's false colours (a code's colour is the same everywhere), each token a SCALE x SCALE
block. With one it is a video frame: every one of the 17 frames of each imagined and true
window, decoded a window at a time (256 x 256 RGB), at the split's rate. Written whole or
not at all (atomically), as the run's other files are.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from hwm_core.errors import DataError
from hwm_core.predictions.rollout import SampleRollout
from hwm_core.predictions.samples import false_colour
from hwm_core.runtime.atomic import write_bytes_atomic

if TYPE_CHECKING:
    from hwm_core.pixels.frames import WindowPixels

SCALE = 4  # pixels a token
PANEL = 32 * SCALE
GAP = 8
LABEL = 16  # height of the line over each row's panels
TITLE = 24
BACKGROUND = (18, 18, 18)
TEXT = (225, 225, 225)
PANELS = ("context (last grid)", "imagined", "true")
ROWS = 8  # samples drawn at most: 8 rows are 1,240 pixels high already, more fit no screen
PIXEL_ROWS = 4  # the same with decoded 256 x 256 frames: 4 rows are 1,144 pixels high
FRAME_MS = 400  # a latent grid on screen (it covers 1 or 8 video frames, 5.7 on average at 30 Hz: 190 ms):
# about half speed, slow enough to compare the panels
VIDEO_FRAME_MS = 70  # a decoded video frame: 33 ms is 30 Hz; half speed, as for the grids


def gif_rows(pixels: WindowPixels | None) -> int:
    return PIXEL_ROWS if pixels is not None else ROWS


def gif_size(rows: int, panel: int = PANEL) -> tuple[int, int]:
    """(width, height) in pixels of a GIF of `rows` samples."""
    return (len(PANELS) * (panel + GAP) + GAP, TITLE + rows * (LABEL + panel + GAP))


def check_gif_path(out: Path) -> None:
    """One line, before any model runs, unless a GIF can be written there."""
    if out.is_dir():
        raise DataError(f"--gif {out} is a folder: give the GIF's file name, e.g. {out / 'rollout.gif'}")


def write_gif(
    rollouts: list[SampleRollout], out: Path, *, title: str, pixels: WindowPixels | None = None
) -> tuple[int, int, int]:
    """Writes the GIF of the first rows; returns (width, height, frames): frames = the grids
    imagined (3 a window), or with `pixels` the video frames (17 a window)."""
    if pixels is not None:
        return _write_video_gif(rollouts[:PIXEL_ROWS], out, title=title, pixels=pixels)
    from PIL import Image, ImageDraw

    rollouts = rollouts[:ROWS]
    size = gif_size(len(rollouts))
    grids = len(rollouts[0].imagined)
    frames = []
    for g in range(grids):
        sheet = Image.new("RGB", size, BACKGROUND)
        draw = ImageDraw.Draw(sheet)
        # the counter also keeps every frame distinct: Pillow merges a frame equal to the one before
        draw.text((GAP, 6), f"{title} · grid {g + 1}/{grids} (window {g // 3 + 1})", fill=TEXT)
        for row, rollout in enumerate(rollouts):
            top = TITLE + row * (LABEL + PANEL + GAP)
            for col, (label, codes) in enumerate(
                zip(PANELS, (rollout.context[-1], rollout.imagined[g], rollout.truth[g]), strict=True)
            ):
                left = GAP + col * (PANEL + GAP)
                draw.text((left, top + 2), f"sample {rollout.index}: {label}" if col == 0 else label, fill=TEXT)
                rgb = np.ascontiguousarray(false_colour(np.asarray(codes)))
                sheet.paste(
                    Image.fromarray(rgb, "RGB").resize((PANEL, PANEL), Image.Resampling.NEAREST), (left, top + LABEL)
                )
        frames.append(sheet)
    # GIF holds 256 colours a frame: Pillow quantises each, so near false colours may merge
    _save(frames, out, FRAME_MS)
    return (*size, len(frames))


def _save(frames: list, out: Path, duration_ms: int) -> None:
    encoded = io.BytesIO()
    frames[0].save(encoded, format="GIF", save_all=True, append_images=frames[1:], duration=duration_ms, loop=0)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(out, encoded.getvalue())


def _write_video_gif(
    rollouts: list[SampleRollout], out: Path, *, title: str, pixels: WindowPixels
) -> tuple[int, int, int]:
    """A GIF frame per decoded video frame: the last context frame, the imagined and the true frame."""
    from PIL import Image, ImageDraw

    from hwm_core.pixels.frames import last_frame

    rows = []
    for r in rollouts:  # decoded whole windows: context's last, then H imagined and H true windows
        start = len(r.context) - 3
        still = pixels.window(r.context[start:])[last_frame(len(r.context) - 1)]
        rows.append((r.index, still, pixels.sequence(r.imagined), pixels.sequence(r.truth)))
    panel = max(rows[0][1].shape[:2])
    size = gif_size(len(rows), panel)
    count = len(rows[0][2])
    frames = []
    for k in range(count):
        sheet = Image.new("RGB", size, BACKGROUND)
        draw = ImageDraw.Draw(sheet)
        draw.text((GAP, 6), f"{title} · frame {k + 1}/{count} after the context (window {k // 17 + 1})", fill=TEXT)
        for row, (index, still, imagined, truth) in enumerate(rows):
            top = TITLE + row * (LABEL + panel + GAP)
            for col, (label, rgb) in enumerate(zip(PANELS, (still, imagined[k], truth[k]), strict=True)):
                left = GAP + col * (panel + GAP)
                draw.text((left, top + 2), f"sample {index}: {label}" if col == 0 else label, fill=TEXT)
                sheet.paste(Image.fromarray(np.ascontiguousarray(rgb), "RGB"), (left, top + LABEL))
        frames.append(sheet)
    _save(frames, out, VIDEO_FRAME_MS)
    return (*size, len(frames))
