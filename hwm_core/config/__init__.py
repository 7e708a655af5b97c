"""The run configuration: its schema, presets and overrides."""
