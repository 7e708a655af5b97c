"""The band a run is judged against (events/on_track.py): its preset's `[expected]`
section, when the run trains on the kind of data the band was measured on."""

from __future__ import annotations

from typing import Any

from ..config.schema import Config
from ..events.on_track import LossBand


def data_kind(train_metadata: dict[str, Any]) -> str:
    """ "synthetic" for a split the built-in generator wrote, "real" for any other."""
    return "synthetic" if train_metadata.get("synthetic") is True else "real"


def expected_band(config: Config, train_metadata: dict[str, Any]) -> LossBand | None:
    """None where the preset names no band, or names one for other data (a band measured on
    the real data says nothing about a synthetic run's loss, and the other way round) or
    for another task (a band measured predicting one latent frame from two says nothing of
    a run that predicts a window from one)."""
    e = config.expected
    if not e.steps or e.data != data_kind(train_metadata):
        return None
    if e.layout and list(e.layout) != [config.data.windows, config.data.future_latents]:
        return None
    return LossBand(
        e.data,
        tuple(int(s) for s in e.steps),
        tuple(float(v) for v in e.loss_low),
        tuple(float(v) for v in e.loss_high),
        e.grad_norm_low,
        e.grad_norm_high,
    )
