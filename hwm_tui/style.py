"""Colours shared by the headless line and the dashboard."""

# vanishing yellow, instability orange, everything that loses a step red.
# Rich style names, for Text and the headless console:
WARNING_STYLES = {
    "vanishing": "yellow",
    "instability": "dark_orange",
    "nonfinite": "red",
    "skipped": "red",
    "checkpoint": "red",
    "disk": "red",
}

# The same colours as Textual markup takes them (border titles): CSS colour names.
WARNING_MARKUP = {kind: {"dark_orange": "darkorange"}.get(style, style) for kind, style in WARNING_STYLES.items()}
