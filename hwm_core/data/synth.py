"""A synthetic split in exactly the v2.0 format, with learnable, action-driven dynamics.

The robot looks at a textured, wrap-around world. Its velocity states scroll the
view (linear velocity: rows, angular velocity: columns) and change at latent-frame
boundaries, so the next latent frame's shift is written in the states and cannot
be read from the context alone. On top: objects that drift at their own constant
speed (learnable from context) and an arm at the bottom whose position follows
joint 0 and whose tip shows hand closure (learnable only from states). Texture
codes are built digit by digit from smooth fields, so the FSQ structure carries
information as it does in real Cosmos codes.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from ..fsq import FSQ_LEVELS, digits_to_codes
from .split import (
    ANGULAR_VELOCITY_DIM,
    FRAMES_PER_WINDOW,
    HAND_CLOSURE_DIMS,
    LATENT_FRAME_GROUPS,
    LINEAR_VELOCITY_DIM,
    NESTED_DIRS,
    STATE_DIM,
    TOKENS_SIDE,
    shard_file,
)

GENERATOR_VERSION = 1
WORLD_SIDE = 256
TEXTURE_SMOOTHNESS = 8.0  # correlation length of the texture, in tokens
DIGIT_SPREAD = 0.45  # std of a digit field, as a share of its half-range
SPEEDS = np.array([-0.25, -0.125, 0.0, 0.125, 0.25])  # tokens per frame: up to 2 a latent frame
KEEP_VELOCITY = 0.5  # chance a velocity carries over into the next latent frame
SEGMENT_FRAMES = (150, 600)
NUM_OBJECTS = 3
OBJECT_SIDE = 4
ARM_ROWS = 3
ARM_WIDTH = 6
HZ = 30


def _smooth_field(rng: np.random.Generator, side: int, length: float) -> np.ndarray:
    """Periodic low-pass noise, so the world wraps around without a seam."""
    noise = rng.standard_normal((side, side))
    freq = np.fft.fftfreq(side)
    radius2 = freq[:, None] ** 2 + freq[None, :] ** 2
    spectrum = np.fft.fft2(noise) * np.exp(-radius2 * (np.pi * length) ** 2)
    return np.real(np.fft.ifft2(spectrum))


def _quantise(field: np.ndarray, levels: int) -> np.ndarray:
    """Round a standardised field to the FSQ levels. Like real FSQ digits (bounded
    tanh outputs), middle values are common and the extremes rare."""
    z = (field - field.mean()) / field.std()
    return np.clip(np.round(z * DIGIT_SPREAD * (levels - 1) / 2 + (levels - 1) / 2), 0, levels - 1).astype(np.int64)


def make_world(rng: np.random.Generator) -> np.ndarray:
    digits = np.stack([_quantise(_smooth_field(rng, WORLD_SIDE, TEXTURE_SMOOTHNESS), n) for n in FSQ_LEVELS], axis=-1)
    return digits_to_codes(digits)


class _Episode:
    """The state of the world within one segment."""

    def __init__(self, rng: np.random.Generator, codes_rng: np.random.Generator):
        self.rng = rng
        self.pos = rng.uniform(0, WORLD_SIDE, size=2)  # camera (row, col)
        self.velocity = rng.choice(SPEEDS, size=2)
        self.joints = rng.uniform(-1, 1, size=21)
        self.hands = rng.integers(0, 2, size=2).astype(np.float64)
        self.obj_pos = rng.integers(0, TOKENS_SIDE - OBJECT_SIDE, size=(NUM_OBJECTS, 2)).astype(np.int64)
        self.obj_vel = rng.choice([-1, 1], size=(NUM_OBJECTS, 2))
        self.obj_codes = codes_rng.integers(0, np.prod(FSQ_LEVELS), size=(NUM_OBJECTS, OBJECT_SIDE, OBJECT_SIDE))

    def new_latent_group(self) -> None:
        """Velocities change only where a latent frame starts."""
        change = self.rng.random(2) > KEEP_VELOCITY
        self.velocity = np.where(change, self.rng.choice(SPEEDS, size=2), self.velocity)

    def step_frame(self) -> np.ndarray:
        self.pos = (self.pos + self.velocity) % WORLD_SIDE
        self.joints = np.clip(self.joints + self.rng.normal(0, 0.03, size=21), -1, 1)
        flip = self.rng.random(2) < 0.01
        self.hands = np.where(flip, 1 - self.hands, self.hands)
        state = np.zeros(STATE_DIM, dtype=np.float32)
        state[:21] = self.joints
        state[HAND_CLOSURE_DIMS[0]], state[HAND_CLOSURE_DIMS[1]] = self.hands
        state[LINEAR_VELOCITY_DIM], state[ANGULAR_VELOCITY_DIM] = self.velocity
        return state

    def move_objects(self) -> None:
        nxt = self.obj_pos + self.obj_vel
        bounce = (nxt < 0) | (nxt > TOKENS_SIDE - OBJECT_SIDE)
        self.obj_vel = np.where(bounce, -self.obj_vel, self.obj_vel)
        self.obj_pos = self.obj_pos + self.obj_vel

    def render(self, world: np.ndarray, arm_codes: np.ndarray) -> np.ndarray:
        rows = (int(self.pos[0]) + np.arange(TOKENS_SIDE)) % WORLD_SIDE
        cols = (int(self.pos[1]) + np.arange(TOKENS_SIDE)) % WORLD_SIDE
        view = world[np.ix_(rows, cols)].copy()
        for (r, c), codes in zip(self.obj_pos, self.obj_codes):
            view[r : r + OBJECT_SIDE, c : c + OBJECT_SIDE] = codes
        # The arm's column follows joint 0; its tip shows whether the left hand is closed.
        arm_col = int(round((self.joints[0] + 1) / 2 * (TOKENS_SIDE - ARM_WIDTH)))
        view[-ARM_ROWS:, arm_col : arm_col + ARM_WIDTH] = arm_codes[0]
        view[-ARM_ROWS, arm_col : arm_col + ARM_WIDTH] = arm_codes[1 + int(self.hands[0])]
        return view


def generate_shard(
    world: np.ndarray, arm_codes: np.ndarray, rng: np.random.Generator, num_frames: int, first_segment: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Returns video [ceil(F/17),3,32,32] int32, states [F,25] f32, segment ids [F] i32."""
    codes_rng = np.random.default_rng(rng.integers(2**63))
    num_windows = -(-num_frames // FRAMES_PER_WINDOW)
    video = np.zeros((num_windows, 3, TOKENS_SIDE, TOKENS_SIDE), dtype=np.int32)
    states = np.zeros((num_frames, STATE_DIM), dtype=np.float32)
    segments = np.zeros(num_frames, dtype=np.int32)
    group_starts = {start for start, _ in LATENT_FRAME_GROUPS}
    group_ends = {end - 1: j for j, (_, end) in enumerate(LATENT_FRAME_GROUPS)}
    segment = first_segment
    episode = _Episode(rng, codes_rng)
    left = int(rng.integers(*SEGMENT_FRAMES))
    for t in range(num_frames):
        if left == 0:
            segment += 1
            episode = _Episode(rng, codes_rng)
            left = int(rng.integers(*SEGMENT_FRAMES))
        left -= 1
        local = t % FRAMES_PER_WINDOW
        if local in group_starts:
            episode.new_latent_group()
        states[t] = episode.step_frame()
        segments[t] = segment
        if local in group_ends:
            episode.move_objects()
            video[t // FRAMES_PER_WINDOW, group_ends[local]] = episode.render(world, arm_codes)
    # A trailing partial window still gets its later latents, as a tokenizer would
    # pad them; we repeat the last rendered view.
    tail = num_frames % FRAMES_PER_WINDOW
    if tail:
        last = video[-1, [j for j, (_, end) in enumerate(LATENT_FRAME_GROUPS) if end - 1 < tail][-1]]
        for j, (_, end) in enumerate(LATENT_FRAME_GROUPS):
            if end - 1 >= tail:
                video[-1, j] = last
    return video, states, segments, segment + 1


def write_split(out: str | Path, *, shards: int = 2, frames: int = 4080, seed: int = 0, flat: bool = False) -> Path:
    """Write a synthetic split; the same arguments always give the same bytes."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    layout = "flat" if flat else "nested"
    if not flat:
        for sub in NESTED_DIRS.values():
            (out / sub).mkdir(exist_ok=True)
    root_seq = np.random.SeedSequence([GENERATOR_VERSION, seed])
    world_seq, arm_seq, *shard_seqs = root_seq.spawn(2 + shards)
    world = make_world(np.random.default_rng(world_seq))
    arm_codes = np.random.default_rng(arm_seq).integers(0, np.prod(FSQ_LEVELS), size=3)
    segment = 0
    for s in range(shards):
        video, states, segments, segment = generate_shard(
            world, arm_codes, np.random.default_rng(shard_seqs[s]), frames, segment
        )
        _write_bytes(shard_file(out, layout, "video", s), video.tobytes())
        _write_bytes(shard_file(out, layout, "states", s), states.tobytes())
        _write_bytes(shard_file(out, layout, "segments", s), segments.tobytes())
        shard_meta = {"shard_num_frames": frames, "shard_ind": s, "hz": HZ}
        _write_bytes(shard_file(out, layout, "metadata", s), (json.dumps(shard_meta, sort_keys=True) + "\n").encode())
    metadata = {
        "num_shards": shards,
        "num_images": shards * frames,
        "hz": HZ,
        "synthetic": True,
        "generator_version": GENERATOR_VERSION,
        "seed": seed,
        "token_dtype": "int32",
        "state_dim": STATE_DIM,
    }
    _write_bytes(out / "metadata.json", (json.dumps(metadata, indent=1, sort_keys=True) + "\n").encode())
    return out


def _write_bytes(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)


# --- What the generator's rule makes predictable -------------------------------------
# evaluate's reference line on a synthetic split: the generator knows how its view
# moves, so the last context latent frame moved by the shift the velocity states
# encode is what a model that follows its actions can reach (objects and the arm
# aside). A reference for the reader, never a training signal.


def is_synthetic(metadata: dict) -> bool:
    """A split this generator wrote (its rule is the one below)."""
    return metadata.get("synthetic") is True and metadata.get("generator_version") == GENERATOR_VERSION


def view_shifts(raw_states: np.ndarray) -> np.ndarray:
    """raw (not normalised) states [17*W, 25] -> [3*W, 2] int: by how many tokens
    (rows, columns) each latent frame's view moved since the latent frame before it:
    the velocities of the frames it spans, summed (they scroll the camera each frame)
    and rounded (the camera's sub-token offset is not in the states)."""
    windows = raw_states.shape[0] // FRAMES_PER_WINDOW
    velocity = raw_states[:, [LINEAR_VELOCITY_DIM, ANGULAR_VELOCITY_DIM]].astype(np.float64)
    shifts = np.zeros((3 * windows, 2), dtype=np.int64)
    for w in range(windows):
        for j, (start, end) in enumerate(LATENT_FRAME_GROUPS):
            moved = velocity[w * FRAMES_PER_WINDOW + start : w * FRAMES_PER_WINDOW + end].sum(axis=0)
            shifts[3 * w + j] = np.floor(moved + 0.5)
    return shifts


def shifted_view(frame: np.ndarray, shift: np.ndarray, fill: int = -1) -> np.ndarray:
    """frame [32, 32] as the camera sees it after moving `shift` (rows, columns): token
    (r, c) is the old (r + dy, c + dx); what enters at the edges is unknown (`fill`).
    Any [rows, cols, ...] array moves the same way (an RGB frame, by pixels)."""
    dy, dx = int(shift[0]), int(shift[1])
    out = np.full_like(frame, fill)
    rows, cols = frame.shape[:2]
    out[max(0, -dy) : rows - max(0, dy), max(0, -dx) : cols - max(0, dx)] = frame[
        max(0, dy) : rows - max(0, -dy), max(0, dx) : cols - max(0, -dx)
    ]
    return out
