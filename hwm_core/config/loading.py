"""Loading a configuration: a preset's TOML, `--set` overrides, a run's config.toml, all checked.

Loading rejects unknown sections and keys, wrong types and out-of-range values
with one line naming the key and the file, because a silently ignored typo in a
60,000-step run costs days.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised only on 3.10
    import tomli as tomllib

from ..errors import ConfigError
from .fields import check_value
from .presets import presets_dir, resolve_preset_path
from .schema import AUTO, SECTIONS, TOP_LEVEL_KEYS, Config


def load_config(preset: str, overrides: list[str] | None = None) -> Config:
    """Read a preset (name or path), apply `section.key=value` overrides, validate."""
    path = resolve_preset_path(preset)
    raw = read_toml(path)
    name = path.stem if path.parent == presets_dir() else str(path)
    config = config_from_dict(raw, source=str(path), preset_name=name)
    config, _ = with_overrides(config, overrides or [], source=f"{path} with --set/--data/--max-steps")
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
    """A checked Config from a preset's or a run's TOML; every broken key is one line naming `source`."""
    top: dict[str, Any] = {"preset": preset_name}
    sections: dict[str, dict[str, Any]] = {}
    for key, value in raw.items():
        if key in SECTIONS:
            if not isinstance(value, dict):
                raise ConfigError(f"{source}: '{key}' must be a [{key}] table")
            sections[key] = {sub: _checked(key, sub, sub_value, source) for sub, sub_value in value.items()}
        elif key in TOP_LEVEL_KEYS:
            top[key] = value
        else:
            raise ConfigError(f"{source}: unknown section or key '{key}': sections are {', '.join(SECTIONS)}")
    # Every key's own check came first (in the file's order), then the rules tying keys together.
    with _said_by(source):
        built: dict[str, Any] = {name: cls(**sections.get(name, {})) for name, cls in SECTIONS.items()}
        return Config(**top, **built)


def with_overrides(
    config: Config, overrides: list[str], *, allowed: frozenset[str] | None = None, source: str = "--set"
) -> tuple[Config, list[str]]:
    """`config` with `section.key=value` strings applied (a new Config, checked; `config` is
    left as it was) and the dotted keys that changed. A key's own error names --set;
    `source` names where rules tying keys together were broken (the preset plus overrides)."""
    changes: dict[str, dict[str, Any]] = {}

    def current(section: str, key: str) -> Any:
        return changes.get(section, {}).get(key, getattr(getattr(config, section), key))

    touched = []
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
        known = [f.name for f in dataclasses.fields(SECTIONS[section_name])]
        if key not in known:
            raise ConfigError(
                f"--set {item!r}: unknown key '{key}' in [{section_name}]: known keys are {', '.join(known)}"
            )
        value = _parse_override_value(text.strip())
        if allowed is not None and dotted not in allowed and value != current(section_name, key):
            raise ConfigError(
                f"--set {dotted}: cannot change on resume, it would change "
                f"the run; keys that may change: {', '.join(sorted(allowed))}"
            )
        before = current(section_name, key)
        section_changes = changes.setdefault(section_name, {})
        auto = dotted == "train.batch_size" and value == AUTO and isinstance(before, int)
        if auto and not current("train", "effective_batch"):
            # auto keeps the effective batch the preset (or the run) had
            section_changes["effective_batch"] = before * current("train", "grad_accum_steps")
        section_changes[key] = _checked(section_name, key, value, "--set")
        if dotted not in touched:
            touched.append(dotted)
    with _said_by(source):
        sections = {name: dataclasses.replace(getattr(config, name), **values) for name, values in changes.items()}
    changed = [dotted for dotted in touched if config.get(dotted) != current(*dotted.split(".", 1))]
    return dataclasses.replace(config, **sections), changed


def _parse_override_value(text: str) -> Any:
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        # Bare words are strings (paths, 'synthetic'), so users need not quote them.
        return text


def _checked(section: str, key: str, value: Any, source: str) -> Any:
    cls = SECTIONS[section]
    known = [f.name for f in dataclasses.fields(cls)]
    if key not in known:
        raise ConfigError(f"{source}: unknown key '{key}' in [{section}]: known keys are {', '.join(known)}")
    with _said_by(source):
        return check_value(cls, key, value)


@contextmanager
def _said_by(source: str) -> Iterator[None]:
    """The config's own lines ("model.d_model must be ...") with the file or flag they came from in front."""
    try:
        yield
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None


def config_from_toml_file(path: Path) -> Config:
    """Read a run's resolved `config.toml` back."""
    raw = read_toml(path)
    return config_from_dict(raw, source=str(path), preset_name=str(raw.get("preset", "custom")))
