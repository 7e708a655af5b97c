"""Messages more than one screen sends to the app (a screen's own are nested in it)."""

from __future__ import annotations

from pathlib import Path

from textual.message import Message


class ShowSamples(Message):
    """s: the samples view of a run (its folder; None when there is none)."""

    def __init__(self, run_dir: Path | None, run_id: str):
        super().__init__()
        self.run_dir = run_dir
        self.run_id = run_id


class ShowRollout(Message):
    """i: the rollout view of a run (its folder): imagined windows, steered on a synthetic split."""

    def __init__(self, run_dir: Path, run_id: str):
        super().__init__()
        self.run_dir = run_dir
        self.run_id = run_id


class CompareRuns(Message):
    """v: the comparison of these runs (their folders, 2 to 8)."""

    def __init__(self, run_dirs: list[Path]):
        super().__init__()
        self.run_dirs = run_dirs
