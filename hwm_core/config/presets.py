"""The presets shipped with hwm-tui: where they are, their names, and a preset named or given as a path."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from ..errors import ConfigError

# A source checkout run without an install (PYTHONPATH=. python -m hwm_tui) has no package
# hwm_core.presets: the wheel builds it from the repository's presets/, which sits beside hwm_core.
SOURCE_PRESETS = Path(__file__).resolve().parents[2] / "presets"


def presets_dir() -> Path:
    """The presets shipped with hwm-tui: the package hwm_core.presets (presets/ of the
    repository, which the wheel carries inside hwm_core), or in a source checkout that was
    not installed, the repository's presets/ itself."""
    try:
        shipped = Path(str(resources.files("hwm_core.presets")))
    except ModuleNotFoundError:
        return SOURCE_PRESETS
    return shipped if any(shipped.glob("*.toml")) else SOURCE_PRESETS


def preset_names() -> list[str]:
    order = {"cpu": 0, "12gb": 1, "24gb": 2, "48gb": 3, "80gb": 4}
    names = [p.stem for p in presets_dir().glob("*.toml")]
    return sorted(names, key=lambda n: (order.get(n, 99), n))


def _choices() -> str:
    names = preset_names()
    if not names:  # never a sentence that offers an empty list
        return f"no preset is shipped here (none in {presets_dir()}): reinstall hwm-tui, or give a path to a TOML file"
    return f"choose one of {', '.join(names)} or give a path to a TOML file"


def resolve_preset_path(preset: str) -> Path:
    candidate = Path(preset).expanduser()
    if candidate.suffix == ".toml" or "/" in preset:
        if not candidate.is_file():
            names = ", ".join(preset_names()) or f"none shipped here, in {presets_dir()}"
            raise ConfigError(f"preset file {preset} does not exist: give a path to a TOML file or one of: {names}")
        return candidate
    path = presets_dir() / f"{preset}.toml"
    if not path.is_file():
        raise ConfigError(f"unknown preset '{preset}': {_choices()}")
    return path
