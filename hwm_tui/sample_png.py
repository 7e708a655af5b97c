"""`hwm-tui samples --png`: the samples view's panels as one labelled PNG (Pillow).

One row per sample, one column per panel (context frames, then per target frame the
truth, the argmax, the MaskGIT sample, MaskGIT under another sample's states, and the
argmax's errors); each 32x32 latent
frame drawn SCALE times larger, tokens as square blocks. With a decoder, each grid is
its decoded RGB frame at its own size (256 x 256 for Cosmos DV8x8x8), the error map
scaled to match.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from hwm_core.predictions.samples import SampleRecord, accuracy, panels

if TYPE_CHECKING:
    from hwm_core.pixels.frames import WindowPixels

SCALE = 4  # pixels a token
PANEL = 32 * SCALE  # a false-colour panel; a decoded one keeps its frame's size
GAP = 8
COLUMN_LABEL = 16  # height of the labels over each row's panels
ROW_LABEL = 150  # width of the labels left of each row
TITLE = 28
BACKGROUND = (18, 18, 18)
TEXT = (225, 225, 225)
DIM = (150, 150, 150)


def png_size(columns: int, rows: int, panel: int = PANEL) -> tuple[int, int]:
    """(width, height) in pixels of a sheet of `rows` samples with `columns` panels each."""
    return (ROW_LABEL + columns * (panel + GAP) + GAP, TITLE + rows * (COLUMN_LABEL + panel + GAP) + GAP)


def write_png(record: SampleRecord, out: Path, *, title: str, pixels: WindowPixels | None = None) -> tuple[int, int]:
    from PIL import Image, ImageDraw

    rows = [panels(record, i, pixels) for i in range(record.count)]
    panel = max(rows[0][0].rgb.shape[:2]) if pixels is not None else PANEL
    size = png_size(len(rows[0]), len(rows), panel)
    sheet = Image.new("RGB", size, BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    draw.text((GAP, 8), title, fill=TEXT)
    for i, row in enumerate(rows):
        top = TITLE + i * (COLUMN_LABEL + panel + GAP)
        right = accuracy(record, i)
        lines = [f"argmax  {right.argmax:.1%}", f"MaskGIT {right.maskgit:.1%}"]
        if right.maskgit_other is not None and record.other_indices is not None:
            lines += [f"other   {right.maskgit_other:.1%}", f"(states of {record.other_indices[i]})"]
        draw.text((GAP, top + COLUMN_LABEL), f"val sample {record.indices[i]}", fill=TEXT)
        for n, line in enumerate([*lines, "tokens right"]):
            draw.text((GAP, top + COLUMN_LABEL + 14 + 12 * n), line, fill=DIM)
        for j, shown in enumerate(row):
            left = ROW_LABEL + j * (panel + GAP)
            draw.text((left, top + 2), shown.label, fill=TEXT)
            image = Image.fromarray(shown.rgb, "RGB")
            if image.size != (panel, panel):  # tokens as blocks; a decoded frame stays as it is
                image = image.resize((panel, panel), Image.Resampling.NEAREST)
            sheet.paste(image, (left, top + COLUMN_LABEL))
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out, format="PNG")
    return size
