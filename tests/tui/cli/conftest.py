"""The runs the command-line tests of predictions share (trained once a test process)."""

from __future__ import annotations

import pytest
import torch

from tests.helpers import make_run

# the compression preset's layout on the tiny model, halved
WHOLE_WINDOW = ("data.windows=2", "data.future_latents=3", "model.d_model=16")
ONE_THREAD = {"OMP_NUM_THREADS": "1"}  # two threads on a busy 2-core box wait on each other (conftest.py)


@pytest.fixture(scope="session")
def runs(tmp_path_factory):
    """A 2-step run of the whole-window layout and one of the default layout (one grid)."""
    runs = tmp_path_factory.mktemp("predicting") / "runs"
    threads = torch.get_num_threads()
    with pytest.MonkeyPatch.context() as env:
        for name, value in ONE_THREAD.items():
            env.setenv(name, value)  # so the training session keeps the one thread
        torch.set_num_threads(1)
        yield runs, make_run(runs, *WHOLE_WINDOW), make_run(runs)
    torch.set_num_threads(threads)
