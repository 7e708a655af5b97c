"""The run configuration: a strict schema for presets and `--set` overrides.

Every key a preset may hold is a dataclass field below, with its type and range.
Loading rejects unknown sections and keys, wrong types and out-of-range values
with one line naming the key and the file, because a silently ignored typo in a
60,000-step run costs days.
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised only on 3.10
    import tomli as tomllib

from ..errors import ConfigError
from ..fsq import FSQ_LEVELS

AUTO = "auto"  # train.batch_size chosen at start (see micro_batch.py)


def _spec(default: Any, *, lo: float | None = None, hi: float | None = None,
          lo_open: bool = False, hi_open: bool = False,
          choices: tuple[str, ...] | None = None, doc: str = "") -> Any:
    """A schema field: default, inclusive/exclusive bounds, allowed strings."""
    meta = {"lo": lo, "hi": hi, "lo_open": lo_open, "hi_open": hi_open,
            "choices": choices, "doc": doc}
    if isinstance(default, list):
        return field(default_factory=lambda: json.loads(json.dumps(default)), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class ModelConfig:
    d_model: int = _spec(192, lo=8, doc="width of every token's hidden state")
    n_layers: int = _spec(6, lo=1, doc="number of spatial+temporal blocks")
    n_heads: int = _spec(6, lo=1, doc="attention heads; must divide d_model")
    mlp_ratio: float = _spec(4.0, lo=0, lo_open=True, doc="MLP hidden width / d_model")
    shared_from: int = _spec(6, lo=0, doc="layers from this index on reuse one block's weights; "
                                          "n_layers means no sharing")
    factor_groups: list = _spec([[0, 3], [1, 4], [2, 5]],
                                doc="FSQ digits predicted together; a partition of 0..5")
    init_std: float = _spec(0.02, lo=0, lo_open=True, doc="std of the summed token embedding")
    dropout: float = _spec(0.0, lo=0, hi=1, hi_open=True, doc="dropout on residual branches")
    condition_on_states: bool = _spec(True, doc="add the embedded robot states to the tokens")
    positions: str = _spec("learned", choices=("learned", "rope"),
                           doc="learned spatial and temporal position embeddings, or rotary (RoPE: rows and "
                               "columns in spatial attention, time in temporal attention)")


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
    max_corrupt_rate: float = _spec(0.2, lo=0, hi=1, hi_open=True,
                                    doc="Copilot-4D: up to this share of unmasked tokens "
                                        "replaced by random codes")


@dataclass
class TrainConfig:
    device: str = _spec("auto", choices=("auto", "cpu", "cuda"), doc="auto picks cuda when present")
    precision: str = _spec("bf16", choices=("bf16", "fp32"), doc="bf16 autocast applies on CUDA only")
    compile: str = _spec("on", choices=("off", "on", "reduce-overhead", "max-autotune"),
                         doc="torch.compile the step's forward and loss: on (default mode), reduce-overhead "
                             "(also CUDA graphs), max-autotune; a failure falls back to eager")
    batch_size: int | str = _spec(4, lo=1, choices=(AUTO,),
                                  doc="samples per micro-batch (per process), or auto: the largest that divides "
                                      "the effective batch and fits the GPU, found by trying real steps")
    grad_accum_steps: int = _spec(4, lo=1, doc="micro-batches per optimizer step")
    effective_batch: int = _spec(0, lo=0, doc="samples per optimizer step per process that batch_size = auto "
                                             "keeps; 0: batch_size x grad_accum_steps of the preset")
    memory_limit_gib: float = _spec(0.0, lo=0, doc="cap this process's CUDA memory (GiB), to emulate a smaller "
                                                   "card; 0: the whole GPU")
    lr: float = _spec(5e-5, lo=0, lo_open=True, doc="peak learning rate")
    schedule: str = _spec("cosine", choices=("cosine", "constant"),
                          doc="after warmup: cosine decay to 0 at max_steps, or constant")
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
    sample_count: int = _spec(4, lo=0, doc="val samples whose predictions (argmax, MaskGIT) are kept at each "
                                          "validation for the samples view; 0: none")
    maskgit_steps: int = _spec(8, lo=1, doc="MaskGIT rounds per target frame for those predictions")


@dataclass
class CheckpointConfig:
    save_steps: int = _spec(1000, lo=1, doc="checkpoint every this many steps")
    keep_checkpoints: int = _spec(3, lo=1, doc="newest checkpoints kept on disk")


@dataclass
class HealthConfig:
    instability_norm: float = _spec(100.0, lo=0, lo_open=True,
                                    doc="pre-clip grad norm above this warns 'instability'")
    vanishing_norm: float = _spec(0.001, lo=0, doc="pre-clip grad norm below this warns 'vanishing'")
    divergence_guard: bool = _spec(True, doc="stop a run as 'diverged' when its smoothed loss climbs back above "
                                             "its starting loss after warm-up, its val loss rises val_rises "
                                             "evaluations in a row, or non-finite steps repeat")
    divergence_smoothing: float = _spec(0.95, lo=0, hi=1, hi_open=True,
                                        doc="EMA weight of the past in the loss the guard watches")
    val_rises: int = _spec(3, lo=0, doc="val-loss rises in a row that stop a run; 0: never")


SECTIONS: dict[str, type] = {
    "model": ModelConfig,
    "data": DataConfig,
    "masking": MaskingConfig,
    "train": TrainConfig,
    "eval": EvalConfig,
    "checkpoint": CheckpointConfig,
    "health": HealthConfig,
}

# Keys a resumed run may change: none alters the model's shape or the data order.
# batch_size and grad_accum_steps are here so a run can move to another number of
# processes with the same global batch (the resume says so if the global batch changes).
RESUME_SAFE_KEYS = frozenset({
    "train.max_steps", "train.device", "train.max_nonfinite_steps", "train.compile",
    "train.batch_size", "train.grad_accum_steps", "train.effective_batch", "train.memory_limit_gib",
    "eval.eval_steps", "eval.sample_count", "eval.maskgit_steps",
    "checkpoint.save_steps", "checkpoint.keep_checkpoints",
    "health.instability_norm", "health.vanishing_norm",
    "health.divergence_guard", "health.divergence_smoothing", "health.val_rises",
    # a diverged run goes on with gentler settings
    "train.lr", "train.warmup_steps", "train.max_grad_norm",
    "data.train", "data.val",
})


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

    @property
    def latent_frames(self) -> int:
        return 3 * self.data.windows

    @property
    def context_latents(self) -> int:
        return self.latent_frames - self.data.future_latents

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"preset": self.preset, "description": self.description,
                               "memory_budget_gib": self.memory_budget_gib}
        for name in SECTIONS:
            out[name] = dataclasses.asdict(getattr(self, name))
        return out

    def to_toml(self) -> str:
        lines = [f"preset = {_toml_value(self.preset)}",
                 f"description = {_toml_value(self.description)}",
                 f"memory_budget_gib = {_toml_value(self.memory_budget_gib)}"]
        for name in SECTIONS:
            lines.append("")
            lines.append(f"[{name}]")
            for key, value in dataclasses.asdict(getattr(self, name)).items():
                lines.append(f"{key} = {_toml_value(value)}")
        return "\n".join(lines) + "\n"

    def get(self, dotted: str) -> Any:
        section, key = dotted.split(".", 1)
        return getattr(getattr(self, section), key)


def _toml_value(value: Any) -> str:
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
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} to TOML")


# --------------------------------------------------------------------------- presets

def presets_dir() -> Path:
    """The `presets/` folder shipped beside the packages."""
    return Path(__file__).resolve().parent.parent.parent / "presets"


def preset_names() -> list[str]:
    order = {"cpu": 0, "12gb": 1, "24gb": 2, "48gb": 3, "80gb": 4}
    names = [p.stem for p in presets_dir().glob("*.toml")]
    return sorted(names, key=lambda n: (order.get(n, 99), n))


def resolve_preset_path(preset: str) -> Path:
    candidate = Path(preset).expanduser()
    if candidate.suffix == ".toml" or "/" in preset:
        if not candidate.is_file():
            raise ConfigError(f"preset file {preset} does not exist: give a path to a TOML file "
                              f"or one of: {', '.join(preset_names())}")
        return candidate
    path = presets_dir() / f"{preset}.toml"
    if not path.is_file():
        raise ConfigError(f"unknown preset '{preset}': choose one of {', '.join(preset_names())} "
                          "or give a path to a TOML file")
    return path


def load_config(preset: str, overrides: list[str] | None = None) -> Config:
    """Read a preset (name or path), apply `section.key=value` overrides, validate."""
    path = resolve_preset_path(preset)
    raw = read_toml(path)
    name = path.stem if path.parent == presets_dir() else str(path)
    config = config_from_dict(raw, source=str(path), preset_name=name)
    apply_overrides(config, overrides or [], source=f"{path} with --set/--data/--max-steps")
    return config


def read_toml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path} is not a text file: a preset must be TOML") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML ({exc}): fix the syntax") from None


def config_from_dict(raw: dict[str, Any], *, source: str, preset_name: str = "custom") -> Config:
    config = Config(preset=preset_name)
    for key, value in raw.items():
        if key in SECTIONS:
            if not isinstance(value, dict):
                raise ConfigError(f"{source}: '{key}' must be a [{key}] table")
            section = getattr(config, key)
            for sub_key, sub_value in value.items():
                _set_field(section, key, sub_key, sub_value, source)
        elif key == "description":
            if not isinstance(value, str):
                raise ConfigError(f"{source}: 'description' must be a string")
            config.description = value
        elif key == "preset":
            if not isinstance(value, str):
                raise ConfigError(f"{source}: 'preset' must be a string")
            config.preset = value
        elif key == "memory_budget_gib":
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ConfigError(f"{source}: 'memory_budget_gib' must be a number >= 0")
            config.memory_budget_gib = float(value)
        else:
            raise ConfigError(f"{source}: unknown section or key '{key}': "
                              f"sections are {', '.join(SECTIONS)}")
    validate(config, source)
    return config


def apply_overrides(config: Config, overrides: list[str], *, allowed: frozenset[str] | None = None,
                    source: str = "--set") -> list[str]:
    """Apply `section.key=value` strings; returns the dotted keys that changed.

    `source` names where cross-key rules were broken (the preset plus overrides).
    """
    changed = []
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"--set {item!r}: write section.key=value, e.g. train.lr=1e-4")
        dotted, text = item.split("=", 1)
        dotted = dotted.strip()
        if "." not in dotted:
            raise ConfigError(f"--set {item!r}: the key needs its section, e.g. train.{dotted}")
        section_name, key = dotted.split(".", 1)
        if section_name not in SECTIONS:
            raise ConfigError(f"--set {item!r}: unknown section '{section_name}': "
                              f"sections are {', '.join(SECTIONS)}")
        section = getattr(config, section_name)
        known = [f.name for f in dataclasses.fields(section)]
        if key not in known:
            raise ConfigError(f"--set {item!r}: unknown key '{key}' in [{section_name}]: "
                              f"known keys are {', '.join(known)}")
        value = _parse_override_value(text.strip())
        if allowed is not None and dotted not in allowed:
            if value != getattr(section, key, object()):
                raise ConfigError(f"--set {dotted}: cannot change on resume, it would change "
                                  f"the run; keys that may change: {', '.join(sorted(allowed))}")
        before = getattr(section, key, None)
        if dotted == "train.batch_size" and value == AUTO and isinstance(before, int) \
                and not config.train.effective_batch:
            # auto keeps the effective batch the preset (or the run) had
            config.train.effective_batch = before * config.train.grad_accum_steps
        _set_field(section, section_name, key, value, "--set")
        if getattr(section, key) != before:
            changed.append(dotted)
    validate(config, source)
    return changed


def _parse_override_value(text: str) -> Any:
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        # Bare words are strings (paths, 'synthetic'), so users need not quote them.
        return text


def _set_field(section: Any, section_name: str, key: str, value: Any, source: str) -> None:
    fields = {f.name: f for f in dataclasses.fields(section)}
    if key not in fields:
        raise ConfigError(f"{source}: unknown key '{key}' in [{section_name}]: "
                          f"known keys are {', '.join(fields)}")
    spec = fields[key]
    where = f"{source}: {section_name}.{key}"
    expected = _FIELD_TYPES[spec.type] if isinstance(spec.type, str) else spec.type
    meta = spec.metadata
    value = _coerce(value, expected, where, meta.get("choices"))
    if meta.get("choices") and isinstance(value, str) and value not in meta["choices"]:
        raise ConfigError(f"{where} must be one of {', '.join(meta['choices'])}, got {value!r}")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        lo, hi = meta.get("lo"), meta.get("hi")
        if isinstance(value, float) and math.isnan(value):
            raise ConfigError(f"{where} must be a number, got nan")
        if lo is not None and (value < lo or (meta.get("lo_open") and value == lo)):
            bound = f"> {lo}" if meta.get("lo_open") else f">= {lo}"
            raise ConfigError(f"{where} must be {bound}, got {value}")
        if hi is not None and (value > hi or (meta.get("hi_open") and value == hi)):
            bound = f"< {hi}" if meta.get("hi_open") else f"<= {hi}"
            raise ConfigError(f"{where} must be {bound}, got {value}")
    setattr(section, key, value)


_FIELD_TYPES = {"int": int, "float": float, "str": str, "bool": bool, "list": list, "int | str": "int_or_choice"}


def _coerce(value: Any, expected: Any, where: str, choices: tuple[str, ...] | None = None) -> Any:
    if expected == "int_or_choice":
        if isinstance(value, str) and choices and value in choices:
            return value
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where} must be an integer or {' or '.join(choices or ())}, got {value!r}")
        return value
    if expected is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where} must be true or false, got {value!r}")
        return value
    if expected is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where} must be an integer, got {value!r}")
        return value
    if expected is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where} must be a number, got {value!r}")
        return float(value)
    if expected is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where} must be a string, got {value!r}")
        return value
    if expected is list:
        if not isinstance(value, list):
            raise ConfigError(f"{where} must be a list, got {value!r}")
        return value
    raise TypeError(expected)


def validate(config: Config, source: str) -> None:
    """Rules that tie several keys together."""
    m, d, t = config.model, config.data, config.train
    if m.d_model % m.n_heads:
        raise ConfigError(f"{source}: model.d_model ({m.d_model}) must be divisible by "
                          f"model.n_heads ({m.n_heads})")
    if (m.d_model // m.n_heads) % 2:
        raise ConfigError(f"{source}: model.d_model / model.n_heads must be even, "
                          f"got {m.d_model // m.n_heads}")
    if m.positions == "rope" and (m.d_model // m.n_heads) % 4:
        raise ConfigError(f"{source}: model.positions = rope needs model.d_model / model.n_heads divisible by 4 "
                          f"(rows and columns take half each), got {m.d_model // m.n_heads}")
    if m.shared_from > m.n_layers:
        raise ConfigError(f"{source}: model.shared_from ({m.shared_from}) must be <= "
                          f"model.n_layers ({m.n_layers}); n_layers means no sharing")
    groups = m.factor_groups
    digits = len(FSQ_LEVELS)
    if (not groups or not all(isinstance(g, list) and g for g in groups)
            or not all(isinstance(i, int) and not isinstance(i, bool) for g in groups for i in g)
            or sorted(i for g in groups for i in g) != list(range(digits))):
        raise ConfigError(f"{source}: model.factor_groups must split the FSQ digits "
                          f"0..{digits - 1} into non-empty groups, each digit once, "
                          f"e.g. [[0,3],[1,4],[2,5]], got {groups!r}")
    if d.future_latents >= config.latent_frames:
        raise ConfigError(f"{source}: data.future_latents ({d.future_latents}) must be < "
                          f"3 * data.windows ({config.latent_frames}) to leave context")
    if t.batch_size == AUTO and t.effective_batch < 1:
        raise ConfigError(f"{source}: train.batch_size = auto needs train.effective_batch (samples per optimizer "
                          "step per process), or set it with --set train.batch_size=auto over a preset that "
                          "gives batch_size and grad_accum_steps")
    if t.warmup_steps > t.max_steps:
        raise ConfigError(f"{source}: train.warmup_steps ({t.warmup_steps}) must be <= "
                          f"train.max_steps ({t.max_steps}): raise --max-steps to at least {t.warmup_steps}, "
                          "or (for a new run) lower train.warmup_steps")


def config_from_toml_file(path: Path) -> Config:
    """Read a run's resolved `config.toml` back."""
    raw = read_toml(path)
    return config_from_dict(raw, source=str(path), preset_name=str(raw.get("preset", "custom")))


def describe_schema() -> list[tuple[str, str, str]]:
    """(dotted key, type, doc) for every key, for `presets show --schema` and docs."""
    rows = []
    for name, cls in SECTIONS.items():
        for f in dataclasses.fields(cls):
            type_name = f.type if isinstance(f.type, str) else f.type.__name__
            rows.append((f"{name}.{f.name}", type_name, f.metadata.get("doc", "")))
    return rows
