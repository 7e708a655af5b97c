"""Shared fixtures: isolated cache and runs dirs; the longest test starts first. Helpers
tests import are in helpers.py."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache(tmp_path_factory, worker_id):
    """Generated synthetic splits land in one temp cache for the whole run, shared by the
    parallel workers (a split is written to a temporary name and renamed in, so two
    workers generating the same one at once both end with it)."""
    base = tmp_path_factory.getbasetemp()
    cache = (base.parent if worker_id != "master" else base) / "cache"
    cache.mkdir(exist_ok=True)
    os.environ["HWM_CACHE_DIR"] = str(cache)
    os.environ.pop("HWM_RUNS_DIR", None)
    yield cache


@pytest.fixture
def runs_dir(tmp_path) -> Path:
    path = tmp_path / "runs"
    return path


def pytest_configure(config: pytest.Config) -> None:
    # No test finds a decoder (or anything else) in the user's own Hub cache: an empty one, set
    # before any test module imports huggingface_hub (which reads it once, at import).
    os.environ.pop("HWM_DECODER", None)
    os.environ["HF_HUB_CACHE"] = tempfile.mkdtemp(prefix="hwm-tests-hub-")
    if hasattr(config, "workerinput"):  # a parallel worker (before any test imports torch)
        # One torch thread a worker and a process it starts: two workers with two threads each
        # on two cores make each parallel region wait for a descheduled thread (several times slower).
        os.environ.setdefault("OMP_NUM_THREADS", "1")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # With --dist worksteal the first test goes to the first worker, which then trains
    # it for minutes while the other workers take over the rest of its share.
    items.sort(key=lambda item: item.get_closest_marker("longest") is None)
