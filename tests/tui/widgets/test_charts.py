"""Chart pieces that must stay right while being cheap: series reduction and the
direct plotext-to-Text rendering."""

from __future__ import annotations

import numpy as np
import plotext._figure as plotext_figure
from rich.console import Console
from rich.text import Text

from hwm_tui.widgets.downsample import downsample_last, downsample_minmax
from hwm_tui.widgets.plot_text import _rows_from_ansi, figure_rows, rows_text


def test_minmax_reduction_keeps_a_single_spike_and_drops_nan():
    x = np.arange(60_000, dtype=float)
    y = np.ones_like(x)
    y[31_337] = 500.0
    y[100] = np.nan
    rx, ry = downsample_minmax(x, y, 100)
    assert len(rx) <= 200 and max(ry) == 500.0 and 31_337.0 in rx
    assert not np.isnan(ry).any() and rx == sorted(rx)


def test_last_point_reduction_ends_at_the_newest_point():
    x = np.arange(1, 10_001, dtype=float)
    rx, ry = downsample_last(x, x * 2, 50)
    assert len(rx) == 50 and rx[-1] == 10_000.0 and ry[-1] == 20_000.0 and rx == sorted(rx)


def _cells(text: Text) -> list[tuple[str, str]]:
    console = Console(width=200, color_system="truecolor")
    return [(ch, str(text.get_style_at_offset(console, i))) for i, ch in enumerate(text.plain)]


def test_figure_rows_give_the_cells_and_colours_of_the_ansi_route():
    figure = plotext_figure._figure_class()

    def draw():
        figure.clear_figure()
        figure.plotsize(90, 20)
        figure.frame(True)
        figure.theme("pro")
        rng = np.random.default_rng(0)
        figure.scatter(np.linspace(0, 1, 150).tolist(), rng.random(150).tolist(), marker="braille", color="orange")
        figure.plot([0, 1], [0, 1], marker="braille", color="cyan+")
        figure.horizontal_line(0.5, color="red")
        figure.scatter([0.3], [0.7], marker="●", color=(10, 200, 30))

    draw()
    expected = Text.from_ansi(figure.build())
    draw()
    direct = rows_text(figure_rows(figure))
    assert direct.plain == expected.plain.rstrip("\n")
    assert _cells(direct) == _cells(expected)[: len(direct.plain)]
    # the route taken where plotext's insides have moved gives the same cells too
    draw()
    fallback = rows_text(_rows_from_ansi(figure.build()))
    assert _cells(fallback)[: len(direct.plain)] == _cells(direct)
