"""A training session's state as a checkpoint's tensors and JSON header, and back.

checkpoint.py knows the file (atomic, checksummed safetensors); this module knows
what goes in it: model and optimizer tensors, RNG states, the data position, and
the model's shape, which a resume or an evaluation must match.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch

from ..config.schema import Config
from ..errors import CheckpointError
from .checkpoint import Checkpoint

# What must match between a checkpoint and the model it is loaded into.
SHAPE_KEYS = ("d_model", "n_layers", "n_heads", "mlp_ratio", "shared_from", "factor_groups", "positions")
MODEL_PREFIX = "model."


def model_shape(config: Config) -> dict[str, Any]:
    shape = {k: getattr(config.model, k) for k in SHAPE_KEYS if k != "positions"}
    if config.model.positions != "learned":  # older checkpoints name no positions: learned ones
        shape["positions"] = config.model.positions
    # Older checkpoints name neither: their model is the default one.
    if config.model.state_conditioning != "input":
        shape["state_conditioning"] = config.model.state_conditioning
    if config.model.previous_frame_layers:
        shape["previous_frame_layers"] = config.model.previous_frame_layers
    if config.model.previous_frame_layers and config.model.previous_frame_window:
        shape["previous_frame_window"] = config.model.previous_frame_window
    shape["latent_frames"] = config.latent_frames
    shape["future_latents"] = config.data.future_latents
    return shape


def shape_text(shape: Any) -> str:
    if not isinstance(shape, dict):
        return "unknown"
    return ", ".join(f"{k}={shape[k]}" for k in sorted(shape))


def checkpoint_payload(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    device: torch.device,
    *,
    config: Config,
    samples_seen: int,
    consecutive_nonfinite: int,
    world_size: int,
    global_batch: int,
    run_id: str | None,
    cuda_rng_states: list[torch.Tensor] | None = None,
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Everything a resume needs, split into tensors and JSON; `restore` puts it back.
    `cuda_rng_states`: each rank's CUDA RNG state (of its own GPU), in rank order."""
    tensors: dict[str, torch.Tensor] = {f"{MODEL_PREFIX}{k}": v for k, v in model.state_dict().items()}
    opt = optimizer.state_dict()
    for pid, values in opt["state"].items():
        for key, value in values.items():
            tensors[f"optim.{pid}.{key}"] = value if torch.is_tensor(value) else torch.tensor(value)
    tensors["rng.torch"] = torch.get_rng_state()
    tensors.update(cuda_rng_tensors(cuda_rng_states or []))
    py_state = random.getstate()
    np_state = np.random.get_state(legacy=True)
    assert isinstance(np_state, tuple)  # the legacy form: (name, keys, pos, has_gauss, cached)
    meta = {
        "samples_seen": samples_seen,
        "consecutive_nonfinite": consecutive_nonfinite,
        "model_shape": model_shape(config),
        "config": config.to_dict(),
        "world_size": world_size,
        "global_batch": global_batch,
        "run_id": run_id,
        "optimizer": {"param_groups": opt["param_groups"]},
        "rng": {
            "python": [py_state[0], list(py_state[1]), py_state[2]],
            "numpy": [np_state[0], np_state[1].tolist(), int(np_state[2]), int(np_state[3]), float(np_state[4])],
        },
    }
    return tensors, meta


def load_model_weights(checkpoint: Checkpoint, model: torch.nn.Module, *, what_to_do: str) -> None:
    """The model's tensors, strictly: a checkpoint of another shape is one clear line."""
    state = {k[len(MODEL_PREFIX) :]: v for k, v in checkpoint.tensors.items() if k.startswith(MODEL_PREFIX)}
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()
        raise CheckpointError(
            f"checkpoint {checkpoint.path.name} does not fit this model "
            f"({first[1].strip() if len(first) > 1 else first[0]}): {what_to_do}"
        ) from None


def cuda_rng_tensors(states_by_rank: list[torch.Tensor]) -> dict[str, torch.Tensor]:
    """Each rank's CUDA RNG state under its rank (dropout draws differ per rank; rank 0
    alone writes the file, so the others' states are gathered to it first)."""
    return {f"{CUDA_RNG_PREFIX}{rank}": state for rank, state in enumerate(states_by_rank)}


CUDA_RNG_PREFIX = "rng.cuda.rank"


def own_cuda_rng(tensors: dict[str, torch.Tensor], rank: int, device_index: int) -> torch.Tensor | None:
    """This rank's CUDA RNG state to restore. Checkpoints written before each rank kept
    its own hold rank 0's view of every GPU as `rng.cuda.<i>`; they are read as they were
    restored then (GPU i's entry for the GPU this rank trains on). None: no state for
    this rank (a CPU checkpoint, or more ranks now than when it was written): the RNG
    keeps its seeded state."""
    own = tensors.get(f"{CUDA_RNG_PREFIX}{rank}")
    if own is not None:
        return own
    return tensors.get(f"rng.cuda.{device_index}")


def restore(
    checkpoint: Checkpoint,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    device: torch.device,
    rank: int = 0,
) -> None:
    """Model, optimizer and every RNG as they were when the checkpoint was written."""
    tensors, meta = checkpoint.tensors, checkpoint.meta
    load_model_weights(checkpoint, model, what_to_do="resume with the config it was trained with")
    state: dict[int, dict[str, Any]] = {}
    for name, value in tensors.items():
        if name.startswith("optim."):
            _, pid, key = name.split(".", 2)
            state.setdefault(int(pid), {})[key] = value.to(device)
    optimizer.load_state_dict({"state": state, "param_groups": meta["optimizer"]["param_groups"]})
    rng = meta["rng"]
    random.setstate((rng["python"][0], tuple(rng["python"][1]), rng["python"][2]))
    np_state = rng["numpy"]
    np.random.set_state((np_state[0], np.asarray(np_state[1], dtype=np.uint32), *np_state[2:]))
    torch.set_rng_state(tensors["rng.torch"])
    if device.type == "cuda":
        cuda_state = own_cuda_rng(tensors, rank, device.index or 0)
        if cuda_state is not None:
            torch.cuda.set_rng_state(cuda_state, device)
