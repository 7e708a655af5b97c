"""What many tests share: the real CLI in a subprocess, tiny configs, hand-written splits, run files."""

from __future__ import annotations

import hashlib
import json
import math
import os
import subprocess
import sys
import types
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent

# A model small enough that a CPU step takes milliseconds; the shapes still cover
# every code path (3 factors, state conditioning, spatial + temporal attention).
TINY = [
    "model.d_model=32",
    "model.n_layers=2",
    "model.n_heads=2",
    "model.shared_from=2",
    "model.previous_frame_layers=1",  # the cpu preset's extra attention, in one block: half its cost
    "data.synthetic_shards=1",
    "data.synthetic_frames=1020",
    "train.batch_size=2",
    "train.grad_accum_steps=1",
    "train.warmup_steps=2",
    "eval.eval_samples=2",
]


def tiny_sets(*extra: str) -> list[str]:
    return [*TINY, *extra]


def set_args(overrides: list[str]) -> list[str]:
    out = []
    for item in overrides:
        out += ["--set", item]
    return out


def hwm(*args: str, timeout: float = 300, env: dict | None = None, **kwargs) -> subprocess.CompletedProcess:
    """Run the real CLI in a subprocess, as a user would."""
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "200", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "hwm_tui", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=full_env,
        cwd=kwargs.pop("cwd", REPO),
        **kwargs,
    )


def write_split_by_hand(
    root: Path, shard_frames: list[int], *, flat: bool = False, segments: list[np.ndarray] | None = None, seed: int = 0
) -> Path:
    """A v2.0 split written with plain numpy, independent of the synthetic generator."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    dirs = {"video": "videos", "states": "robot_states", "segments": "segment_indices", "metadata": "metadata"}
    for sub in dirs.values():
        if not flat:
            (root / sub).mkdir(exist_ok=True)

    def place(kind: str, name: str) -> Path:
        return root / name if flat else root / dirs[kind] / name

    for s, frames in enumerate(shard_frames):
        windows = math.ceil(frames / 17)
        rng.integers(0, 64000, size=(windows, 3, 32, 32), dtype=np.int32).tofile(place("video", f"video_{s}.bin"))
        rng.standard_normal((frames, 25)).astype(np.float32).tofile(place("states", f"states_{s}.bin"))
        seg = segments[s] if segments is not None else np.zeros(frames, dtype=np.int32)
        np.asarray(seg, dtype=np.int32).tofile(place("segments", f"segment_idx_{s}.bin"))
        place("metadata", f"metadata_{s}.json").write_text(json.dumps({"shard_num_frames": frames}))
    (root / "metadata.json").write_text(
        json.dumps({"num_shards": len(shard_frames), "num_images": sum(shard_frames), "hz": 30})
    )
    return root


def read_metrics(run_path: Path) -> list[dict]:
    out = []
    for line in (run_path / "metrics.jsonl").read_text().splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            pass
    return out


def only_run(runs: Path) -> Path:
    found = [p for p in runs.iterdir() if p.is_dir()]
    assert len(found) == 1, found
    return found[0]


def train_here(
    overrides: list[str] | tuple[str, ...] = (),
    steps: int | None = None,
    *,
    runs_dir: Path | None = None,
    resume: str | None = None,
    tiny: bool = True,
):
    """Train the cpu preset in this process, as `hwm-tui train` would minus the UI: the tiny
    model without validation (`tiny=False`: the overrides alone; a resume: the run's own config
    with the overrides), in `runs_dir` (None: no run folder). Returns (trainer, session, status,
    every event it published, in order)."""
    from hwm_core.events.bus import EventBus
    from hwm_core.runs.inbox import CommandInbox
    from hwm_core.training.session import TrainRequest, prepare
    from hwm_core.training.trainer import Trainer

    sets = tiny_sets("eval.eval_steps=0", *overrides) if tiny and not resume else list(overrides)
    request = TrainRequest(
        preset="cpu", runs_dir=str(runs_dir) if runs_dir else None, resume=resume, overrides=sets, max_steps=steps
    )
    session = prepare(request, create_run=runs_dir is not None)
    folder = session.folder
    bus = EventBus(folder.metrics if folder else None)
    events = bus.subscribe()
    trainer = Trainer(session, bus, CommandInbox(folder.path if folder else None))
    status = trainer.run()
    bus.close()
    session.close()
    out = []
    while not events.empty():
        out.append(events.get())
    return trainer, session, status, out


def run_steps(overrides: list[str], steps: int) -> tuple[object, str, list]:
    """A tiny run of `steps` steps in this process, no run folder: its session, status and events."""
    _, session, status, events = train_here(overrides, steps)
    return session, status, events


def make_run(runs: Path, *extra: str) -> Path:
    """A real 2-step run of the tiny model in `runs`, trained in this process."""
    _, session, _, _ = train_here(extra, 2, runs_dir=runs)
    assert session.folder is not None
    return session.folder.path


def train_cli(runs: Path, *args: str, preset: str = "cpu", tiny: bool = True, **kwargs) -> subprocess.CompletedProcess:
    """`hwm-tui train --preset PRESET --headless --runs-dir RUNS ARGS` in a subprocess, as a user
    runs it; `tiny`: with the tiny model's --sets before ARGS."""
    sets = set_args(tiny_sets()) if tiny else []
    return hwm("train", "--preset", preset, "--headless", "--runs-dir", str(runs), *sets, *args, **kwargs)


class FakeNvml(types.SimpleNamespace):
    """The calls GpuSampler makes, answering as one busy GPU would."""

    NVML_TEMPERATURE_GPU = 0

    def __init__(self):
        super().__init__(shutdowns=0)

    def nvmlInit(self):
        pass

    def nvmlShutdown(self):
        self.shutdowns += 1

    def nvmlDeviceGetHandleByUUID(self, uuid):
        raise RuntimeError("no torch device to ask for a UUID on a CPU machine")

    def nvmlDeviceGetHandleByIndex(self, index):
        return f"gpu{index}"

    def nvmlDeviceGetMemoryInfo(self, handle):
        return types.SimpleNamespace(used=10 * 2**30, total=80 * 2**30)

    def nvmlDeviceGetUtilizationRates(self, handle):
        return types.SimpleNamespace(gpu=97)

    def nvmlDeviceGetPowerUsage(self, handle):
        return 412_000

    def nvmlDeviceGetTemperature(self, handle, sensor):
        return 61


def wandb_records(path: Path) -> list:
    """The protobuf records of a W&B run file (run-<id>.wandb), read with W&B's own
    message types. The file is W&B's LevelDB-style log: a 7-byte header (':W&B', magic
    0xBEE1, version), then 32 KiB blocks of chunks, each with a 7-byte header (crc32,
    length, kind: 1 full, 2 first, 3 middle, 4 last); a block's tail under 7 bytes is padding."""
    import struct

    from wandb.proto import wandb_internal_pb2 as pb

    data = path.read_bytes()
    assert data[:4] == b":W&B", f"{path} is not a W&B run file"
    block, pos, pending, out = 32768, 7, b"", []
    while pos + 7 <= len(data):
        left = block - pos % block
        if left < 7:
            pos += left
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        if kind == 0:  # zero padding up to the block's end
            pos += left
            continue
        chunk = data[pos + 7 : pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):
            record = pb.Record()
            record.ParseFromString(pending + chunk)
            out.append(record)
            pending = b""
        else:
            pending = (pending if kind == 3 else b"") + chunk
    return out


def wandb_history(run_dir: Path) -> list[dict]:
    """Every history row W&B holds for a run, over all its local sessions (a resume writes
    another offline-run-* folder), in order: {"_step": n, key: value, ...}."""
    rows = []
    for path in sorted(run_dir.glob("wandb/*-run-*/run-*.wandb")):
        for record in wandb_records(path):
            if record.WhichOneof("record_type") == "history":
                row = {
                    "/".join(item.nested_key) or item.key: json.loads(item.value_json) for item in record.history.item
                }
                rows.append(row)
    return rows


def fresh_model(*sets: str) -> tuple[object, object]:
    """An untrained cpu-preset model with `tiny_sets(*sets)`, as predictions load one
    (TrainedModel), and the session it came from; no run folder."""
    from hwm_core.predictions.inference import TrainedModel
    from hwm_core.training.session import TrainRequest, prepare

    session = prepare(TrainRequest(preset="cpu", overrides=tiny_sets(*sets)), create_run=False)
    trained = TrainedModel(
        model=session.model.eval(),
        config=session.config,
        stats=session.builder.train_set.stats,
        step=0,
        checkpoint=None,
        folder=None,
        device=session.device,
    )
    return trained, session


HUB_COMMIT = "0123456789abcdef0123456789abcdef01234567"


def hub_cache(cache: Path, source: Path, repo: str, commit: str = HUB_COMMIT, kind: str = "datasets") -> Path:
    """`source`'s files as the Hub client caches a repository's revision (kind: datasets or models):
    datasets--owner--name/{blobs/<hash>, refs/main, snapshots/<commit>/<path> -> ../../blobs/<hash>}."""
    store = cache / f"{kind}--{repo.replace('/', '--')}"
    (store / "blobs").mkdir(parents=True)
    (store / "refs").mkdir()
    (store / "refs" / "main").write_text(commit)
    snapshot = store / "snapshots" / commit
    for path in sorted(p for p in source.rglob("*") if p.is_file()):
        data = path.read_bytes()
        blob = store / "blobs" / hashlib.sha256(data).hexdigest()
        blob.write_bytes(data)
        link = snapshot / path.relative_to(source)
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(Path(*[".."] * (len(link.relative_to(store).parts) - 1), "blobs", blob.name))
    return snapshot
