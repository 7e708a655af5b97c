"""Shared fixtures: isolated cache and runs dirs. Helpers tests import are in helpers.py."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache(tmp_path_factory):
    """Generated synthetic splits land in one temp cache for the whole session."""
    cache = tmp_path_factory.mktemp("cache")
    os.environ["HWM_CACHE_DIR"] = str(cache)
    os.environ.pop("HWM_RUNS_DIR", None)
    yield cache


@pytest.fixture
def runs_dir(tmp_path) -> Path:
    path = tmp_path / "runs"
    return path
