"""Loading a configuration: a preset's TOML, `--set` overrides, a run's config.toml, all checked.

Loading rejects unknown sections and keys, wrong types and out-of-range values
with one line naming the key and the file, because a silently ignored typo in a
60,000-step run costs days.
"""

from __future__ import annotations

import dataclasses
import math
import sys
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised only on 3.10
    import tomli as tomllib

from ..errors import ConfigError
from ..fsq import FSQ_LEVELS
from .presets import presets_dir, resolve_preset_path
from .schema import AUTO, MIRRORS, SECTIONS, Config


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
            raise ConfigError(f"{source}: unknown section or key '{key}': sections are {', '.join(SECTIONS)}")
    validate(config, source)
    return config


def apply_overrides(
    config: Config, overrides: list[str], *, allowed: frozenset[str] | None = None, source: str = "--set"
) -> list[str]:
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
            raise ConfigError(f"--set {item!r}: unknown section '{section_name}': sections are {', '.join(SECTIONS)}")
        section = getattr(config, section_name)
        known = [f.name for f in dataclasses.fields(section)]
        if key not in known:
            raise ConfigError(
                f"--set {item!r}: unknown key '{key}' in [{section_name}]: known keys are {', '.join(known)}"
            )
        value = _parse_override_value(text.strip())
        if allowed is not None and dotted not in allowed and value != getattr(section, key, object()):
            raise ConfigError(
                f"--set {dotted}: cannot change on resume, it would change "
                f"the run; keys that may change: {', '.join(sorted(allowed))}"
            )
        before = getattr(section, key, None)
        if (
            dotted == "train.batch_size"
            and value == AUTO
            and isinstance(before, int)
            and not config.train.effective_batch
        ):
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
        raise ConfigError(f"{source}: unknown key '{key}' in [{section_name}]: known keys are {', '.join(fields)}")
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
        raise ConfigError(f"{source}: model.d_model ({m.d_model}) must be divisible by model.n_heads ({m.n_heads})")
    if (m.d_model // m.n_heads) % 2:
        raise ConfigError(f"{source}: model.d_model / model.n_heads must be even, got {m.d_model // m.n_heads}")
    if m.positions == "rope" and (m.d_model // m.n_heads) % 4:
        raise ConfigError(
            f"{source}: model.positions = rope needs model.d_model / model.n_heads divisible by 4 "
            f"(rows and columns take half each), got {m.d_model // m.n_heads}"
        )
    if m.previous_frame_layers > m.n_layers:
        raise ConfigError(
            f"{source}: model.previous_frame_layers ({m.previous_frame_layers}) must be <= "
            f"model.n_layers ({m.n_layers})"
        )
    if m.shared_from > m.n_layers:
        raise ConfigError(
            f"{source}: model.shared_from ({m.shared_from}) must be <= "
            f"model.n_layers ({m.n_layers}); n_layers means no sharing"
        )
    groups = m.factor_groups
    digits = len(FSQ_LEVELS)
    if (
        not groups
        or not all(isinstance(g, list) and g for g in groups)
        or not all(isinstance(i, int) and not isinstance(i, bool) for g in groups for i in g)
        or sorted(i for g in groups for i in g) != list(range(digits))
    ):
        raise ConfigError(
            f"{source}: model.factor_groups must split the FSQ digits "
            f"0..{digits - 1} into non-empty groups, each digit once, "
            f"e.g. [[0,3],[1,4],[2,5]], got {groups!r}"
        )
    if d.future_latents >= config.latent_frames:
        raise ConfigError(
            f"{source}: data.future_latents ({d.future_latents}) must be < "
            f"3 * data.windows ({config.latent_frames}) to leave context"
        )
    if t.batch_size == AUTO and t.effective_batch < 1:
        raise ConfigError(
            f"{source}: train.batch_size = auto needs train.effective_batch (samples per optimizer "
            "step per process), or set it with --set train.batch_size=auto over a preset that "
            "gives batch_size and grad_accum_steps"
        )
    _validate_expected(config, source)
    unknown = [m for m in config.log.mirrors if m not in MIRRORS]
    if unknown or len(set(config.log.mirrors)) != len(config.log.mirrors):
        raise ConfigError(
            f"{source}: log.mirrors must list each of {', '.join(MIRRORS)} at most once, got {config.log.mirrors!r}"
        )
    if t.warmup_steps > t.max_steps:
        raise ConfigError(
            f"{source}: train.warmup_steps ({t.warmup_steps}) must be <= "
            f"train.max_steps ({t.max_steps}): raise --max-steps to at least {t.warmup_steps}, "
            "or (for a new run) lower train.warmup_steps"
        )


def _validate_expected(config: Config, source: str) -> None:
    e = config.expected
    lists = {"expected.steps": e.steps, "expected.loss_low": e.loss_low, "expected.loss_high": e.loss_high}
    for key, values in lists.items():
        for v in values:
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise ConfigError(f"{source}: {key} must be a list of numbers, got {values!r}")
    if any(isinstance(s, float) and not s.is_integer() or s < 0 for s in e.steps):
        raise ConfigError(f"{source}: expected.steps must be steps (whole numbers >= 0), got {e.steps!r}")
    if not (len(e.steps) == len(e.loss_low) == len(e.loss_high)):
        raise ConfigError(
            f"{source}: expected.steps, expected.loss_low and expected.loss_high must be as long as each other "
            f"(one band a step), got {len(e.steps)}, {len(e.loss_low)} and {len(e.loss_high)}"
        )
    if list(e.steps) != sorted(set(e.steps)):
        raise ConfigError(f"{source}: expected.steps must rise, each step once, got {e.steps!r}")
    for step, low, high in zip(e.steps, e.loss_low, e.loss_high):
        if low > high:
            raise ConfigError(f"{source}: at expected step {step}, loss_low ({low}) is above loss_high ({high})")
    if e.grad_norm_high and e.grad_norm_low > e.grad_norm_high:
        raise ConfigError(
            f"{source}: expected.grad_norm_low ({e.grad_norm_low}) is above expected.grad_norm_high "
            f"({e.grad_norm_high})"
        )
    if e.steps and not e.data:
        raise ConfigError(f"{source}: expected.steps name a band: say which data it was measured on (expected.data)")
    if e.layout and (
        len(e.layout) != 2 or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in e.layout)
    ):
        raise ConfigError(
            f"{source}: expected.layout must be [windows, future_latents], two whole numbers >= 1, got {e.layout!r}"
        )


def config_from_toml_file(path: Path) -> Config:
    """Read a run's resolved `config.toml` back."""
    raw = read_toml(path)
    return config_from_dict(raw, source=str(path), preset_name=str(raw.get("preset", "custom")))
