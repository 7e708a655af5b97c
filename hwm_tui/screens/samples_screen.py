"""`s`: what the model predicts for a few fixed val samples, as false-colour images.

Per sample: its context latent frames, then per target frame the truth, the
teacher-forced argmax, a MaskGIT sample, a MaskGIT sample under another sample's
states (does the prediction follow the actions?) and the argmax's errors. FSQ digits 0, 1
and 2 are red, green and blue; in the error map right tokens are grey, wrong ones
red (brighter with more digits wrong). The images are drawn by textual-image: real
pixels where the terminal can show them, half-block characters elsewhere (tmux).

The predictions are files in the run's samples/ folder, written at each validation;
the screen shows the newest and picks up a newer one as training makes it. A run
with none yet can have them made from its latest checkpoint (g).

With a decoder (`hwm-tui data download --decoder`, --decoder PATH, $HWM_DECODER) each
grid is instead the RGB frame it ends on, every prediction decoded with its window;
the decoder is loaded and run in worker threads, and the head says how to get one
when there is none.
"""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Static

from hwm_core.predictions.samples import SampleRecord, accuracy, latest_samples, load_samples, panels
from hwm_core.runs.folder import RunFolder

from .from_worker import show_from_worker

REFRESH_S = 2.0
PANEL_COLUMNS = 32  # a 32x32 latent frame in half-block characters: 32 columns,
PANEL_ROWS = 16  # 16 rows of two pixels each


def _image_widget_class():
    # Imported when first drawn: textual_image asks the terminal what it can show when
    # it is imported, which the app has done before it started (see app.py).
    from textual_image.widget import Image

    return Image


class SamplePanel(Vertical):
    DEFAULT_CSS = f"""
    SamplePanel {{ width: {PANEL_COLUMNS + 2}; height: {PANEL_ROWS + 1}; }}
    SamplePanel > .label {{ height: 1; width: {PANEL_COLUMNS}; color: $text-muted; }}
    SamplePanel > .image {{ width: {PANEL_COLUMNS}; height: {PANEL_ROWS}; }}
    """

    def __init__(self, label: str, rgb) -> None:
        super().__init__()
        self.label, self.rgb = label, rgb

    def compose(self) -> ComposeResult:
        from PIL import Image as PILImage

        yield Static(self.label, classes="label")
        yield _image_widget_class()(PILImage.fromarray(self.rgb, "RGB"), classes="image")


class SamplesScreen(Screen):
    DEFAULT_CSS = """
    SamplesScreen #samples-head { height: auto; padding: 0 1; background: $boost; }
    SamplesScreen #samples-scroll { height: 1fr; }
    SamplesScreen #samples-grid { grid-size: 3; grid-gutter: 0 1; height: auto; padding: 0 1; }
    SamplesScreen #samples-empty { padding: 1 2; color: $text-muted; }
    """

    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("right", "next_sample", "Next sample"),
        Binding("left", "previous_sample", "Previous", show=False),
        Binding("g", "predict", "Predict now"),
        Binding("i", "imagine", "Imagine"),
        Binding("question_mark", "help", "Help"),
    ]

    def __init__(self, run_dir: Path | None, *, run_id: str = "") -> None:
        super().__init__()
        self.folder = RunFolder(run_dir) if run_dir is not None else None
        self.run_id = run_id or (self.folder.id if self.folder else "")
        self.record: SampleRecord | None = None
        self.shown_path: Path | None = None
        self.sample = 0
        self.predicting = False
        self.note = ""
        self.pixels = None  # a WindowPixels once a decoder is loaded
        self.pixels_note = "looking for a decoder…"
        self.decoding = False

    def compose(self) -> ComposeResult:
        yield Static("", id="samples-head")
        with VerticalScroll(id="samples-scroll"):
            yield Static("", id="samples-empty")
            yield Grid(id="samples-grid")
        yield Footer()

    def on_mount(self) -> None:
        self._reload()
        self.set_interval(REFRESH_S, self._reload)
        self._load_pixels()

    @work(thread=True, exclusive=True, group="decoder")
    def _load_pixels(self) -> None:
        from hwm_core.pixels.frames import open_pixels

        show_from_worker(self, self._pixels_loaded, *open_pixels())

    def _pixels_loaded(self, pixels, note: str) -> None:
        self.pixels, self.pixels_note = pixels, note
        if self.record is not None:
            self._show_sample()
        else:
            self._show_head()

    def on_resize(self, event) -> None:
        self.query_one("#samples-grid", Grid).styles.grid_size_columns = max(
            1, (event.size.width - 2) // (PANEL_COLUMNS + 3)
        )

    # ------------------------------------------------------------------ data

    def _reload(self) -> None:
        """Show the newest predictions, if newer than those shown."""
        path = latest_samples(self.folder) if self.folder is not None else None
        if path is None or path == self.shown_path:
            if self.record is None:
                self._show_empty()
            return
        try:
            record = load_samples(path)
        except Exception as exc:  # noqa: BLE001 - a file being replaced, or damaged: say so, keep going
            self.note = f"cannot read {path.name}: {exc}"
            self._show_head()
            return
        self.record, self.shown_path, self.note = record, path, ""
        self.sample = min(self.sample, record.count - 1)
        self._show_sample()

    def _show_empty(self) -> None:
        empty = self.query_one("#samples-empty", Static)
        if self.predicting:
            empty.update("predicting from the latest checkpoint…")
        elif self.folder is None:
            empty.update("This run has no folder to read predictions from.")
        else:
            empty.update(
                "No predictions yet. They are made at each validation (every eval.eval_steps steps, "
                "for eval.sample_count val samples); g makes them now from the latest checkpoint."
            )
        empty.display = True
        self._show_head()

    def _show_head(self) -> None:
        head = Text()
        head.append(f"Samples · run {self.run_id or '-'}", style="bold")
        r = self.record
        if r is not None:
            right = accuracy(r, self.sample)
            head.append(f" · step {r.step} · val sample {r.indices[self.sample]} ({self.sample + 1} of {r.count})")
            head.append(
                f"\ntokens right: argmax {right.argmax:.1%} · MaskGIT {right.maskgit:.1%} "
                f"({r.maskgit_steps} steps, T={r.temperature:g})"
            )
            if right.maskgit_other is not None and r.other_indices is not None:
                head.append(
                    f" · under the states of val sample {r.other_indices[self.sample]}: {right.maskgit_other:.1%}"
                )
            if self.pixels is not None:
                head.append(
                    f"\n{self.pixels_note}: each grid shown by the last frame it covers · errors (tokens): "
                    "grey right, red wrong",
                    style="dim",
                )
            else:
                head.append(
                    "\ncolours: FSQ digits 0 1 2 as red green blue · errors: grey right, red wrong", style="dim"
                )
                head.append(f"\n{self.pixels_note}", style="dim")
            if self.decoding:
                head.append("\ndecoding to RGB…", style="yellow")
        if self.note:
            head.append(f"\n{self.note}", style="yellow")
        self.query_one("#samples-head", Static).update(head)

    def _show_sample(self) -> None:
        assert self.record is not None
        self.query_one("#samples-empty", Static).display = False
        if self.pixels is not None:  # decoding takes seconds on a CPU: a worker draws them
            self.decoding = True
            self._decode(self.record, self.sample, self.pixels)
            self._show_head()
            return
        self._mount(self.record, self.sample, panels(self.record, self.sample))

    @work(thread=True, exclusive=True, group="panels")
    def _decode(self, record: SampleRecord, sample: int, pixels) -> None:
        try:
            shown = panels(record, sample, pixels)
        except (RuntimeError, ValueError) as exc:  # a decoder that fails on real codes: false colours
            show_from_worker(self, self._decode_failed, f"decoding failed ({exc}): false colours")
            return
        show_from_worker(self, self._mount, record, sample, shown)

    def _decode_failed(self, note: str) -> None:
        self.pixels, self.pixels_note, self.decoding = None, note, False
        if self.record is not None:
            self._show_sample()

    def _mount(self, record: SampleRecord, sample: int, shown) -> None:
        if record is not self.record or sample != self.sample:  # moved on meanwhile: its own worker draws it
            return
        self.decoding = False
        grid = self.query_one("#samples-grid", Grid)
        grid.remove_children()
        grid.mount_all([SamplePanel(panel.label, panel.rgb) for panel in shown])
        self._show_head()

    # ------------------------------------------------------------------ keys

    def action_next_sample(self) -> None:
        if self.record is not None and self.record.count > 1:
            self.sample = (self.sample + 1) % self.record.count
            self._show_sample()

    def action_previous_sample(self) -> None:
        if self.record is not None and self.record.count > 1:
            self.sample = (self.sample - 1) % self.record.count
            self._show_sample()

    def action_predict(self) -> None:
        if self.folder is None or self.predicting:
            return
        self.predicting = True
        self.note = ""
        if self.record is None:
            self._show_empty()
        else:
            self.note = "predicting from the latest checkpoint…"
            self._show_head()
        self._predict(self.folder)

    @work(thread=True, exclusive=True, group="predict")
    def _predict(self, folder: RunFolder) -> None:
        # The engine predicts (torch, in this worker thread); the screen only shows the file.
        from hwm_core.errors import UserError
        from hwm_core.predictions.predict import predict_from_checkpoint

        try:
            predict_from_checkpoint(folder)
            note = ""
        except UserError as exc:
            note = str(exc)
        show_from_worker(self, self._predicted, note)

    def _predicted(self, note: str) -> None:
        self.predicting = False
        self.note = note
        self.shown_path = None  # show what was written, even for a step already shown
        self._reload()
        self._show_head()

    def action_imagine(self) -> None:
        if self.folder is not None:
            from ..messages import ShowRollout

            self.post_message(ShowRollout(self.folder.path, self.run_id))

    def action_back(self) -> None:
        self.dismiss()

    def action_help(self) -> None:
        from .help_screen import HelpScreen

        self.app.push_screen(HelpScreen())
