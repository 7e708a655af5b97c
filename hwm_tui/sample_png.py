"""`hwm-tui samples --png`: the samples view's panels as one labelled PNG (Pillow).

One row per sample, one column per panel (context frames, then per target frame the
truth, the argmax, the MaskGIT sample, MaskGIT under another sample's states, and the
argmax's errors); each 32x32 latent
frame drawn SCALE times larger, tokens as square blocks.
"""

from __future__ import annotations

from pathlib import Path

from hwm_core.predictions.samples import SampleRecord, accuracy, panels

SCALE = 4  # pixels a token
PANEL = 32 * SCALE
GAP = 8
COLUMN_LABEL = 16  # height of the labels over each row's panels
ROW_LABEL = 150  # width of the labels left of each row
TITLE = 28
BACKGROUND = (18, 18, 18)
TEXT = (225, 225, 225)
DIM = (150, 150, 150)


def png_size(columns: int, rows: int) -> tuple[int, int]:
    """(width, height) in pixels of a sheet of `rows` samples with `columns` panels each."""
    return (ROW_LABEL + columns * (PANEL + GAP) + GAP, TITLE + rows * (COLUMN_LABEL + PANEL + GAP) + GAP)


def write_png(record: SampleRecord, out: Path, *, title: str) -> tuple[int, int]:
    from PIL import Image, ImageDraw

    rows = [panels(record, i) for i in range(record.count)]
    size = png_size(len(rows[0]), len(rows))
    sheet = Image.new("RGB", size, BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    draw.text((GAP, 8), title, fill=TEXT)
    for i, row in enumerate(rows):
        top = TITLE + i * (COLUMN_LABEL + PANEL + GAP)
        right = accuracy(record, i)
        lines = [f"argmax  {right.argmax:.1%}", f"MaskGIT {right.maskgit:.1%}"]
        if right.maskgit_other is not None and record.other_indices is not None:
            lines += [f"other   {right.maskgit_other:.1%}", f"(states of {record.other_indices[i]})"]
        draw.text((GAP, top + COLUMN_LABEL), f"val sample {record.indices[i]}", fill=TEXT)
        for n, line in enumerate([*lines, "tokens right"]):
            draw.text((GAP, top + COLUMN_LABEL + 14 + 12 * n), line, fill=DIM)
        for j, panel in enumerate(row):
            left = ROW_LABEL + j * (PANEL + GAP)
            draw.text((left, top + 2), panel.label, fill=TEXT)
            image = Image.fromarray(panel.rgb, "RGB").resize((PANEL, PANEL), Image.Resampling.NEAREST)
            sheet.paste(image, (left, top + COLUMN_LABEL))
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out, format="PNG")
    return size
