"""Options several commands share: their help texts and the --device check."""

from __future__ import annotations

RUNS_DIR_HELP = "Folder of runs (default: $HWM_RUNS_DIR, else ./runs)."
PRESET_HELP = "Preset to benchmark."
STEPS_HELP = "Timed optimizer steps (after warm-up)."
SET_HELP = "Override a preset key: section.key=value (repeatable)."
JSON_HELP = "Print one JSON object."
DECODER_HELP = (
    "The Cosmos DV8x8x8 decoder.jit to decode predictions to RGB with (TorchScript: it runs the file's "
    "code, so name only a file you trust). Default: $HWM_DECODER, else the one 'hwm-tui data download "
    "--decoder' put in the Hub cache; without one, no pixels."
)
NO_PIXELS_HELP = "Do not decode to pixels even when a decoder is found (token figures only; faster on a CPU)."


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


VIEW_DECODER_HELP = (
    "The Cosmos DV8x8x8 decoder.jit the samples and rollout views decode to RGB with (TorchScript: it "
    "runs the file's code, so name only a file you trust). Default: $HWM_DECODER, else the Hub cache's "
    "from 'hwm-tui data download --decoder'."
)


def name_decoder(path: str | None) -> None:
    """--decoder for the app: checked to exist (one line if not), then named for the views the
    way a user names it for the whole shell, $HWM_DECODER; they load it in worker threads."""
    import os

    from hwm_core.pixels.decoder import DECODER_ENV, find_decoder

    if path is not None:
        found = find_decoder(path)
        os.environ[DECODER_ENV] = str(found)
