"""What the rollout view shows (`i` in the samples view and in history): a few val spans of a
whole-window run rolled forward under their own states and under another span's, and, on a
synthetic split, a rollout the user steers a window at a time.

The model runs here (the view calls `Imagination.open` and `steer` from a worker thread);
the view draws the `Panel`s and prints the lines this returns, and never touches a tensor.
With a decoder (`pixels`), a panel is the RGB frame its grid ends on, each imagined or true
window decoded whole; decoding is slow on a CPU, so a view asks `panels`, `steer_panels`
from a worker too (decoded windows are kept, stepping back is instant).

Steering: the synthetic generator scrolls its view by two velocity states (rows: linear
velocity, columns: angular velocity, in tokens a frame, `synth.SPEEDS`). A steered window's
17 frames carry the velocity the user set and, for every other state, the last frame's
before it; the model imagines that window after the context as it stands (the true context,
then the windows steered so far), and the window is appended. `follows` is how much of the
imagined grid equals the grid before it moved by the steer's shift (`synth.view_shifts`):
the same reference `imagine` reports as `reference_agreement`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..data.split import (
    ANGULAR_VELOCITY_DIM,
    FRAMES_PER_WINDOW,
    LATENT_FRAME_GROUPS,
    LATENTS_PER_WINDOW,
    LINEAR_VELOCITY_DIM,
)
from ..data.synth import SPEEDS, is_synthetic, shifted_view, view_shifts
from ..errors import DataError
from ..pixels.frames import NO_DECODER, WindowPixels, open_pixels
from .actions import OTHER, OWN, Actions
from .controllability import paired_sample
from .inference import TrainedModel, load_trained, split_path
from .rollout import (
    RolloutOptions,
    SampleRollout,
    context_grids,
    imagine_next_window,
    open_rollout_samples,
    roll_out,
    sample_indices,
)
from .rollout_figures import UNKNOWN, frames_ahead, reference_grids
from .samples import Panel, false_colour

STEER_SPEEDS = tuple(float(s) for s in SPEEDS)  # the generator's velocities: the model saw no others
STEER_WINDOWS = 16  # windows one steered rollout keeps (4.5 s at 30 Hz); the oldest go first
UNKNOWN_RGB = (0, 0, 0)  # a reference token that entered at an edge: nothing to compare with


def grid_colours(codes: np.ndarray) -> np.ndarray:
    """false_colour, with the reference's unknown tokens (entered at an edge) black."""
    rgb = false_colour(np.where(codes == UNKNOWN, 0, codes))
    rgb[codes == UNKNOWN] = UNKNOWN_RGB
    return rgb


def agreement(imagined: np.ndarray, reference: np.ndarray) -> float | None:
    """Share of the tokens the reference knows where the imagined grid equals it (None: it knows none)."""
    known = reference != UNKNOWN
    return float((imagined[known] == reference[known]).mean()) if known.any() else None


def grid_place(grid: int) -> str:
    """Imagined grid `grid` (0-based): its window and the frames it covers after the context."""
    window, inside = divmod(grid, LATENTS_PER_WINDOW)
    start, end = LATENT_FRAME_GROUPS[inside]
    first, last = FRAMES_PER_WINDOW * window + start + 1, FRAMES_PER_WINDOW * window + end
    frames = f"frame {first}" if first == last else f"frames {first}-{last}"
    return f"window {window + 1}, {frames} after the context"


@dataclass
class Steered:
    """A rollout the user steers: the true context, then one window per `steer` call."""

    context: np.ndarray  # [C, 32, 32] the span's true context grids
    states: np.ndarray  # raw [17 x (context windows + steered windows), 25]
    windows: list[np.ndarray] = field(default_factory=list)  # each [3, 32, 32], in order
    velocities: list[tuple[float, float]] = field(default_factory=list)  # (rows, columns) of each window

    @property
    def grids(self) -> np.ndarray:
        """[C + 3 x steered, 32, 32]: the sequence as it stands."""
        return np.concatenate([self.context, *self.windows]) if self.windows else self.context


@dataclass
class GridFigures:
    """One imagined grid's token accuracy: own states, another span's, copy-last, reference."""

    own: float
    other: float | None
    copy_last: float
    reference: float | None
    follows: float | None  # own rollout against the reference (synthetic): does it move as the states say?


class Imagination:
    """A run's rollouts of a few val spans, under own and other states, and their steered rollouts."""

    def __init__(
        self,
        trained: TrainedModel,
        own: list[SampleRollout],
        other: list[SampleRollout],
        *,
        horizon: int,
        total_spans: int,
        synthetic: bool,
        hz: float,
        maskgit_steps: int,
        pixels: WindowPixels | None = None,
        pixels_note: str = NO_DECODER,
    ):
        self.trained, self.horizon, self.own, self.other = trained, horizon, own, other
        self.synthetic, self.hz, self.maskgit_steps = synthetic, hz, maskgit_steps
        self.pixels, self.pixels_note = pixels, pixels_note  # the note: what the panels are, or why not RGB
        # the span each one's "other" states came from: actions.py's pairing, over all the split's spans
        self.other_indices = [paired_sample(r.index, total_spans) for r in own] if other else []
        self.steered: dict[int, Steered] = {}

    @classmethod
    def open(
        cls,
        run: str,
        runs_dir: Path,
        *,
        horizon: int = 4,
        count: int = 4,
        progress: Callable[[str], None] | None = None,
        decoder: str | None = None,
    ) -> Imagination:
        """Loads the run's newest good checkpoint and rolls its first `count` val spans out
        `horizon` windows (MaskGIT at the run's eval.maskgit_steps, temperature 0), under their
        own states and the paired span's, then the decoder (`decoder`, else $HWM_DECODER or the
        Hub cache's; a missing or bad one leaves false colours and says why). Raises UserError
        (one line) for a run that cannot be rolled out, as `imagine` does."""
        say = progress or (lambda _text: None)
        say("loading the newest checkpoint…")
        trained = load_trained(run, runs_dir)
        samples = open_rollout_samples(trained, split_path(trained, None, "val"), horizon)
        steps = trained.config.eval.maskgit_steps
        options = RolloutOptions(horizon=horizon, limit=count, maskgit_steps=steps)
        indices = sample_indices(samples, count)
        rolled: dict[str, list[SampleRollout]] = {}
        for kind in [OWN, OTHER] if len(samples) >= 2 else [OWN]:

            def counted(done: int, total: int, kind: str = kind) -> None:
                say(f"imagining under {kind} states: window {done} of {total}…")

            rolled[kind] = roll_out(trained, samples, indices, Actions(kind), options, progress=counted)
        say("loading the decoder…")
        pixels, note = open_pixels(decoder)
        return cls(
            trained,
            rolled[OWN],
            rolled.get(OTHER, []),
            horizon=horizon,
            total_spans=len(samples),
            synthetic=is_synthetic(samples.split.metadata),
            hz=float(samples.split.metadata.get("hz") or 30),
            maskgit_steps=steps,
            pixels=pixels,
            pixels_note=note,
        )

    @property
    def spans(self) -> int:
        return len(self.own)

    @property
    def grids(self) -> int:
        return LATENTS_PER_WINDOW * self.horizon

    # ------------------------------------------------------------------ the rollouts

    def _shown(self, grids: np.ndarray, grid: int) -> np.ndarray:
        """Grid `grid` of a sequence that starts a window: its last RGB frame, or its false colours."""
        if self.pixels is None:
            return false_colour(grids[grid])
        return self.pixels.grid_frame(grids, grid)

    def panels(self, span: int, grid: int) -> list[Panel]:
        """Span `span`'s grid `grid`: the last context grid, imagined under own and other states, the truth."""
        own = self.own[span]
        out = [
            Panel("context: last grid", self._shown(own.context, len(own.context) - 1)),
            Panel("imagined: own states", self._shown(own.imagined, grid)),
        ]
        if self.other:
            out.append(
                Panel(f"imagined: span {self.other_indices[span]}'s", self._shown(self.other[span].imagined, grid))
            )
        out.append(Panel("true", self._shown(own.truth, grid)))
        return out

    def figures(self, span: int, grid: int) -> GridFigures:
        own = self.own[span]
        truth = own.truth[grid]
        reference = reference_grids(own)[grid] if self.synthetic else None
        return GridFigures(
            own=float((own.imagined[grid] == truth).mean()),
            other=float((self.other[span].imagined[grid] == truth).mean()) if self.other else None,
            copy_last=float((own.context[-1] == truth).mean()),
            reference=float((reference == truth).mean()) if reference is not None else None,
            follows=agreement(own.imagined[grid], reference) if reference is not None else None,
        )

    def seconds_ahead(self, grid: int) -> float:
        return frames_ahead(grid) / self.hz

    # ------------------------------------------------------------------ steering

    def can_steer(self) -> str | None:
        """None, or why this split cannot be steered (one line)."""
        if not self.synthetic:
            return (
                "steering sets the synthetic generator's velocity states: roll out a run on the synthetic "
                "split (the cpu and compression presets' data) to steer it"
            )
        return None

    def steering(self, span: int) -> Steered:
        """Span `span`'s steered rollout, begun from its true context if it has none yet."""
        if span not in self.steered:
            own = self.own[span]
            frames = FRAMES_PER_WINDOW * (len(own.context) // LATENTS_PER_WINDOW)
            self.steered[span] = Steered(context=own.context.copy(), states=own.states[:frames].copy())
        return self.steered[span]

    def start_velocity(self, span: int) -> tuple[float, float]:
        """The velocity of the context's last frame: steering starts by going on as it was."""
        last = self.steering(span).states[-1]
        return float(last[LINEAR_VELOCITY_DIM]), float(last[ANGULAR_VELOCITY_DIM])

    def steer(self, span: int, velocity: tuple[float, float]) -> Steered:
        """Imagines the window after span `span`'s steered sequence with `velocity` (rows,
        columns, tokens a frame) and appends it. Deterministic: MaskGIT at the run's steps,
        temperature 0, seed 0."""
        if self.can_steer() is not None:
            raise DataError(self.can_steer() or "")
        rows, cols = velocity
        if rows not in STEER_SPEEDS or cols not in STEER_SPEEDS:
            raise DataError(f"velocity {velocity}: each must be one of {STEER_SPEEDS} tokens a frame")
        steered = self.steering(span)
        window_states = np.repeat(steered.states[-1:], FRAMES_PER_WINDOW, axis=0)
        window_states[:, LINEAR_VELOCITY_DIM] = rows
        window_states[:, ANGULAR_VELOCITY_DIM] = cols
        c = context_grids(self.trained.config)
        context_frames = FRAMES_PER_WINDOW * (c // LATENTS_PER_WINDOW)
        seen = np.concatenate([steered.states[len(steered.states) - context_frames :], window_states])
        window = imagine_next_window(
            self.trained, steered.grids[-c:], seen, maskgit_steps=self.maskgit_steps, temperature=0.0, seed=0
        )
        steered.windows.append(window)
        steered.velocities.append((float(rows), float(cols)))
        steered.states = np.concatenate([steered.states, window_states])
        if len(steered.windows) > STEER_WINDOWS:  # the oldest steered window becomes context, as a rollout's does
            oldest = steered.windows.pop(0)
            steered.context = np.concatenate([steered.context, oldest])[-c:]
            steered.velocities.pop(0)
            steered.states = steered.states[FRAMES_PER_WINDOW:]
        return steered

    def undo(self, span: int) -> Steered:
        """Drops span `span`'s last steered window (nothing when none is left)."""
        steered = self.steering(span)
        if steered.windows:
            steered.windows.pop()
            steered.velocities.pop()
            steered.states = steered.states[:-FRAMES_PER_WINDOW]
        return steered

    def steer_reference(self, span: int, grid: int) -> np.ndarray:
        """Steered grid `grid` (0-based after the context): the grid before it in the steered
        sequence moved by the shift its steered states encode (unknown edges UNKNOWN)."""
        steered = self.steering(span)
        c = len(steered.context)
        shift = view_shifts(steered.states)[c + grid]
        return shifted_view(steered.grids[c + grid - 1], shift, UNKNOWN)

    def steer_panels(self, span: int, grid: int) -> list[Panel]:
        steered = self.steering(span)
        grids = steered.grids
        c = len(steered.context)
        if not steered.windows:
            return [Panel("context: last grid", self._shown(grids, len(grids) - 1))]
        before = self._shown(grids, c + grid - 1)
        if self.pixels is None:
            moved = grid_colours(self.steer_reference(span, grid))
        else:  # the frame before, moved by the steer's shift in pixels (a token is 8 x 8 of them)
            scale = before.shape[0] // 32
            shift = view_shifts(steered.states)[c + grid] * scale
            moved = shifted_view(before, shift, 0)
        return [
            Panel("the grid before", before),
            Panel("imagined, steered", self._shown(grids, c + grid)),
            Panel("where the steer moves it", moved),
        ]

    def steer_follows(self, span: int, grid: int) -> float | None:
        """Steered grid `grid` against where the steer moves the grid before (its known tokens)."""
        steered = self.steering(span)
        return agreement(steered.grids[len(steered.context) + grid], self.steer_reference(span, grid))

    def steer_stays(self, span: int, grid: int) -> float:
        """Steered grid `grid` against the grid before, unmoved: beside steer_follows, whether the
        model moved the view at all (equal where the steer's shift is zero)."""
        grids = self.steering(span).grids
        c = len(self.steering(span).context)
        return float((grids[c + grid] == grids[c + grid - 1]).mean())
