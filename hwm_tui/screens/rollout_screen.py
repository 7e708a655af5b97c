"""`i` (samples view, history): the run imagined forward, a latent grid at a time.

Per val span: the last context grid, the grids the model imagined under the span's own
states and under another span's, and the true grid, stepping through the H windows of the
rollout (← →). On a synthetic split, `t` steers instead: w a s d set the velocity the next
window's states carry (the generator's own encoding, in tokens a frame), space imagines
that window after the sequence as it stands, backspace takes it back; the view then shows
the grid before, the imagined grid and where the steer says it should have moved, with the
share of tokens that agree. The model runs in a worker thread, in hwm_core.predictions.
imagination; this screen draws its panels (see samples_screen.SamplePanel). With a
decoder the panels are RGB frames, decoded in a worker thread too.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Static

from .from_worker import show_from_worker
from .samples_screen import PANEL_COLUMNS, SamplePanel

if TYPE_CHECKING:  # imported where first used: the module loads torch
    from hwm_core.predictions.imagination import Imagination

HORIZON = 4  # windows imagined: 68 frames, 2.3 s at 30 Hz (imagine's default)
SPANS = 4  # val spans rolled out when the view opens


def _signed(value: float) -> str:
    return f"{value:+.3f}".rstrip("0").rstrip(".") if value else "0"


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


class RolloutScreen(Screen):
    DEFAULT_CSS = """
    RolloutScreen #rollout-head { height: auto; padding: 0 1; background: $boost; }
    RolloutScreen #rollout-scroll { height: 1fr; }
    RolloutScreen #rollout-grid { grid-size: 4; grid-gutter: 0 1; height: auto; padding: 0 1; }
    RolloutScreen #rollout-empty { padding: 1 2; color: $text-muted; }
    """

    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("right", "later", "Next grid"),
        Binding("left", "earlier", "Previous grid", show=False),
        Binding("n", "next_span", "Next span"),
        Binding("p", "previous_span", "Previous span", show=False),
        Binding("t", "toggle_steer", "Steer"),
        Binding("w", "velocity(-1, 0)", "Steer up", show=False),
        Binding("s", "velocity(1, 0)", "Steer down", show=False),
        Binding("a", "velocity(0, -1)", "Steer left", show=False),
        Binding("d", "velocity(0, 1)", "Steer right", show=False),
        Binding("space", "imagine", "Imagine next", show=False),
        Binding("backspace", "undo", "Undo", show=False),
        Binding("question_mark", "help", "Help"),
    ]

    def __init__(
        self, run_dir: Path, *, run_id: str = "", opener: Callable[[Callable[[str], None]], Imagination] | None = None
    ) -> None:
        super().__init__()
        self.run_dir = run_dir
        # what opens the rollouts (given progress lines): the run's checkpoint, or a test's own
        self.opener = opener or self._open_run
        self.run_id = run_id or run_dir.name
        self.imagination: Imagination | None = None  # once open
        self.span = 0
        self.grid = 0  # the imagined grid shown (0-based after the context)
        self.steering = False
        self.velocity = (0.0, 0.0)  # rows, columns: tokens a frame
        self.busy = "opening…"  # what the worker is doing ("" when idle)
        self.decoding = False  # a worker decodes the panels shown to RGB
        self.note = ""

    def compose(self) -> ComposeResult:
        yield Static("", id="rollout-head")
        with VerticalScroll(id="rollout-scroll"):
            yield Static("", id="rollout-empty")
            yield Grid(id="rollout-grid")
        yield Footer()

    def on_mount(self) -> None:
        self._show()
        self._open()

    def on_resize(self, event) -> None:
        self.query_one("#rollout-grid", Grid).styles.grid_size_columns = max(
            1, min(4, (event.size.width - 2) // (PANEL_COLUMNS + 3))
        )

    # ------------------------------------------------------------------ workers

    def _open_run(self, progress: Callable[[str], None]) -> Imagination:
        from hwm_core.predictions.imagination import Imagination

        return Imagination.open(str(self.run_dir), self.run_dir.parent, horizon=HORIZON, count=SPANS, progress=progress)

    @work(thread=True, exclusive=True, group="rollout")
    def _open(self) -> None:
        from hwm_core.errors import UserError

        def progress(text: str) -> None:
            show_from_worker(self, self._progress, text)

        try:
            imagination = self.opener(progress)
        except UserError as exc:
            show_from_worker(self, self._opened, None, str(exc))
            return
        show_from_worker(self, self._opened, imagination, "")

    def _progress(self, text: str) -> None:
        self.busy = text
        if self.imagination is None:
            self.query_one("#rollout-empty", Static).update(text)
        self._show_head()

    def _opened(self, imagination: Imagination | None, note: str) -> None:
        self.imagination, self.busy, self.note = imagination, "", note
        self._show()

    @work(thread=True, exclusive=True, group="steer")
    def _steer(self, span: int, velocity: tuple[float, float]) -> None:
        from hwm_core.errors import UserError

        assert self.imagination is not None
        try:
            steered = self.imagination.steer(span, velocity)
            note = ""
        except UserError as exc:
            steered, note = None, str(exc)
        show_from_worker(self, self._steered, steered, note)

    def _steered(self, steered, note: str) -> None:
        self.busy, self.note = "", note
        if steered is not None:
            self.grid = 3 * len(steered.windows) - 1  # the new window's last grid
        self._show()

    # ------------------------------------------------------------------ drawing

    def _show(self) -> None:
        empty = self.query_one("#rollout-empty", Static)
        grid = self.query_one("#rollout-grid", Grid)
        im = self.imagination
        if im is None:
            empty.update(self.note or self.busy)
            empty.display = True
            grid.remove_children()
            self._show_head()
            return
        empty.display = False
        if im.pixels is not None:  # decoding may take seconds on a CPU: a worker draws them
            self._draw(self._shown_key())
            self._show_head()
            return
        panels = im.steer_panels(self.span, self.grid) if self.steering else im.panels(self.span, self.grid)
        self._mount(self._shown_key(), panels)

    def _shown_key(self) -> tuple:
        """What the panels show: they are mounted only while it is still what the screen is at."""
        im = self.imagination
        steered = len(im.steering(self.span).windows) if im is not None and self.steering else 0
        return (self.span, self.grid, self.steering, steered)

    @work(thread=True, exclusive=True, group="panels")
    def _draw(self, key: tuple) -> None:
        from hwm_core.errors import UserError

        im = self.imagination
        assert im is not None
        span, grid, steering, _ = key
        show_from_worker(self, self._decoding)
        try:
            panels = im.steer_panels(span, grid) if steering else im.panels(span, grid)
        except (UserError, RuntimeError, ValueError) as exc:  # a decoder that fails on real codes
            show_from_worker(self, self._decode_failed, f"decoding failed ({exc}): false colours")
            return
        show_from_worker(self, self._mount, key, panels)

    def _decoding(self) -> None:
        self.decoding = True
        self._show_head()

    def _decode_failed(self, note: str) -> None:
        assert self.imagination is not None
        self.imagination.pixels, self.imagination.pixels_note = None, note
        self.decoding = False
        self._show()

    def _mount(self, key: tuple, panels) -> None:
        self.decoding = False
        if key != self._shown_key():  # the user moved on meanwhile: its own worker draws that
            return
        grid = self.query_one("#rollout-grid", Grid)
        grid.remove_children()
        grid.mount_all([SamplePanel(panel.label, panel.rgb) for panel in panels])
        self._show_head()

    def _show_head(self) -> None:
        head = Text()
        head.append(f"Rollout · run {self.run_id}", style="bold")
        im = self.imagination
        if im is not None:
            head.append(f" · val span {im.own[self.span].index} ({self.span + 1} of {im.spans})")
            if self.steering:
                self._steer_head(head)
            else:
                self._rollout_head(head)
            if im.pixels is not None:
                head.append(f"\n{im.pixels_note}: each grid shown by the last frame it covers", style="dim")
            else:
                head.append("\ncolours: FSQ digits 0 1 2 as red green blue · black: entered at an edge", style="dim")
                head.append(f"\n{im.pixels_note}", style="dim")
        if self.busy and im is not None:
            head.append(f"\n{self.busy}", style="yellow")
        if self.decoding and im is not None:
            head.append("\ndecoding to RGB…", style="yellow")
        if self.note and im is not None:
            head.append(f"\n{self.note}", style="yellow")
        self.query_one("#rollout-head", Static).update(head)

    def _rollout_head(self, head: Text) -> None:
        from hwm_core.predictions.imagination import grid_place

        im = self.imagination
        assert im is not None
        g = self.grid
        head.append(
            f" · grid {g + 1} of {im.grids}: {grid_place(g)} (+{im.seconds_ahead(g):.2f} s)"
            f" · MaskGIT {im.maskgit_steps} steps"
        )
        f = im.figures(self.span, g)
        head.append(f"\ntokens right: own states {_share(f.own)}")
        if f.other is not None:
            head.append(f" · span {im.other_indices[self.span]}'s states {_share(f.other)}")
        head.append(f" · copy-last {_share(f.copy_last)}")
        if f.reference is not None:
            head.append(f" · reference {_share(f.reference)} · moves as its states say: {_share(f.follows)}")
        head.append("\n← → a grid · n a span · t steer it yourself", style="dim")

    def _steer_head(self, head: Text) -> None:
        im = self.imagination
        assert im is not None
        steered = im.steering(self.span)
        rows, cols = self.velocity
        windows = len(steered.windows)
        head.append(f" · steering: {windows} window{'s' if windows != 1 else ''} imagined")
        if windows:
            window_rows, window_cols = steered.velocities[self.grid // 3]
            head.append(
                f" · grid {self.grid + 1} of {3 * windows} (window {self.grid // 3 + 1}, steered rows "
                f"{_signed(window_rows)}, columns {_signed(window_cols)})"
            )
            follows, stays = im.steer_follows(self.span, self.grid), im.steer_stays(self.span, self.grid)
            head.append(f"\nfollows the steer: {_share(follows)} of the tokens its shift keeps in view")
            head.append(f" · unmoved from the grid before: {_share(stays)} (objects and the arm move on their own)")
        head.append(f"\nnext window's velocity: rows {_signed(rows)}, columns {_signed(cols)} tokens a frame")
        head.append("\nw s rows, a d columns · space imagines it · backspace undoes · ← → a grid · t back", style="dim")

    # ------------------------------------------------------------------ keys

    def _shown_grids(self) -> int:
        im = self.imagination
        if im is None:
            return 0
        return 3 * len(im.steering(self.span).windows) if self.steering else im.grids

    def action_later(self) -> None:
        if self._shown_grids():
            self.grid = (self.grid + 1) % self._shown_grids()
            self._show()

    def action_earlier(self) -> None:
        if self._shown_grids():
            self.grid = (self.grid - 1) % self._shown_grids()
            self._show()

    def _to_span(self, step: int) -> None:
        im = self.imagination
        if im is None or im.spans < 2 or self.busy:
            return
        self.span = (self.span + step) % im.spans
        if self.steering:
            self.velocity = im.start_velocity(self.span)
            self.grid = max(0, self._shown_grids() - 1)
        else:
            self.grid = 0
        self._show()

    def action_next_span(self) -> None:
        self._to_span(1)

    def action_previous_span(self) -> None:
        self._to_span(-1)

    def action_toggle_steer(self) -> None:
        im = self.imagination
        if im is None or self.busy:
            return
        why = im.can_steer()
        if why is not None:
            self.note = why
            self._show_head()
            return
        self.steering = not self.steering
        self.note = ""
        if self.steering:
            self.velocity = im.start_velocity(self.span)
            self.grid = max(0, self._shown_grids() - 1)
        else:
            self.grid = 0
        self._show()

    def action_velocity(self, rows: int, cols: int) -> None:
        from hwm_core.predictions.imagination import STEER_SPEEDS

        if not self.steering:
            return

        def stepped(value: float, by: int) -> float:
            at = min(range(len(STEER_SPEEDS)), key=lambda i: abs(STEER_SPEEDS[i] - value))
            return STEER_SPEEDS[max(0, min(len(STEER_SPEEDS) - 1, at + by))]

        self.velocity = (stepped(self.velocity[0], rows), stepped(self.velocity[1], cols))
        self._show_head()

    def action_imagine(self) -> None:
        if not self.steering or self.imagination is None or self.busy:
            return
        self.busy = "imagining the next window…"
        self._show_head()
        self._steer(self.span, self.velocity)

    def action_undo(self) -> None:
        if not self.steering or self.imagination is None or self.busy:
            return
        self.imagination.undo(self.span)
        self.grid = max(0, self._shown_grids() - 1)
        self._show()

    def action_back(self) -> None:
        self.dismiss()

    def action_help(self) -> None:
        from .help_screen import HelpScreen

        self.app.push_screen(HelpScreen())
