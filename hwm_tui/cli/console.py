"""Where the CLI writes: results to stdout, errors and progress to stderr."""

from __future__ import annotations

from rich.console import Console

console = Console(soft_wrap=True)
err_console = Console(stderr=True)
