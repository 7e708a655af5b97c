"""The wheel works without the repository: presets inside it, `presets list` and a short
`train` from an install that is not the editable one."""

from __future__ import annotations

import os
import site
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from tests.helpers import REPO, set_args, tiny_sets


@pytest.mark.slow
def test_the_wheel_carries_the_presets_and_trains_from_a_fresh_venv(tmp_path):
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path / "dist"), str(REPO)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert built.returncode == 0, built.stderr
    wheel = next((tmp_path / "dist").glob("hwm_tui-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert {f"hwm_core/presets/{p}.toml" for p in ("cpu", "12gb", "24gb", "48gb", "80gb")} <= set(names)
    # every package of the source tree is in the wheel (pyproject.toml lists them by name)
    packages = {str(p.parent.relative_to(REPO)) for p in REPO.glob("hwm_*/**/__init__.py")}
    assert packages <= {str(Path(n).parent) for n in names}, packages - {str(Path(n).parent) for n in names}

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    installed = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps", str(wheel)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert installed.returncode == 0, installed.stderr
    # torch and the other dependencies from this venv's site-packages, placed after the wheel's own
    # (a .pth line adds a path; the editable install's finder in there is never started)
    venv_site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    ours = [p for p in {sysconfig.get_paths()["purelib"], *site.getsitepackages()} if Path(p).is_dir()]
    (Path(venv_site) / "dependencies.pth").write_text("\n".join(ours) + "\n")
    env = {**os.environ, "COLUMNS": "200", "PYTHONNOUSERSITE": "1"}
    env.pop("PYTHONPATH", None)

    where = subprocess.run(
        [str(python), "-c", "import hwm_core, hwm_tui; print(hwm_core.__file__, hwm_tui.__file__)"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=120,
    )
    assert where.returncode == 0 and str(REPO) not in where.stdout and str(venv) in where.stdout, where
    listed = subprocess.run(
        [str(venv / "bin" / "hwm-tui"), "presets", "list"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=120,
    )
    assert listed.returncode == 0, listed.stderr
    assert [n for n in ("cpu", "12gb", "24gb", "48gb", "80gb") if f"│ {n} " in listed.stdout] == [
        "cpu",
        "12gb",
        "24gb",
        "48gb",
        "80gb",
    ], listed.stdout
    trained = subprocess.run(
        [
            str(venv / "bin" / "hwm-tui"),
            "train",
            "--preset",
            "cpu",
            "--headless",
            "--max-steps",
            "3",
            "--runs-dir",
            str(tmp_path / "runs"),
            *set_args(tiny_sets("eval.eval_steps=0")),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=600,
    )
    assert trained.returncode == 0, trained.stderr
    assert "completed" in trained.stdout
