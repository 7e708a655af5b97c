"""`hwm-tui bench ui` and `bench dashboard`: what the dashboard costs.

charts.py     chart redraw time with 60,000 steps of history;
dashboard.py  the same run headless and under the dashboard, in a real terminal;
tmux.py       the terminal those runs happen in: a tmux server of the bench's own.

(`bench train`, the training step itself, is hwm_core.bench: it needs no UI.)
"""
