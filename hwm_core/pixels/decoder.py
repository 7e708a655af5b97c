"""The Cosmos DV8x8x8 decoder: token codes back to RGB frames.

The v2.0 tokens are NVIDIA Cosmos DV8x8x8 codes. Their decoder ships as one TorchScript
file, `decoder.jit` in the Hub model repository nvidia/Cosmos-Tokenizer-DV8x8x8: integer
codes [B, 3, 32, 32] (one 17-frame window) in, RGB [B, 3, 17, 256, 256] in [-1, 1] out.

A TorchScript file is code: it runs whatever its author scripted. It is loaded only from
the file a user names (`--decoder PATH`, or $HWM_DECODER) or the one `hwm-tui data
download --decoder` fetched into the Hub client's cache (that repository, branch main);
never from a path found inside data or a run.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataError
from ..hub import DECODER_FILE, DECODER_REPO

DECODER_REVISION = "main"  # what `data download --decoder` fetches by default, and so where it is found
DECODER_ENV = "HWM_DECODER"
GET_IT = f"get it with: hwm-tui data download --decoder (or name the file with --decoder PATH or ${DECODER_ENV})"
FRAMES_PER_WINDOW = 17
LATENTS_PER_WINDOW = 3
TOKENS_SIDE = 32
BATCH = 4  # windows a forward: 4 x 17 frames of 256 x 256 stay well inside a GPU's or a laptop's memory


def find_decoder(path: str | Path | None = None, *, cache_dir: Path | None = None) -> Path | None:
    """The decoder file to load: the one named (`path`, else $HWM_DECODER; it must exist), else
    the Hub cache's copy from `data download --decoder`, else None (no pixels: false colours)."""
    named = path if path is not None else os.environ.get(DECODER_ENV) or None
    if named is not None:
        found = Path(named).expanduser()
        if not found.is_file():
            where = "--decoder" if path is not None else f"${DECODER_ENV}"
            raise DataError(f"{where} {found}: no such file; {GET_IT}")
        return found
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:  # the hub extra is not installed: nothing can have been downloaded
        return None
    cached = try_to_load_from_cache(DECODER_REPO, DECODER_FILE, revision=DECODER_REVISION, cache_dir=cache_dir)
    return Path(cached) if isinstance(cached, str) else None


def decoder_device() -> str:
    """Where a decoder runs: the GPU when there is one (bf16, as NVIDIA runs it), else the CPU."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


@dataclass
class Decoder:
    """A loaded, checked decoder; `decode` turns windows of codes into 8-bit RGB frames."""

    module: Any  # torch.jit.ScriptModule
    path: Path
    device: str
    check_seconds: float = 0.0  # the load check's decode of one window: a window's decode time here

    def __post_init__(self) -> None:
        self._lock = threading.Lock()  # one forward at a time: views decode from worker threads

    def decode(self, codes: np.ndarray) -> np.ndarray:
        """codes [N, 3, 32, 32] (windows, any integer type) -> uint8 [N, 17, H, W, 3]: each window
        decoded whole (the tokenizer is causal in time: a grid's frames depend on the grids before
        it in its window, so a grid is never decoded alone)."""
        codes = np.asarray(codes)
        if codes.ndim != 4 or codes.shape[1:] != (LATENTS_PER_WINDOW, TOKENS_SIDE, TOKENS_SIDE):
            raise ValueError(f"codes of shape {codes.shape}, not [windows, 3, 32, 32]")
        return np.concatenate([self._forward(codes[s : s + BATCH]) for s in range(0, len(codes), BATCH)])

    def _forward(self, codes: np.ndarray) -> np.ndarray:
        import torch

        chunk = torch.from_numpy(np.ascontiguousarray(codes, dtype=np.int32)).to(self.device)
        with self._lock, torch.no_grad():
            rgb = self.module(chunk)
        return to_uint8(rgb.float().cpu().numpy())


def to_uint8(rgb: np.ndarray) -> np.ndarray:
    """[B, 3, T, H, W] in [-1, 1] -> uint8 [B, T, H, W, 3]: round((x + 1) x 127.5), clipped to 0..255."""
    scaled = np.clip(np.round((np.asarray(rgb, dtype=np.float32) + 1.0) * 127.5), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(scaled.transpose(0, 2, 3, 4, 1))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:160]


def load_decoder(path: Path, device: str | None = None) -> Decoder:
    """Loads the TorchScript file at `path` and checks it once on one window of codes.

    This runs the file's code: call it only with a file the user named or the one the Hub
    download fetched (find_decoder). The check: integer codes [1, 3, 32, 32] must give one
    float tensor [1, 3, 17, H, W]; anything else is one DataError naming the file. On a GPU
    the module runs in bf16 (its weights cast), as NVIDIA runs it; on a CPU in fp32, else bf16."""
    import warnings

    import torch

    device = device or decoder_device()
    what = f"decoder {path}"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit.load: the only form this decoder ships in
            warnings.simplefilter("ignore", FutureWarning)
            module = torch.jit.load(str(path), map_location=device)
    except Exception as exc:  # noqa: BLE001 - whatever the file is, it is not a decoder: one line
        raise DataError(f"{what} is not a TorchScript module ({_first_line(exc)}); {GET_IT}") from None
    # bf16 on a GPU, as NVIDIA runs it; fp32 on a CPU (faster there), or bf16 where the file's
    # own code insists on its shipped precision (unknown without the file: both are tried)
    dtypes = [torch.bfloat16] if device.startswith("cuda") else [torch.float32, torch.bfloat16]
    probe = torch.zeros(1, LATENTS_PER_WINDOW, TOKENS_SIDE, TOKENS_SIDE, dtype=torch.int32, device=device)
    for attempt, dtype in enumerate(dtypes):
        try:
            module.eval()
            module.to(dtype=dtype)
        except Exception as exc:  # noqa: BLE001
            raise DataError(f"{what} is not a TorchScript module that can run ({_first_line(exc)}); {GET_IT}") from None
        started = time.perf_counter()
        try:
            with torch.no_grad():
                out = module(probe)
            break
        except Exception as exc:  # noqa: BLE001
            if attempt + 1 < len(dtypes):
                continue
            raise DataError(
                f"{what} fails on integer codes [1, 3, 32, 32] ({_first_line(exc)}): it is not the Cosmos "
                f"DV8x8x8 decoder; {GET_IT}"
            ) from None
    seconds = time.perf_counter() - started
    shape = list(out.shape) if isinstance(out, torch.Tensor) else None
    if shape is None or len(shape) != 5 or shape[:3] != [1, 3, FRAMES_PER_WINDOW] or min(shape[3:]) < 1:
        got = f"shape {shape}" if shape is not None else f"a {type(out).__name__}"
        raise DataError(
            f"{what} gives {got} for codes [1, 3, 32, 32], not RGB frames [1, 3, 17, H, W]: it is not the "
            f"Cosmos DV8x8x8 decoder; {GET_IT}"
        )
    if not out.is_floating_point():
        raise DataError(f"{what} gives {out.dtype} values, not RGB in [-1, 1]: it is not the Cosmos decoder; {GET_IT}")
    return Decoder(module, path, device, check_seconds=seconds)


_loaded: dict[tuple[Path, str], Decoder] = {}
_loading = threading.Lock()


def shared_decoder(path: Path, device: str | None = None) -> Decoder:
    """load_decoder once a process (the views share it): 127 MB and a check are paid once."""
    device = device or decoder_device()
    key = (Path(path).resolve(), device)
    with _loading:
        if key not in _loaded:
            _loaded[key] = load_decoder(Path(path), device)
        return _loaded[key]
