"""`hwm-tui imagine --gif`: a rollout as an animated GIF (Pillow), one frame per latent grid.

Each GIF frame holds one row per sample rolled out (the first ROWS), three panels a
row: the last true context grid (where the rollout started), the grid imagined at this
horizon and the true grid there, in the samples view's false colours (a code's colour
is the same everywhere), each token a SCALE x SCALE block. Written whole or not at all
(atomically), as the run's other files are.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from hwm_core.errors import DataError
from hwm_core.predictions.rollout import SampleRollout
from hwm_core.predictions.samples import false_colour
from hwm_core.runtime.atomic import write_bytes_atomic

SCALE = 4  # pixels a token
PANEL = 32 * SCALE
GAP = 8
LABEL = 16  # height of the line over each row's panels
TITLE = 24
BACKGROUND = (18, 18, 18)
TEXT = (225, 225, 225)
PANELS = ("context (last grid)", "imagined", "true")
ROWS = 8  # samples drawn at most: 8 rows are 1,240 pixels high already, more fit no screen
FRAME_MS = 400  # a latent grid on screen (it covers 1 or 8 video frames, 5.7 on average at 30 Hz: 190 ms):
# about half speed, slow enough to compare the panels


def gif_size(rows: int) -> tuple[int, int]:
    """(width, height) in pixels of a GIF of `rows` samples."""
    return (len(PANELS) * (PANEL + GAP) + GAP, TITLE + rows * (LABEL + PANEL + GAP))


def check_gif_path(out: Path) -> None:
    """One line, before any model runs, unless a GIF can be written there."""
    if out.is_dir():
        raise DataError(f"--gif {out} is a folder: give the GIF's file name, e.g. {out / 'rollout.gif'}")


def write_gif(rollouts: list[SampleRollout], out: Path, *, title: str) -> tuple[int, int, int]:
    """Writes the GIF of the first ROWS samples; returns (width, height, frames): frames = the
    grids imagined (3 a window)."""
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
    encoded = io.BytesIO()
    frames[0].save(encoded, format="GIF", save_all=True, append_images=frames[1:], duration=FRAME_MS, loop=0)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(out, encoded.getvalue())
    return (*size, len(frames))
