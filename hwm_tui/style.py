"""Colours shared by the headless line and the dashboard."""

# vanishing yellow, instability orange, everything that loses a step red.
WARNING_STYLES = {
    "vanishing": "yellow",
    "instability": "dark_orange",
    "nonfinite": "red",
    "skipped": "red",
    "checkpoint": "red",
    "disk": "red",
}
