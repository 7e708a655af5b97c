"""A trained model rolled forward window by window under chosen actions (`hwm-tui imagine`).

Only a run whose target is a whole window can: `data.future_latents == 3` (one
17-frame window, 3 latent grids) and `data.windows >= 2`, so its context is the
`windows - 1` windows before it (the 12gb/24gb presets, and compression).

A rollout of horizon H starts from a val sample's true context, the first
`windows - 1` windows (C = 3 x (windows - 1) grids), generates the next window's
3 grids with MaskGIT (maskgit.generate), appends them, drops the oldest window and
repeats H times. At each step the model sees the current `windows` windows (the
context as it stands, then the window being generated) with the states of those
windows' frames. The samples are those of a WindowDataset over
`windows - 1 + H` windows: spans of one segment that hold the context and the H
windows it is scored against.

Seeding is evaluate's: samples in the order given, batches of `batch_size`, one
generator a batch seeded `seed + (position of its first sample)`, drawn from
window after window; the same call gives the same tokens. With own actions and
H = 1 the samples, their states and the seeds are evaluate's, so the rollout is
evaluate's MaskGIT prediction of the same samples (tests/core/predictions/test_rollout.py).

A true grid's CE is read off MaskGIT's first round of that grid (maskgit.generate's
`first_round`), where it is fully masked after the sequence as imagined so far: the
figure costs no forward of its own, and at H = 1 its first grid is evaluate's
teacher-forced CE of the first target grid.

API (what a view calls; codes are int32 [grids, 32, 32], states raw float32):

    check_whole_window(config)                     -> None, or ConfigError (one line)
    span_frames(config, horizon)                   -> frames the actions must cover
    samples = open_rollout_samples(trained, path, horizon)      # WindowDataset
    actions = parse_actions("own" | "other" | "zero" | path, span_frames(...))   # actions.py
    rollouts = roll_out(trained, samples, [i, j], actions, RolloutOptions(horizon=4))
        rollouts[k].context [C, 32, 32], .imagined [3H, 32, 32], .truth [3H, 32, 32],
        .states [17 x (windows - 1 + H), 25] (the actions used), .ce_nats [3H]
    imagine_next_window(trained, context [C, 32, 32], raw_states [17 x windows, 25])
        -> the next window's codes [3, 32, 32]: re-imagine it under edited states
    rollout_report(trained, samples, actions, options, rollouts) -> the figures (rollout_figures.py)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..config.schema import Config
from ..data import Split, WindowDataset
from ..data.split import FRAMES_PER_WINDOW, LATENTS_PER_WINDOW, STATE_DIM, TOKENS_SIDE
from ..data.synth import is_synthetic
from ..errors import ConfigError, DataError
from ..model.masked_hwm import token_cross_entropy
from ..pixels.frames import WindowPixels
from ..runtime.device import describe_device
from .actions import Actions, raw_actions
from .inference import TrainedModel
from .maskgit import generate
from .rollout_figures import DEFINITIONS, score

WHOLE_WINDOW_PRESETS = "12gb or compression"  # presets whose target is the next window


@dataclass
class RolloutOptions:
    horizon: int = 4  # windows imagined: 4 x 17 = 68 frames, 2.3 s at 30 Hz
    limit: int | None = 16  # the first N samples in split order; None: all
    batch_size: int = 16  # evaluate's default, so H = 1 draws as evaluate does
    maskgit_steps: int = 8
    temperature: float = 0.0
    seed: int = 0


@dataclass
class SampleRollout:
    """One sample rolled out: codes int32 [grids, 32, 32], states raw float32 [frames, 25]."""

    index: int  # the sample's position in the rollout samples
    context: np.ndarray  # [C, 32, 32] the true context grids it started from
    imagined: np.ndarray  # [3H, 32, 32] what the model imagined after them
    truth: np.ndarray  # [3H, 32, 32] what the split holds there
    states: np.ndarray  # [17 x (windows - 1 + H), 25] the actions used, context frames included
    ce_nats: np.ndarray  # [3H] per grid: the true grid's CE, mean over its tokens (rollout_figures.py)

    @property
    def horizon(self) -> int:
        return len(self.imagined) // LATENTS_PER_WINDOW


def check_whole_window(config: Config) -> None:
    """One line, unless the run's target is the whole next window after a context of windows
    (a config with future_latents = 3 has data.windows >= 2: its validation leaves context)."""
    d = config.data
    if d.future_latents != LATENTS_PER_WINDOW:
        raise ConfigError(
            f"this run cannot be rolled out: its target is not a whole window (data.future_latents = "
            f"{d.future_latents} of {LATENTS_PER_WINDOW} latent frames): roll out a run of a preset whose "
            f"target is the next window, e.g. {WHOLE_WINDOW_PRESETS}"
        )


def context_windows(config: Config) -> int:
    return config.data.windows - 1


def context_grids(config: Config) -> int:
    return LATENTS_PER_WINDOW * context_windows(config)


def span_frames(config: Config, horizon: int) -> int:
    """Frames of a rollout's span from its first context frame: what actions must cover."""
    return FRAMES_PER_WINDOW * (context_windows(config) + horizon)


def open_rollout_samples(trained: TrainedModel, path: Path, horizon: int) -> WindowDataset:
    """Every span of one segment holding the context windows and `horizon` more, checked."""
    check_whole_window(trained.config)
    split = Split.open(path, role="val")
    split.check_contents()
    windows = context_windows(trained.config) + horizon
    if len(split.sample_index(windows)) == 0:
        raise DataError(
            f"val split {split.root} has no span of {windows} windows ({windows * FRAMES_PER_WINDOW} frames: "
            f"{context_windows(trained.config)} of context, {horizon} imagined) in one segment: use a shorter "
            "--horizon or a split with longer segments"
        )
    return WindowDataset(split, windows, trained.stats, role="val")


def _ids(trained: TrainedModel, codes: np.ndarray) -> torch.Tensor:
    """codes [B, G, 32, 32] -> factor ids [B, G, S, F] on the device (as inference.sample_batch)."""
    flat = torch.from_numpy(np.asarray(codes, dtype=np.int64)).flatten(2)
    return trained.factors.codes_to_factors(flat).to(trained.device)


def _codes(trained: TrainedModel, ids: torch.Tensor) -> np.ndarray:
    """factor ids [B, G, S, F] -> codes int32 [B, G, 32, 32]."""
    codes = trained.factors.factors_to_codes(ids).view(*ids.shape[:2], TOKENS_SIDE, TOKENS_SIDE)
    return codes.cpu().numpy().astype(np.int32)


def _next_window(
    trained: TrainedModel,
    context: torch.Tensor,
    states: torch.Tensor,
    *,
    steps: int,
    temperature: float,
    generator: torch.Generator,
    truth: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """context ids [B, C, S, F], normalised states [B, 17 x windows, 25] -> the next window
    [B, 3, S, F] and, given its true ids [B, 3, S, F], each true grid's CE [B, 3] (mean over
    its tokens) from the first MaskGIT round of that grid: fully masked after the context as
    it stands and the grids of this window generated before it, so no forward of its own."""
    ce: list[torch.Tensor] = []

    def score(grid: int, logits: list[torch.Tensor]) -> None:
        assert truth is not None
        token_ce, _ = token_cross_entropy(logits, truth[:, grid])
        ce.append(token_ce.double().mean(dim=1))

    placeholder = context[:, -LATENTS_PER_WINDOW:]  # its values are never read: generate masks the target first
    window = generate(
        trained.model,
        torch.cat([context, placeholder], dim=1),
        states,
        LATENTS_PER_WINDOW,
        mask_ids=trained.factors.mask_ids(),
        steps=steps,
        temperature=temperature,
        generator=generator,
        precision=trained.precision,
        first_round=score if truth is not None else None,
    )
    return window, (torch.stack(ce, dim=1) if truth is not None else None)


@torch.no_grad()
def roll_out(
    trained: TrainedModel,
    samples: WindowDataset,
    indices: list[int],
    actions: Actions,
    options: RolloutOptions,
    progress: Callable[[int, int], None] | None = None,
) -> list[SampleRollout]:
    """Samples `indices` of `samples` (open_rollout_samples over options.horizon) rolled out;
    `progress(done, total)` counts windows imagined (samples x horizon)."""
    check_whole_window(trained.config)
    config, horizon = trained.config, options.horizon
    c, window_frames = context_grids(config), FRAMES_PER_WINDOW * config.data.windows
    if samples.windows != context_windows(config) + horizon:
        raise ValueError(f"samples of {samples.windows} windows, not context + horizon {horizon}")
    was_training = trained.model.training
    trained.model.eval()
    out: list[SampleRollout] = []
    try:
        for first in range(0, len(indices), options.batch_size):
            batch = indices[first : first + options.batch_size]
            raw = np.stack([raw_actions(actions, samples, i) for i in batch])
            states = torch.from_numpy(trained.stats.normalise(raw)).to(trained.device)
            codes = np.stack([samples.get(i)[0] for i in batch])  # [B, C + 3H, 32, 32]
            truth = _ids(trained, codes[:, c:])
            sequence = _ids(trained, codes[:, :c])  # grows by a window a step
            generator = torch.Generator(device=trained.device).manual_seed(options.seed + first)
            ce = []
            for h in range(horizon):
                seen = states[:, FRAMES_PER_WINDOW * h : FRAMES_PER_WINDOW * h + window_frames]
                context = sequence[:, -c:]
                window, window_ce = _next_window(
                    trained,
                    context,
                    seen,
                    steps=options.maskgit_steps,
                    temperature=options.temperature,
                    generator=generator,
                    truth=truth[:, LATENTS_PER_WINDOW * h : LATENTS_PER_WINDOW * (h + 1)],
                )
                assert window_ce is not None
                ce.append(window_ce)
                sequence = torch.cat([sequence, window], dim=1)
                if progress is not None:
                    progress(first * horizon + len(batch) * (h + 1), len(indices) * horizon)
            imagined = _codes(trained, sequence[:, c:])
            grid_ce = torch.cat(ce, dim=1).cpu().numpy()
            for row, index in enumerate(batch):
                out.append(
                    SampleRollout(
                        index=index,
                        context=codes[row, :c].astype(np.int32),
                        imagined=imagined[row],
                        truth=codes[row, c:].astype(np.int32),
                        states=raw[row],
                        ce_nats=grid_ce[row],
                    )
                )
    finally:
        trained.model.train(was_training)
    return out


@torch.no_grad()
def imagine_next_window(
    trained: TrainedModel,
    context: np.ndarray,
    raw_states: np.ndarray,
    *,
    maskgit_steps: int = 8,
    temperature: float = 0.0,
    seed: int = 0,
) -> np.ndarray:
    """The window after `context` (codes [C, 32, 32]) under `raw_states` (raw, [17 x windows, 25]:
    the context's frames, then the new window's) -> its codes int32 [3, 32, 32]: what a view
    calls to imagine a window again under states it edited. Seeded `seed`, so the same call
    gives the same window: roll_out's first window of that sample in a batch of its own."""
    check_whole_window(trained.config)
    c, frames = context_grids(trained.config), FRAMES_PER_WINDOW * trained.config.data.windows
    context = np.asarray(context)
    raw_states = np.asarray(raw_states, dtype=np.float32)
    if context.shape != (c, TOKENS_SIDE, TOKENS_SIDE):
        raise ValueError(f"context of shape {context.shape}, not ({c}, {TOKENS_SIDE}, {TOKENS_SIDE})")
    if raw_states.shape != (frames, STATE_DIM):
        raise ValueError(f"states of shape {raw_states.shape}, not ({frames}, {STATE_DIM})")
    was_training = trained.model.training
    trained.model.eval()
    try:
        window, _ = _next_window(
            trained,
            _ids(trained, context[None]),
            torch.from_numpy(trained.stats.normalise(raw_states[None])).to(trained.device),
            steps=maskgit_steps,
            temperature=temperature,
            generator=torch.Generator(device=trained.device).manual_seed(seed),
        )
    finally:
        trained.model.train(was_training)
    return _codes(trained, window)[0]


def sample_indices(samples: WindowDataset, limit: int | None) -> list[int]:
    """The first `limit` samples in split order, as evaluate takes them."""
    return list(range(len(samples) if limit is None else min(limit, len(samples))))


def rollout_report(
    trained: TrainedModel,
    samples: WindowDataset,
    actions: Actions,
    options: RolloutOptions,
    rollouts: list[SampleRollout],
    *,
    seconds: float = 0.0,
    pixels: WindowPixels | None = None,
) -> dict[str, Any]:
    """Everything `imagine --json` prints: what was rolled out, how, and the figures per horizon
    (PSNR too when `pixels` decodes)."""
    split = samples.split
    hz = split.metadata.get("hz") or 30
    return {
        "checkpoint": str(trained.checkpoint),
        "step": trained.step,
        "run": trained.folder.id if trained.folder is not None else None,
        "split": str(split.root),
        "samples": len(rollouts),
        "sample_indices": [r.index for r in rollouts],
        "actions": actions.label,
        "horizon": options.horizon,
        "windows": trained.config.data.windows,
        "context_windows": context_windows(trained.config),
        "context_grids": context_grids(trained.config),
        "hz": hz,
        "maskgit_steps": options.maskgit_steps,
        "temperature": options.temperature,
        "seed": options.seed,
        "batch_size": options.batch_size,
        "definitions": DEFINITIONS,
        **score(rollouts, hz=hz, synthetic=is_synthetic(split.metadata), pixels=pixels),
        "decoder": str(pixels.decoder.path) if pixels is not None else None,
        "device": describe_device(trained.device),
        "seconds": round(seconds, 1),
    }
