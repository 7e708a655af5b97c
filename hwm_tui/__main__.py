"""`python -m hwm_tui` (what torchrun starts on every rank)."""

from .cli import main

main()
