"""Handing a worker thread's result to its screen."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from textual.screen import Screen


def show_from_worker(screen: Screen, method: Callable[..., None], *args: Any) -> None:
    """Run `method(*args)` on the UI thread, unless the screen has left by then: a
    read of the runs folder may finish just after `escape`, while the screen's
    widgets are being removed (it is off the stack at once, its widgets go later)."""

    def deliver() -> None:
        if screen.is_attached and screen in screen.app.screen_stack:
            method(*args)

    try:
        app = screen.app
    except RuntimeError:  # textual's NoActiveAppError: the screen is detached, and this thread knows no app
        return  # the screen has left: nothing to show (it printed a traceback from the thread)
    app.call_from_thread(deliver)
