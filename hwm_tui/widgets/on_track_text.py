"""A run's verdicts against its preset's loss band, in one line of text."""

from __future__ import annotations

from rich.text import Text

from hwm_core.events.run_state import RunState

from ..style import ON_TRACK_STYLES


def on_track_text(view: RunState) -> Text:
    """e.g. `expected: loss 10.9-11.3 at step 0, ... · on track at step 0 · behind at step 100 (9.71, expected 9-9.5)`;
    empty where the run has no band."""
    track = view.on_track
    text = Text()
    if track.band is None:
        return text
    text.append(f"a healthy run: {track.band.describe()}", style="dim")
    for v in track.verdicts:
        text.append(" · ")
        text.append(f"{v.word} at step {v.step}", style=ON_TRACK_STYLES[v.word])
        if v.word != "on track":
            text.append(f" ({v.loss:.2f}, expected {v.low:g}-{v.high:g})", style="dim")
    return text
