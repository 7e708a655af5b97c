"""A clone run without an install (PYTHONPATH=. python -m hwm_tui, as researchers run one)
finds the repository's presets, and no error ever offers an empty list of presets."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from hwm_core.config import presets
from hwm_core.errors import ConfigError
from tests.helpers import REPO


def _clone_without_install(tmp_path: Path) -> tuple[Path, dict]:
    """The packages and presets/ copied as a clone has them; the interpreter started with
    -S, so the editable install's finder (a .pth file) is not read, and the libraries come
    from site-packages on PYTHONPATH alone."""
    clone = tmp_path / "clone"
    for part in ("hwm_core", "hwm_tui", "presets"):
        shutil.copytree(REPO / part, clone / part, ignore=shutil.ignore_patterns("__pycache__"))
    env = {**os.environ, "PYTHONPATH": f"{clone}{os.pathsep}{sysconfig.get_paths()['purelib']}"}
    return clone, env


def _run_in(clone: Path, env: dict, *args: str) -> subprocess.CompletedProcess:
    """`python -S ARGS` in the clone, as one without an install runs it."""
    command = [sys.executable, "-S", *args]
    return subprocess.run(command, cwd=clone, env=env, capture_output=True, text=True, timeout=120)


def test_a_clone_without_an_install_lists_and_resolves_the_shipped_presets(tmp_path):
    clone, env = _clone_without_install(tmp_path)
    where = _run_in(
        clone,
        env,
        "-c",
        "import hwm_core, importlib.util; print(hwm_core.__file__);print(importlib.util.find_spec('hwm_core.presets'))",
    )
    assert where.stdout.splitlines() == [str(clone / "hwm_core" / "__init__.py"), "None"]  # truly not installed
    listed = _run_in(clone, env, "-m", "hwm_tui", "presets", "list")
    assert listed.returncode == 0, listed.stderr
    assert all(name in listed.stdout for name in ("cpu", "12gb", "80gb", "compression"))
    unknown = _run_in(clone, env, "-m", "hwm_tui", "train", "--preset", "nope", "--headless")
    assert unknown.returncode == 2
    assert "choose one of cpu, 12gb, 24gb, 48gb, 80gb" in unknown.stderr + unknown.stdout


def test_no_error_offers_an_empty_list_of_presets(tmp_path, monkeypatch):
    monkeypatch.setattr(presets, "presets_dir", lambda: tmp_path)  # a folder with no preset in it
    for name in ("cpu", "missing/file.toml"):
        with pytest.raises(ConfigError) as raised:
            presets.resolve_preset_path(name)
        line = str(raised.value)
        assert "one of " not in line.replace("one of: none", "") and "one of  " not in line
        assert str(tmp_path) in line
