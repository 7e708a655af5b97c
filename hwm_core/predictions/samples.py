"""What the model predicts for a few fixed val samples, kept as files and drawn as
false-colour images.

At each evaluation the trainer predicts its first `eval.sample_count` val samples
(the same ones every time, in the order validation takes them): each target frame
teacher-forced (argmax) and generated with MaskGIT, and generated once more under
another sample's states (the one evaluate pairs it with), so a reader sees the
prediction move with the actions, or not. The codes go to
`samples/step_XXXXXXXX.safetensors` in the run folder (integers only, no pickle),
which the samples view, `hwm-tui samples --png` and `watch` read. Colours come
from the FSQ digits: digits 0, 1 and 2 (8 levels each) are red, green and blue;
with a decoder (pixels/), each grid is shown by the last RGB frame it covers,
decoded with the window it belongs to (context, then the prediction or the truth).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..fsq import codes_to_digits
from ..pixels.frames import WindowPixels, last_frame
from ..runs.folder import RunFolder

SAMPLES_DIR = "samples"
KEEP_SAMPLE_FILES = 5
SIDE = 32  # tokens a side of a latent frame


@dataclass
class SampleRecord:
    """Codes [n, frames, 32, 32] (int32) of n val samples at one step."""

    step: int
    indices: list[int]  # which val samples (positions in the split's valid samples)
    context: np.ndarray  # [n, Tc, 32, 32] true context frames
    truth: np.ndarray  # [n, Tf, 32, 32] true target frames
    argmax: np.ndarray  # [n, Tf, 32, 32] teacher-forced argmax
    maskgit: np.ndarray  # [n, Tf, 32, 32] MaskGIT generation
    maskgit_steps: int = 0
    temperature: float = 0.0
    # MaskGIT under another sample's states, and which sample lent them (absent in older files)
    maskgit_other: np.ndarray | None = None  # [n, Tf, 32, 32]
    other_indices: list[int] | None = None

    @property
    def count(self) -> int:
        return int(self.truth.shape[0])

    @property
    def target_frames(self) -> int:
        return int(self.truth.shape[1])


@dataclass
class Panel:
    label: str
    rgb: np.ndarray  # [32, 32, 3] uint8


def false_colour(codes: np.ndarray) -> np.ndarray:
    """[..., 32, 32] codes -> [..., 32, 32, 3] uint8: FSQ digits 0, 1, 2 as red, green, blue."""
    digits = codes_to_digits(codes)[..., :3]
    return np.round(digits * (255 / 7)).astype(np.uint8)


def error_map(predicted: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Right tokens dark grey; wrong ones red, brighter the more FSQ digits are wrong."""
    wrong = (codes_to_digits(predicted) != codes_to_digits(truth)).sum(-1)  # 0..6 digits off
    out = np.full((*wrong.shape, 3), 40, dtype=np.uint8)
    bad = wrong > 0
    out[bad] = 0
    out[..., 0][bad] = (110 + 145 * wrong[bad] / 6).astype(np.uint8)
    return out


def panels(record: SampleRecord, i: int, pixels: WindowPixels | None = None) -> list[Panel]:
    """Sample i: its context frames, then per target frame the truth, the argmax, the
    MaskGIT sample and where the argmax is wrong (the error map stays in tokens).

    With `pixels`, each grid is the RGB frame it ends on (frame 0, 8 or 16 of its window),
    each prediction decoded in the window [context grids of that window, predicted grids];
    this decodes (slow on a CPU with the real decoder): views call it from a worker."""
    context = record.context[i]
    tc = context.shape[0]

    def show(codes: np.ndarray, grid: int) -> np.ndarray:
        """Grid `grid` of the sequence [context, `codes`]: its frame, or its false colours."""
        if pixels is None:
            sequence = codes if grid >= tc else context
            return false_colour(sequence[grid - tc] if grid >= tc else sequence[grid])
        return pixels.grid_frame(np.concatenate([context, codes]), grid)

    def at(grid: int) -> str:  # the frame of the sample's video shown: 17 a window
        return f" · frame {17 * (grid // 3) + last_frame(grid)}" if pixels is not None else ""

    out = [Panel(f"context {c + 1}{at(c)}", show(record.truth[i], c)) for c in range(tc)]
    for j in range(record.target_frames):
        tag = f" {j + 1}" if record.target_frames > 1 else ""
        g = tc + j
        out += [
            Panel(f"truth{tag}{at(g)}", show(record.truth[i], g)),
            Panel(f"argmax{tag}", show(record.argmax[i], g)),
            Panel(f"MaskGIT{tag}", show(record.maskgit[i], g)),
        ]
        if record.maskgit_other is not None:
            out.append(Panel(f"other states{tag}", show(record.maskgit_other[i], g)))
        out.append(Panel(f"errors{tag}", error_map(record.argmax[i, j], record.truth[i, j])))
    return out


@dataclass
class SampleAccuracy:
    """Token accuracy of one sample's predictions; `maskgit_other` None where not recorded."""

    argmax: float
    maskgit: float
    maskgit_other: float | None


def accuracy(record: SampleRecord, i: int) -> SampleAccuracy:
    """Token accuracy of sample i's argmax and MaskGIT predictions (and MaskGIT under other states)."""
    other = None
    if record.maskgit_other is not None:
        other = float((record.maskgit_other[i] == record.truth[i]).mean())
    return SampleAccuracy(
        float((record.argmax[i] == record.truth[i]).mean()), float((record.maskgit[i] == record.truth[i]).mean()), other
    )


# ------------------------------------------------------------------------- files


def samples_dir(folder: RunFolder) -> Path:
    return folder.path / SAMPLES_DIR


def save_samples(folder: RunFolder, record: SampleRecord, keep: int = KEEP_SAMPLE_FILES) -> Path:
    """Written whole under a temporary name, then renamed; the oldest beyond `keep` go."""
    from safetensors.numpy import save_file

    directory = samples_dir(folder)
    directory.mkdir(exist_ok=True)
    path = directory / f"step_{record.step:08d}.safetensors"
    tmp = directory / f".{path.name}.{os.getpid()}.tmp"
    names = ["context", "truth", "argmax", "maskgit"] + (["maskgit_other"] if record.maskgit_other is not None else [])
    tensors = {name: np.ascontiguousarray(getattr(record, name), dtype=np.int32) for name in names}
    meta = {
        "step": record.step,
        "indices": record.indices,
        "maskgit_steps": record.maskgit_steps,
        "temperature": record.temperature,
    }
    if record.other_indices is not None:
        meta["other_indices"] = record.other_indices
    try:
        save_file(tensors, str(tmp), metadata={"hwm": json.dumps(meta)})
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    for old in sorted(directory.glob("step_*.safetensors"))[:-keep]:
        old.unlink(missing_ok=True)
    return path


def load_samples(path: Path) -> SampleRecord:
    from safetensors import safe_open

    with safe_open(str(path), framework="numpy") as fh:
        meta = json.loads(fh.metadata()["hwm"])
        arrays = {name: fh.get_tensor(name) for name in ("context", "truth", "argmax", "maskgit")}
        names = fh.keys()  # a safe_open handle has keys(), not `in`
        other = fh.get_tensor("maskgit_other") if "maskgit_other" in names else None
    other_indices = meta.get("other_indices")
    return SampleRecord(
        step=int(meta["step"]),
        indices=list(meta["indices"]),
        maskgit_steps=int(meta.get("maskgit_steps", 0)),
        temperature=float(meta.get("temperature", 0.0)),
        maskgit_other=other,
        other_indices=list(other_indices) if other_indices is not None else None,
        **arrays,
    )


def latest_samples(folder: RunFolder) -> Path | None:
    try:
        found = sorted(samples_dir(folder).glob("step_*.safetensors"))
    except OSError:
        return None
    return found[-1] if found else None
