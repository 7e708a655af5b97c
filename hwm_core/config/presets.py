"""The presets shipped with hwm-tui: where they are, their names, and a preset named or given as a path."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from ..errors import ConfigError


def presets_dir() -> Path:
    """The presets shipped with the package (hwm_core.presets: presets/ of the repository,
    which the wheel carries inside hwm_core)."""
    return Path(str(resources.files("hwm_core.presets")))


def preset_names() -> list[str]:
    order = {"cpu": 0, "12gb": 1, "24gb": 2, "48gb": 3, "80gb": 4}
    names = [p.stem for p in presets_dir().glob("*.toml")]
    return sorted(names, key=lambda n: (order.get(n, 99), n))


def resolve_preset_path(preset: str) -> Path:
    candidate = Path(preset).expanduser()
    if candidate.suffix == ".toml" or "/" in preset:
        if not candidate.is_file():
            raise ConfigError(
                f"preset file {preset} does not exist: give a path to a TOML file "
                f"or one of: {', '.join(preset_names())}"
            )
        return candidate
    path = presets_dir() / f"{preset}.toml"
    if not path.is_file():
        raise ConfigError(
            f"unknown preset '{preset}': choose one of {', '.join(preset_names())} or give a path to a TOML file"
        )
    return path
