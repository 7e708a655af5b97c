"""The run configuration's schema: every key a preset may hold, with its type, range and doc.

Every key is a dataclass field below, declared with `spec` (fields.py): each section checks
its keys and its own rules when it is built, and loading (loading.py) and the schema table
(`hwm-tui presets show --schema`) read this one place.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, get_args

from ..errors import ConfigError
from ..fsq import FSQ_LEVELS
from .fields import Section, allowed_text, field_types, spec, type_name

CompileMode = Literal["off", "on", "reduce-overhead", "max-autotune"]  # compile.py maps them to torch's
COMPILE_CHOICES: tuple[str, ...] = get_args(CompileMode)  # train.compile

DeviceChoice = Literal["auto", "cpu", "cuda"]  # train.device
AUTO = "auto"  # train.batch_size chosen at start (see micro_batch.py)
MIRRORS = ("tensorboard", "wandb")  # where a run's events may be mirrored (hwm_core/mirrors)


@dataclass
class ModelConfig(Section):
    name: ClassVar[str] = "model"

    d_model: int = spec(192, lo=8, doc="width of every token's hidden state")
    n_layers: int = spec(6, lo=1, doc="number of spatial+temporal blocks")
    n_heads: int = spec(6, lo=1, doc="attention heads; must divide d_model")
    mlp_ratio: float = spec(4.0, lo=0, lo_open=True, doc="MLP hidden width / d_model")
    shared_from: int = spec(
        6, lo=0, doc="layers from this index on reuse one block's weights; n_layers means no sharing"
    )
    factor_groups: list[list[int]] = spec(
        [[0, 3], [1, 4], [2, 5]], doc="FSQ digits predicted together; a partition of 0..5"
    )
    init_std: float = spec(0.02, lo=0, lo_open=True, doc="std of the summed token embedding")
    dropout: float = spec(0.0, lo=0, hi=1, hi_open=True, doc="dropout on residual branches")
    condition_on_states: bool = spec(True, doc="add the embedded robot states to the tokens")
    positions: Literal["learned", "rope"] = spec(
        "learned",
        doc="learned spatial and temporal position embeddings, or rotary (RoPE: rows and "
        "columns in spatial attention, time in temporal attention)",
    )
    state_conditioning: Literal["input", "film"] = spec(
        "input",
        doc="input: the embedded states are added to the tokens once; film: also every block's norms "
        "are shifted and scaled by its latent frame's states (adaLN-zero, as DiT conditions on its class)",
    )
    previous_frame_layers: int = spec(
        0,
        lo=0,
        doc="in this many last blocks every token also attends to all positions of the latent frame "
        "before its own (rotary offsets), so the content an action moves is one attention away; 0: none",
    )
    previous_frame_window: int = spec(
        0,
        lo=0,
        doc="previous-frame attention within this many rows and columns either side of each token "
        "(at least; in tiles of 4x4 queries), at a fraction of the whole frame's cost; 0: the whole frame",
    )
    tied_heads: bool = spec(
        False,
        doc="each factor's output head is its input embedding table (transposed, plus a bias), as GPT-2 "
        "ties its own: a hidden state that carries a token's embedding already scores that token's code, "
        "so copying a code from the frame before needs no second map to be learned",
    )
    window_slots: bool = spec(
        False,
        doc="a learned embedding of each latent frame's place in its window (frame 0, frames 1-8, "
        "frames 9-16): the shift from the grid before is one frame's motion or eight, which rotary "
        "positions and the states' mean do not tell apart",
    )
    copy_gate: bool = spec(
        False,
        doc="in each target grid that opens a window (one video frame after the grid before), a token's "
        "logits also score, by a gate learned from its hidden state, the code the same position holds in "
        "the grid before: a view that did not move is copied whole, not only as far as attention "
        "reproduces it",
    )

    def check(self) -> None:
        heads = self.d_model // self.n_heads
        if self.d_model % self.n_heads:
            raise ConfigError(f"model.d_model ({self.d_model}) must be divisible by model.n_heads ({self.n_heads})")
        if heads % 2:
            raise ConfigError(f"model.d_model / model.n_heads must be even, got {heads}")
        if self.positions == "rope" and heads % 4:
            raise ConfigError(
                "model.positions = rope needs model.d_model / model.n_heads divisible by 4 "
                f"(rows and columns take half each), got {heads}"
            )
        if self.previous_frame_layers > self.n_layers:
            raise ConfigError(
                f"model.previous_frame_layers ({self.previous_frame_layers}) must be <= "
                f"model.n_layers ({self.n_layers})"
            )
        if self.shared_from > self.n_layers:
            raise ConfigError(
                f"model.shared_from ({self.shared_from}) must be <= "
                f"model.n_layers ({self.n_layers}); n_layers means no sharing"
            )
        groups: Any = self.factor_groups  # from a file: anything a list may hold, until checked here
        digits = len(FSQ_LEVELS)
        if (
            not groups
            or not all(isinstance(g, list) and g for g in groups)
            or not all(isinstance(i, int) and not isinstance(i, bool) for g in groups for i in g)
            or sorted(i for g in groups for i in g) != list(range(digits))
        ):
            raise ConfigError(
                "model.factor_groups must split the FSQ digits "
                f"0..{digits - 1} into non-empty groups, each digit once, "
                f"e.g. [[0,3],[1,4],[2,5]], got {groups!r}"
            )


@dataclass
class DataConfig(Section):
    name: ClassVar[str] = "data"

    train: str = spec("", resume_safe=True, doc="train split dir, or 'synthetic' for the built-in generator")
    val: str = spec("", resume_safe=True, doc="val split dir; empty skips validation (synthetic: generated)")
    windows: int = spec(3, lo=1, doc="17-frame windows per sample (3 latent frames each)")
    future_latents: int = spec(3, lo=1, doc="last latent frames of a sample that are predicted")
    synthetic_shards: int = spec(4, lo=1, doc="shards of the generated train split")
    synthetic_frames: int = spec(4080, lo=17, doc="frames per generated shard")

    @property
    def latent_frames(self) -> int:
        return 3 * self.windows

    def check(self) -> None:
        if self.future_latents >= self.latent_frames:
            raise ConfigError(
                f"data.future_latents ({self.future_latents}) must be < "
                f"3 * data.windows ({self.latent_frames}) to leave context"
            )


@dataclass
class MaskingConfig(Section):
    name: ClassVar[str] = "masking"

    max_corrupt_rate: float = spec(
        0.2, lo=0, hi=1, hi_open=True, doc="Copilot-4D: up to this share of unmasked tokens replaced by random codes"
    )
    full_mask_rate: float = spec(
        0.0,
        lo=0,
        hi=1,
        doc="share of training samples whose target frames are masked whole, as evaluate and MaskGIT's "
        "first round see them (the rest: MaskGIT's cosine share)",
    )
    per_frame: bool = spec(
        False,
        doc="each target latent frame draws its own masked share (and full mask): a target frame then "
        "often sees the frame before it, as teacher forcing and a rollout's later frames do",
    )
    visible_prefix: bool = spec(
        False,
        doc="with per_frame: the first k target latent frames (k drawn from 0 to all but one) are left "
        "whole, as the grids before a grid are when teacher forcing or MaskGIT (a grid at a time) "
        "predicts it; the frames after them draw their shares",
    )


@dataclass
class TrainConfig(Section):
    name: ClassVar[str] = "train"

    device: DeviceChoice = spec("auto", resume_safe=True, doc="auto picks cuda when present")
    precision: Literal["bf16", "fp32"] = spec("bf16", doc="bf16 autocast applies on CUDA only")
    compile: CompileMode = spec(
        "on",
        resume_safe=True,
        doc="torch.compile the step's forward and loss: on (default mode), reduce-overhead "
        "(also CUDA graphs), max-autotune; a failure falls back to eager",
    )
    batch_size: int | Literal["auto"] = spec(
        4,
        lo=1,
        resume_safe=True,
        doc="samples per micro-batch (per process), or auto: the largest that divides "
        "the effective batch and fits the GPU, found by trying real steps",
    )
    grad_accum_steps: int = spec(4, resume_safe=True, lo=1, doc="micro-batches per optimizer step")
    effective_batch: int = spec(
        0,
        resume_safe=True,
        lo=0,
        doc="samples per optimizer step per process that batch_size = auto "
        "keeps; 0: batch_size x grad_accum_steps of the preset",
    )
    memory_limit_gib: float = spec(
        0.0,
        resume_safe=True,
        lo=0,
        doc="cap this process's CUDA memory (GiB), to emulate a smaller card; 0: the whole GPU",
    )
    lr: float = spec(5e-5, resume_safe=True, lo=0, lo_open=True, doc="peak learning rate")
    schedule: Literal["cosine", "constant"] = spec(
        "cosine", doc="after warmup: cosine decay to 0 at max_steps, or constant"
    )
    warmup_steps: int = spec(500, resume_safe=True, lo=0, doc="linear warmup from 0 over this many steps")
    max_steps: int = spec(60000, resume_safe=True, lo=1, doc="optimizer steps in the whole run")
    weight_decay: float = spec(0.01, lo=0, doc="AdamW decoupled weight decay")
    beta1: float = spec(0.9, lo=0, hi=1, hi_open=True)
    beta2: float = spec(0.95, lo=0, hi=1, hi_open=True)
    eps: float = spec(1e-8, lo=0, lo_open=True)
    max_grad_norm: float = spec(1.0, resume_safe=True, lo=0, lo_open=True, doc="clip the global grad norm to this")
    max_nonfinite_steps: int = spec(10, resume_safe=True, lo=1, doc="non-finite steps in a row before the run fails")
    seed: int = spec(0, lo=0)

    def check(self) -> None:
        if self.batch_size == AUTO and self.effective_batch < 1:
            raise ConfigError(
                "train.batch_size = auto needs train.effective_batch (samples per optimizer "
                "step per process), or set it with --set train.batch_size=auto over a preset that "
                "gives batch_size and grad_accum_steps"
            )
        if self.warmup_steps > self.max_steps:
            raise ConfigError(
                f"train.warmup_steps ({self.warmup_steps}) must be <= "
                f"train.max_steps ({self.max_steps}): raise --max-steps to at least {self.warmup_steps}, "
                "or (for a new run) lower train.warmup_steps"
            )


@dataclass
class EvalConfig(Section):
    name: ClassVar[str] = "eval"

    eval_steps: int = spec(500, resume_safe=True, lo=0, doc="validate every this many steps; 0 never")
    eval_samples: int = spec(32, lo=1, doc="val samples per validation: one fixed set, split over ranks")
    sample_count: int = spec(
        4,
        resume_safe=True,
        lo=0,
        doc="val samples whose predictions (argmax, MaskGIT) are kept at each validation for the samples view; 0: none",
    )
    maskgit_steps: int = spec(8, resume_safe=True, lo=1, doc="MaskGIT rounds per target frame for those predictions")


@dataclass
class CheckpointConfig(Section):
    name: ClassVar[str] = "checkpoint"

    save_steps: int = spec(1000, resume_safe=True, lo=1, doc="checkpoint every this many steps")
    keep_checkpoints: int = spec(3, resume_safe=True, lo=1, doc="newest checkpoints kept on disk")


@dataclass
class HealthConfig(Section):
    name: ClassVar[str] = "health"

    instability_norm: float = spec(
        100.0, resume_safe=True, lo=0, lo_open=True, doc="pre-clip grad norm above this warns 'instability'"
    )
    vanishing_norm: float = spec(0.001, resume_safe=True, lo=0, doc="pre-clip grad norm below this warns 'vanishing'")
    divergence_guard: bool = spec(
        True,
        resume_safe=True,
        doc="stop a run as 'diverged' when its smoothed loss climbs back above "
        "its starting loss after warm-up, its val loss rises val_rises "
        "evaluations in a row, or non-finite steps repeat",
    )
    divergence_smoothing: float = spec(
        0.95, resume_safe=True, lo=0, hi=1, hi_open=True, doc="EMA weight of the past in the loss the guard watches"
    )
    val_rises: int = spec(3, resume_safe=True, lo=0, doc="val-loss rises in a row that stop a run; 0: never")


@dataclass
class ExpectedConfig(Section):
    """What a healthy run of this preset shows, so a view can say on track, behind or ahead."""

    name: ClassVar[str] = "expected"

    data: Literal["", "real", "synthetic"] = spec(
        "",
        resume_safe=True,
        doc="the data the band below was measured on; a run on other data is not judged; empty: no band",
    )
    steps: list[float] = spec([], resume_safe=True, doc="steps at which the loss is judged (0: the first step)")
    loss_low: list[float] = spec(
        [], resume_safe=True, doc="at each of those steps, the lowest training loss of a healthy run"
    )
    loss_high: list[float] = spec(
        [], resume_safe=True, doc="at each of those steps, the highest training loss of a healthy run"
    )
    grad_norm_low: float = spec(
        0.0, resume_safe=True, lo=0, doc="pre-clip gradient norms of a healthy run lie above this"
    )
    grad_norm_high: float = spec(0.0, resume_safe=True, lo=0, doc="... and below this; 0: no range named")
    layout: list[int] = spec(
        [],
        resume_safe=True,
        doc="[data.windows, data.future_latents] the band was measured with; a run of another layout "
        "(a --set of either) is not judged; empty: any",
    )

    def check(self) -> None:
        lists = {"expected.steps": self.steps, "expected.loss_low": self.loss_low, "expected.loss_high": self.loss_high}
        for key, values in lists.items():
            for v in values:
                if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                    raise ConfigError(f"{key} must be a list of numbers, got {values!r}")
        if any(isinstance(s, float) and not s.is_integer() or s < 0 for s in self.steps):
            raise ConfigError(f"expected.steps must be steps (whole numbers >= 0), got {self.steps!r}")
        if not (len(self.steps) == len(self.loss_low) == len(self.loss_high)):
            raise ConfigError(
                "expected.steps, expected.loss_low and expected.loss_high must be as long as each other "
                f"(one band a step), got {len(self.steps)}, {len(self.loss_low)} and {len(self.loss_high)}"
            )
        if list(self.steps) != sorted(set(self.steps)):
            raise ConfigError(f"expected.steps must rise, each step once, got {self.steps!r}")
        for step, low, high in zip(self.steps, self.loss_low, self.loss_high):
            if low > high:
                raise ConfigError(f"at expected step {step}, loss_low ({low}) is above loss_high ({high})")
        if self.grad_norm_high and self.grad_norm_low > self.grad_norm_high:
            raise ConfigError(
                f"expected.grad_norm_low ({self.grad_norm_low}) is above expected.grad_norm_high "
                f"({self.grad_norm_high})"
            )
        if self.steps and not self.data:
            raise ConfigError("expected.steps name a band: say which data it was measured on (expected.data)")
        layout: Any = self.layout
        if layout and (len(layout) != 2 or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in layout)):
            raise ConfigError(
                f"expected.layout must be [windows, future_latents], two whole numbers >= 1, got {layout!r}"
            )


@dataclass
class LogConfig(Section):
    name: ClassVar[str] = "log"

    mirrors: list[str] = spec(
        [],
        resume_safe=True,
        doc="mirror every step, eval, warning and GPU reading to these, from a thread of their own: "
        "tensorboard (event files in the run's tensorboard/), wandb (the W&B run named by the run id; "
        "offline without an API key); each needs its extra: pip install 'hwm-tui[tensorboard]'",
    )
    wandb_project: str = spec(
        "hwm-tui", resume_safe=True, doc="the W&B project runs go to (the entity: WANDB_ENTITY or your default)"
    )

    def check(self) -> None:
        unknown = [m for m in self.mirrors if m not in MIRRORS]
        if unknown or len(set(self.mirrors)) != len(self.mirrors):
            raise ConfigError(f"log.mirrors must list each of {', '.join(MIRRORS)} at most once, got {self.mirrors!r}")


SECTIONS: dict[str, type[Section]] = {
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

# Keys a resumed run may change (each field's `resume_safe`): none alters the model's shape
# or the data order. batch_size and grad_accum_steps are among them so a run can move to
# another number of processes with the same global batch (the resume says so if the global
# batch changes); lr, warm-up and clipping so a diverged run goes on with gentler settings;
# the expected band and the mirrors because they change nothing a run computes.
RESUME_SAFE_KEYS = frozenset(
    f"{name}.{f.name}" for name, cls in SECTIONS.items() for f in dataclasses.fields(cls) if f.metadata["resume_safe"]
)


TOP_LEVEL_KEYS = ("preset", "description", "memory_budget_gib")  # a preset's keys outside any [section]


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

    def __post_init__(self) -> None:
        # The sections checked themselves; these three are the top level's own.
        for key in ("preset", "description"):
            if not isinstance(getattr(self, key), str):
                raise ConfigError(f"'{key}' must be a string")
        budget = self.memory_budget_gib
        if isinstance(budget, bool) or not isinstance(budget, (int, float)) or budget < 0:
            raise ConfigError("'memory_budget_gib' must be a number >= 0")
        self.memory_budget_gib = float(budget)
        for name, cls in SECTIONS.items():
            if not isinstance(getattr(self, name), cls):
                raise ConfigError(f"'{name}' must be a [{name}] table")

    @property
    def latent_frames(self) -> int:
        return self.data.latent_frames

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
                    type=type_name(field_types(cls)[f.name]),
                    default=default,
                    allowed=allowed_text(cls, f.name),
                    doc=f.metadata.get("doc", ""),
                )
            )
    return rows
