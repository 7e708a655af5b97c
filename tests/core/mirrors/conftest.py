"""W&B kept inside the test's temp folders, offline because no credentials are found."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _wandb_offline_and_local(tmp_path_factory, monkeypatch):
    home = tmp_path_factory.getbasetemp() / "wandb-home"
    for name in ("WANDB_API_KEY", "WANDB_MODE", "WANDB_BASE_URL", "WANDB_ENTITY", "WANDB_PROJECT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NETRC", str(home / "no-netrc"))  # no `wandb login` either
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(home / "config"))
    monkeypatch.setenv("WANDB_CACHE_DIR", str(home / "cache"))
    monkeypatch.setenv("WANDB_DATA_DIR", str(home / "data"))
