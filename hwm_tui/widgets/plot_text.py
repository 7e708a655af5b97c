"""plotext's figure as rows of styled runs, straight from its character and colour matrices.

textual-plotext asks plotext for an ANSI string and has Rich parse it back, and
Textual then turns that Text into its own Content before cutting it into lines: at
200x60 each of those steps costs as much as drawing the plot. Reading the matrices
plotext has just built gives the same cells and colours with none of them.
"""

from __future__ import annotations

from functools import lru_cache

from rich.console import Console
from rich.style import Style
from rich.text import Text

Row = list[tuple[str, Style]]  # one terminal line: runs of characters that share a style


def figure_rows(figure) -> list[Row]:
    """The built figure, top line first; falls back to the ANSI route if plotext's insides moved."""
    try:
        figure._set_sizes()
        figure._build_matrix()
        matrix = figure.monitor.matrix
        markers, fore, style, back = matrix.marker, matrix.fullground, matrix.style, matrix.background
    except AttributeError:  # another plotext release: slower, still right
        return _rows_from_ansi(figure.build())
    rows = []
    for row in range(len(markers) - 1, -1, -1):  # plotext's row 0 is the bottom line
        chars, f, s, b = markers[row], fore[row], style[row], back[row]
        runs, start = [], 0
        for col in range(1, len(chars) + 1):
            if col == len(chars) or f[col] != f[start] or s[col] != s[start] or b[col] != b[start]:
                runs.append(("".join(chars[start:col]), _style(_key(f[start]), _key(s[start]), _key(b[start]))))
                start = col
        rows.append(runs)
    return rows


def rows_text(rows: list[Row]) -> Text:
    """The rows as one Rich Text (tests compare it with plotext's own ANSI output)."""
    text = Text(no_wrap=True, overflow="crop")
    for n, row in enumerate(rows):
        if n:
            text.append("\n")
        for chars, style in row:
            text.append(chars, style)
    return text


def _rows_from_ansi(ansi: str) -> list[Row]:
    console = Console(color_system="truecolor", width=10_000)
    return [
        [(seg.text, seg.style or Style.null()) for seg in line.render(console)]
        for line in Text.from_ansi(ansi).split("\n")
    ]


def _key(color):
    return tuple(color) if isinstance(color, list) else color  # rgb lists are not hashable


@lru_cache(maxsize=512)
def _style(fore, style, back) -> Style:
    import plotext._utility as ut

    ansi = ut.colors_to_ansi(fore, style, back)
    style = Text.from_ansi(ansi + "x").spans[0].style if ansi else Style.null()
    return Style.parse(style) if isinstance(style, str) else style
