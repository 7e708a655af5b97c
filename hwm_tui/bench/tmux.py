"""A program in a real terminal: a tmux session that can be typed into and read.

The dashboard benches (and the end-to-end tests) drive the real app this way, as
a user over SSH meets it. Each session runs on a tmux server named for its user
(`-L`), never the user's own server.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

from hwm_core.errors import UserError

EXIT_MARK = "TMUX-EXIT="  # printed with the command's exit code when it ends


def require_tmux() -> None:
    if shutil.which("tmux") is None:
        raise UserError("this runs the dashboard in a real terminal and needs tmux: install it (apt-get install tmux)")


class TmuxSession:
    """`command` (a shell line) in a new session of `size` on server `server`;
    with `cpu`, tmux and the command are pinned to that core."""

    def __init__(
        self,
        command: str,
        *,
        server: str,
        size: tuple[int, int] = (120, 36),
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
        cpu: int | None = None,
        linger_s: int = 600,
    ):
        self.server = server
        self.name = f"{server}-{uuid.uuid4().hex[:8]}"
        exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in {"TERM": "xterm-256color", **(env or {})}.items())
        where = f"cd {shlex.quote(str(cwd))} && " if cwd is not None else ""
        # The session outlives the command, so its last screen can still be read.
        script = f"{where}env {exports} {command}; echo {EXIT_MARK}$?; sleep {linger_s}"
        pin = ["taskset", "-c", str(cpu)] if cpu is not None else []
        subprocess.run(
            [*pin, *self._tmux("new-session", "-d", "-s", self.name, "-x", str(size[0]), "-y", str(size[1]), script)],
            check=True,
        )
        # a server started earlier may size new windows its own way
        self.run("resize-window", "-t", self.name, "-x", str(size[0]), "-y", str(size[1]))
        self._output: Path | None = None

    def _tmux(self, *args: str) -> list[str]:
        return ["tmux", "-L", self.server, *args]

    def run(self, *args: str) -> str:
        return subprocess.run(self._tmux(*args), capture_output=True, text=True).stdout

    def screen(self) -> str:
        return self.run("capture-pane", "-p", "-t", self.name)

    def keys(self, *keys: str) -> None:
        self.run("send-keys", "-t", self.name, *keys)

    @property
    def exited(self) -> bool:
        return EXIT_MARK in self.screen()

    def wait_for(self, text: str, timeout: float = 60.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            screen = self.screen()
            if text in screen:
                return screen
            if time.monotonic() > deadline:
                raise AssertionError(f"{text!r} never showed; the screen was:\n{screen}")
            time.sleep(0.1)

    def record_output(self) -> None:
        """From now on, keep what the program writes to its terminal, as tmux receives
        it: watching that costs no process per look (capture-pane would), so a key's
        latency is the program's and not the harness's."""
        self._output = Path(tempfile.mkstemp(prefix="hwm-tmux-pane-")[1])
        self.run("pipe-pane", "-o", "-t", self.name, f"cat >> {shlex.quote(str(self._output))}")

    @property
    def output_size(self) -> int:
        return self._output.stat().st_size if self._output is not None else 0

    def output_since(self, offset: int) -> bytes:
        if self._output is None:
            return b""
        with open(self._output, "rb") as fh:
            fh.seek(offset)
            return fh.read()

    def close(self) -> None:
        self.run("kill-session", "-t", self.name)
        if self._output is not None:
            self._output.unlink(missing_ok=True)


def pinned_env() -> dict[str, str]:
    """What a benched run must share with this process (its synthetic data cache)."""
    cache = os.environ.get("HWM_CACHE_DIR")
    return {"HWM_CACHE_DIR": cache} if cache else {}
