"""Every module of both packages has a room in the layer contracts lint-imports checks: a new
module outside them would be free to import anything."""

from __future__ import annotations

import pytest
import tomllib

from tests.helpers import REPO


def rooms(container: str) -> set[str]:
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    (layers,) = [c["layers"] for c in config if c["type"] == "layers" and c["containers"] == [container]]
    return {name.strip() for layer in layers for name in layer.split("|")}


@pytest.mark.parametrize("container", ["hwm_core", "hwm_tui"])
def test_every_module_is_in_a_layer(container):
    root = REPO / container
    modules = {p.stem for p in root.glob("*.py") if p.stem != "__init__"}
    packages = {p.parent.name for p in root.glob("*/__init__.py")} - {"presets"}
    assert modules | packages <= rooms(container), sorted((modules | packages) - rooms(container))
