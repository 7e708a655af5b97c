"""Options several commands share: their help texts and the --device check."""

from __future__ import annotations

RUNS_DIR_HELP = "Folder of runs (default: $HWM_RUNS_DIR, else ./runs)."
PRESET_HELP = "Preset to benchmark."
STEPS_HELP = "Timed optimizer steps (after warm-up)."
SET_HELP = "Override a preset key: section.key=value (repeatable)."
JSON_HELP = "Print one JSON object."


LOG_HELP = (
    "Mirror the run to tensorboard or wandb (repeatable); none: no mirror. "
    "Default: the preset's log.mirrors. Needs pip install 'hwm-tui[tensorboard]' / 'hwm-tui[wandb]'."
)
NO_MIRROR = "none"


def mirror_names(log: list[str]) -> list[str] | None:
    """--log values checked: None when not given (the preset decides), [] for none."""
    from hwm_core.config.schema import MIRRORS
    from hwm_core.errors import ConfigError

    if not log:
        return None
    names: list[str] = []
    for value in log:
        name = value.strip().lower()
        if name == NO_MIRROR and len(log) == 1:
            return []
        if name not in MIRRORS:
            raise ConfigError(f"--log {value!r}: choose {', '.join(MIRRORS)} (repeat --log for both) or {NO_MIRROR}")
        if name not in names:
            names.append(name)
    return names


def device_overrides(device: str | None, set_: list[str]) -> list[str]:
    from hwm_core.errors import ConfigError

    if device not in (None, "cpu", "cuda"):
        raise ConfigError(f"--device must be cpu or cuda, got {device!r}")
    return [*set_, f"train.device={device}"] if device else list(set_)
