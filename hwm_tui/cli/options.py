"""Options several commands share: their help texts and the --device check."""

from __future__ import annotations

RUNS_DIR_HELP = "Folder of runs (default: $HWM_RUNS_DIR, else ./runs)."
PRESET_HELP = "Preset to benchmark."
STEPS_HELP = "Timed optimizer steps (after warm-up)."
SET_HELP = "Override a preset key: section.key=value (repeatable)."
JSON_HELP = "Print one JSON object."


def device_overrides(device: str | None, set_: list[str]) -> list[str]:
    from hwm_core.errors import ConfigError

    if device not in (None, "cpu", "cuda"):
        raise ConfigError(f"--device must be cpu or cuda, got {device!r}")
    return [*set_, f"train.device={device}"] if device else list(set_)
