"""The run configuration's schema: every key a preset may hold, with its type, range and doc.

Every key is a dataclass field below, declared with `_spec`, so validation
(loading.py) and the schema table (`hwm-tui presets show --schema`) read one place.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from typing import Any

COMPILE_CHOICES = (
    "off",
    "on",
    "reduce-overhead",
    "max-autotune",
)  # train.compile; compile.py maps them to torch's modes

AUTO = "auto"  # train.batch_size chosen at start (see micro_batch.py)


def _spec(
    default: Any,
    *,
    lo: float | None = None,
    hi: float | None = None,
    lo_open: bool = False,
    hi_open: bool = False,
    choices: tuple[str, ...] | None = None,
    doc: str = "",
) -> Any:
    """A schema field: default, inclusive/exclusive bounds, allowed strings."""
    meta = {"lo": lo, "hi": hi, "lo_open": lo_open, "hi_open": hi_open, "choices": choices, "doc": doc}
    if isinstance(default, list):
        return field(default_factory=lambda: json.loads(json.dumps(default)), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class ModelConfig:
    d_model: int = _spec(192, lo=8, doc="width of every token's hidden state")
    n_layers: int = _spec(6, lo=1, doc="number of spatial+temporal blocks")
    n_heads: int = _spec(6, lo=1, doc="attention heads; must divide d_model")
    mlp_ratio: float = _spec(4.0, lo=0, lo_open=True, doc="MLP hidden width / d_model")
    shared_from: int = _spec(
        6, lo=0, doc="layers from this index on reuse one block's weights; n_layers means no sharing"
    )
    factor_groups: list = _spec([[0, 3], [1, 4], [2, 5]], doc="FSQ digits predicted together; a partition of 0..5")
    init_std: float = _spec(0.02, lo=0, lo_open=True, doc="std of the summed token embedding")
    dropout: float = _spec(0.0, lo=0, hi=1, hi_open=True, doc="dropout on residual branches")
    condition_on_states: bool = _spec(True, doc="add the embedded robot states to the tokens")
    positions: str = _spec(
        "learned",
        choices=("learned", "rope"),
        doc="learned spatial and temporal position embeddings, or rotary (RoPE: rows and "
        "columns in spatial attention, time in temporal attention)",
    )
    state_conditioning: str = _spec(
        "input",
        choices=("input", "film"),
        doc="input: the embedded states are added to the tokens once; film: also every block's norms "
        "are shifted and scaled by its latent frame's states (adaLN-zero, as DiT conditions on its class)",
    )
    previous_frame_layers: int = _spec(
        0,
        lo=0,
        doc="in this many last blocks every token also attends to all positions of the latent frame "
        "before its own (rotary offsets), so the content an action moves is one attention away; 0: none",
    )
    previous_frame_window: int = _spec(
        0,
        lo=0,
        doc="previous-frame attention within this many rows and columns either side of each token "
        "(at least; in tiles of 4x4 queries), at a fraction of the whole frame's cost; 0: the whole frame",
    )
    tied_heads: bool = _spec(
        False,
        doc="each factor's output head is its input embedding table (transposed, plus a bias), as GPT-2 "
        "ties its own: a hidden state that carries a token's embedding already scores that token's code, "
        "so copying a code from the frame before needs no second map to be learned",
    )
    window_slots: bool = _spec(
        False,
        doc="a learned embedding of each latent frame's place in its window (frame 0, frames 1-8, "
        "frames 9-16): the shift from the grid before is one frame's motion or eight, which rotary "
        "positions and the states' mean do not tell apart",
    )


@dataclass
class DataConfig:
    train: str = _spec("", doc="train split dir, or 'synthetic' for the built-in generator")
    val: str = _spec("", doc="val split dir; empty skips validation (synthetic: generated)")
    windows: int = _spec(3, lo=1, doc="17-frame windows per sample (3 latent frames each)")
    future_latents: int = _spec(3, lo=1, doc="last latent frames of a sample that are predicted")
    synthetic_shards: int = _spec(4, lo=1, doc="shards of the generated train split")
    synthetic_frames: int = _spec(4080, lo=17, doc="frames per generated shard")


@dataclass
class MaskingConfig:
    max_corrupt_rate: float = _spec(
        0.2, lo=0, hi=1, hi_open=True, doc="Copilot-4D: up to this share of unmasked tokens replaced by random codes"
    )
    full_mask_rate: float = _spec(
        0.0,
        lo=0,
        hi=1,
        doc="share of training samples whose target frames are masked whole, as evaluate and MaskGIT's "
        "first round see them (the rest: MaskGIT's cosine share)",
    )
    per_frame: bool = _spec(
        False,
        doc="each target latent frame draws its own masked share (and full mask): a target frame then "
        "often sees the frame before it, as teacher forcing and a rollout's later frames do",
    )
    visible_prefix: bool = _spec(
        False,
        doc="with per_frame: the first k target latent frames (k drawn from 0 to all but one) are left "
        "whole, as the grids before a grid are when teacher forcing or MaskGIT (a grid at a time) "
        "predicts it; the frames after them draw their shares",
    )


@dataclass
class TrainConfig:
    device: str = _spec("auto", choices=("auto", "cpu", "cuda"), doc="auto picks cuda when present")
    precision: str = _spec("bf16", choices=("bf16", "fp32"), doc="bf16 autocast applies on CUDA only")
    compile: str = _spec(
        "on",
        choices=COMPILE_CHOICES,
        doc="torch.compile the step's forward and loss: on (default mode), reduce-overhead "
        "(also CUDA graphs), max-autotune; a failure falls back to eager",
    )
    batch_size: int | str = _spec(
        4,
        lo=1,
        choices=(AUTO,),
        doc="samples per micro-batch (per process), or auto: the largest that divides "
        "the effective batch and fits the GPU, found by trying real steps",
    )
    grad_accum_steps: int = _spec(4, lo=1, doc="micro-batches per optimizer step")
    effective_batch: int = _spec(
        0,
        lo=0,
        doc="samples per optimizer step per process that batch_size = auto "
        "keeps; 0: batch_size x grad_accum_steps of the preset",
    )
    memory_limit_gib: float = _spec(
        0.0, lo=0, doc="cap this process's CUDA memory (GiB), to emulate a smaller card; 0: the whole GPU"
    )
    lr: float = _spec(5e-5, lo=0, lo_open=True, doc="peak learning rate")
    schedule: str = _spec(
        "cosine", choices=("cosine", "constant"), doc="after warmup: cosine decay to 0 at max_steps, or constant"
    )
    warmup_steps: int = _spec(500, lo=0, doc="linear warmup from 0 over this many steps")
    max_steps: int = _spec(60000, lo=1, doc="optimizer steps in the whole run")
    weight_decay: float = _spec(0.01, lo=0, doc="AdamW decoupled weight decay")
    beta1: float = _spec(0.9, lo=0, hi=1, hi_open=True)
    beta2: float = _spec(0.95, lo=0, hi=1, hi_open=True)
    eps: float = _spec(1e-8, lo=0, lo_open=True)
    max_grad_norm: float = _spec(1.0, lo=0, lo_open=True, doc="clip the global grad norm to this")
    max_nonfinite_steps: int = _spec(10, lo=1, doc="non-finite steps in a row before the run fails")
    seed: int = _spec(0, lo=0)


@dataclass
class EvalConfig:
    eval_steps: int = _spec(500, lo=0, doc="validate every this many steps; 0 never")
    eval_samples: int = _spec(32, lo=1, doc="val samples per validation: one fixed set, split over ranks")
    sample_count: int = _spec(
        4,
        lo=0,
        doc="val samples whose predictions (argmax, MaskGIT) are kept at each validation for the samples view; 0: none",
    )
    maskgit_steps: int = _spec(8, lo=1, doc="MaskGIT rounds per target frame for those predictions")


@dataclass
class CheckpointConfig:
    save_steps: int = _spec(1000, lo=1, doc="checkpoint every this many steps")
    keep_checkpoints: int = _spec(3, lo=1, doc="newest checkpoints kept on disk")


@dataclass
class HealthConfig:
    instability_norm: float = _spec(100.0, lo=0, lo_open=True, doc="pre-clip grad norm above this warns 'instability'")
    vanishing_norm: float = _spec(0.001, lo=0, doc="pre-clip grad norm below this warns 'vanishing'")
    divergence_guard: bool = _spec(
        True,
        doc="stop a run as 'diverged' when its smoothed loss climbs back above "
        "its starting loss after warm-up, its val loss rises val_rises "
        "evaluations in a row, or non-finite steps repeat",
    )
    divergence_smoothing: float = _spec(
        0.95, lo=0, hi=1, hi_open=True, doc="EMA weight of the past in the loss the guard watches"
    )
    val_rises: int = _spec(3, lo=0, doc="val-loss rises in a row that stop a run; 0: never")


@dataclass
class ExpectedConfig:
    """What a healthy run of this preset shows, so a view can say on track, behind or ahead."""

    data: str = _spec(
        "",
        choices=("", "real", "synthetic"),
        doc="the data the band below was measured on; a run on other data is not judged; empty: no band",
    )
    steps: list = _spec([], doc="steps at which the loss is judged (0: the first step)")
    loss_low: list = _spec([], doc="at each of those steps, the lowest training loss of a healthy run")
    loss_high: list = _spec([], doc="at each of those steps, the highest training loss of a healthy run")
    grad_norm_low: float = _spec(0.0, lo=0, doc="pre-clip gradient norms of a healthy run lie above this")
    grad_norm_high: float = _spec(0.0, lo=0, doc="... and below this; 0: no range named")
    layout: list = _spec(
        [],
        doc="[data.windows, data.future_latents] the band was measured with; a run of another layout "
        "(a --set of either) is not judged; empty: any",
    )


COMPILE_CHOICES = (
    "off",
    "on",
    "reduce-overhead",
    "max-autotune",
)  # train.compile; compile.py maps them to torch's modes
MIRRORS = ("tensorboard", "wandb")  # where a run's events may be mirrored (hwm_core/mirrors)


@dataclass
class LogConfig:
    mirrors: list = _spec(
        [],
        doc="mirror every step, eval, warning and GPU reading to these, from a thread of their own: "
        "tensorboard (event files in the run's tensorboard/), wandb (the W&B run named by the run id; "
        "offline without an API key); each needs its extra: pip install 'hwm-tui[tensorboard]'",
    )
    wandb_project: str = _spec("hwm-tui", doc="the W&B project runs go to (the entity: WANDB_ENTITY or your default)")


SECTIONS: dict[str, type] = {
    "model": ModelConfig,
    "data": DataConfig,
    "masking": MaskingConfig,
    "train": TrainConfig,
    "eval": EvalConfig,
    "checkpoint": CheckpointConfig,
    "health": HealthConfig,
    "expected": ExpectedConfig,
    "log": LogConfig,
}

# Keys a resumed run may change: none alters the model's shape or the data order.
# batch_size and grad_accum_steps are here so a run can move to another number of
# processes with the same global batch (the resume says so if the global batch changes).
RESUME_SAFE_KEYS = frozenset(
    {
        "train.max_steps",
        "train.device",
        "train.max_nonfinite_steps",
        "train.compile",
        "train.batch_size",
        "train.grad_accum_steps",
        "train.effective_batch",
        "train.memory_limit_gib",
        "eval.eval_steps",
        "eval.sample_count",
        "eval.maskgit_steps",
        "checkpoint.save_steps",
        "checkpoint.keep_checkpoints",
        "health.instability_norm",
        "health.vanishing_norm",
        "health.divergence_guard",
        "health.divergence_smoothing",
        "health.val_rises",
        # a diverged run goes on with gentler settings
        "train.lr",
        "train.warmup_steps",
        "train.max_grad_norm",
        "data.train",
        "data.val",
        # what a healthy run shows is a reading aid, never a training setting
        "expected.data",
        "expected.steps",
        "expected.loss_low",
        "expected.loss_high",
        "expected.grad_norm_low",
        "expected.grad_norm_high",
        "expected.layout",
        # where a run is mirrored changes nothing it computes
        "log.mirrors",
        "log.wandb_project",
    }
)


@dataclass
class Config:
    preset: str = "custom"
    description: str = ""
    memory_budget_gib: float = 0.0  # the CUDA memory a preset promises to fit in (bench train checks it)
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    masking: MaskingConfig = field(default_factory=MaskingConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    health: HealthConfig = field(default_factory=HealthConfig)
    expected: ExpectedConfig = field(default_factory=ExpectedConfig)
    log: LogConfig = field(default_factory=LogConfig)

    @property
    def latent_frames(self) -> int:
        return 3 * self.data.windows

    @property
    def context_latents(self) -> int:
        return self.latent_frames - self.data.future_latents

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "preset": self.preset,
            "description": self.description,
            "memory_budget_gib": self.memory_budget_gib,
        }
        for name in SECTIONS:
            out[name] = dataclasses.asdict(getattr(self, name))
        return out

    def to_toml(self) -> str:
        lines = [
            f"preset = {toml_value(self.preset)}",
            f"description = {toml_value(self.description)}",
            f"memory_budget_gib = {toml_value(self.memory_budget_gib)}",
        ]
        for name in SECTIONS:
            lines.append("")
            lines.append(f"[{name}]")
            for key, value in dataclasses.asdict(getattr(self, name)).items():
                lines.append(f"{key} = {toml_value(value)}")
        return "\n".join(lines) + "\n"

    def get(self, dotted: str) -> Any:
        section, key = dotted.split(".", 1)
        return getattr(getattr(self, section), key)


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        if math.isnan(value):
            return "nan"
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a valid TOML basic string
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} to TOML")


@dataclass(frozen=True)
class SchemaRow:
    """One key of the schema as `hwm-tui presets show --schema` lists it."""

    key: str  # dotted: section.key
    type: str
    default: Any
    allowed: str  # bounds and choices, as the error lines state them ("" when any value of the type goes)
    doc: str


def describe_schema() -> list[SchemaRow]:
    """Every key of every section, in the order a preset lists them."""
    rows = []
    for name, cls in SECTIONS.items():
        for f in dataclasses.fields(cls):
            default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
            rows.append(
                SchemaRow(
                    key=f"{name}.{f.name}",
                    type=str(f.type),
                    default=default,
                    allowed=_allowed(f.metadata),
                    doc=f.metadata.get("doc", ""),
                )
            )
    return rows


def _allowed(meta: Any) -> str:
    parts = []
    if meta.get("lo") is not None:
        parts.append(f"{'>' if meta.get('lo_open') else '>='} {meta['lo']:g}")
    if meta.get("hi") is not None:
        parts.append(f"{'<' if meta.get('hi_open') else '<='} {meta['hi']:g}")
    if meta.get("choices"):
        parts.append(" | ".join(meta["choices"]))
    return ", ".join(parts)
