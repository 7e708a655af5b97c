"""plotext's figure as a Rich Text, straight from its character and colour matrices.

textual-plotext asks plotext for an ANSI string and has Rich parse it back: at
200x60 that round trip is about half of a chart's redraw. Reading the matrices
plotext has just built skips both steps and gives the same cells and colours.
"""

from __future__ import annotations

from functools import lru_cache

from rich.style import Style
from rich.text import Text


def figure_text(figure) -> Text:
    """The built figure as Text; falls back to the ANSI route if plotext's insides moved."""
    try:
        figure._set_sizes()
        figure._build_matrix()
        matrix = figure.monitor.matrix
        markers, fore, style, back = matrix.marker, matrix.fullground, matrix.style, matrix.background
    except AttributeError:  # another plotext release: slower, still right
        return Text.from_ansi(figure.build())
    text = Text(no_wrap=True, overflow="crop")
    append = text.append
    for row in range(len(markers) - 1, -1, -1):  # plotext's row 0 is the bottom line
        chars, f, s, b = markers[row], fore[row], style[row], back[row]
        start = 0
        for col in range(1, len(chars) + 1):
            if col == len(chars) or f[col] != f[start] or s[col] != s[start] or b[col] != b[start]:
                append("".join(chars[start:col]), _style(_key(f[start]), _key(s[start]), _key(b[start])))
                start = col
        if row:
            append("\n")
    return text


def _key(color):
    return tuple(color) if isinstance(color, list) else color  # rgb lists are not hashable


@lru_cache(maxsize=512)
def _style(fore, style, back) -> Style:
    import plotext._utility as ut

    ansi = ut.colors_to_ansi(fore, style, back)
    return Text.from_ansi(ansi + "x").spans[0].style if ansi else Style.null()
