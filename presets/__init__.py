"""The hardware presets (TOML), shipped inside the wheel as the package hwm_core.presets."""
