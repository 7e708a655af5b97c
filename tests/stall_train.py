"""`hwm-tui train`, made to stall at a chosen moment so a test can SIGKILL it there.

    python stall_train.py step N READY -- <train args>        stalls inside step N's backward pass
    python stall_train.py checkpoint N READY -- <train args>  stalls with step N's checkpoint half written

It writes READY when it has stalled. The real CLI runs otherwise unchanged.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import hwm_core.model.masked_hwm as model_module
import hwm_core.runs.checkpoint as checkpoint_module
import hwm_core.training.trainer as trainer_module
from hwm_tui.cli import main

point, at_step, ready = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])
sys.argv = ["hwm-tui", *sys.argv[sys.argv.index("--") + 1 :]]


def stall() -> None:
    ready.write_text(str(os.getpid()))
    time.sleep(3600)


if point == "step":
    real_step, real_loss = trainer_module.Trainer._train_step, model_module.masked_token_loss
    current = {"step": 0}

    def step(self, prefetcher):
        current["step"] = self.session.state.step + 1
        return real_step(self, prefetcher)

    def loss(*args):
        if current["step"] == at_step:
            stall()
        return real_loss(*args)

    trainer_module.Trainer._train_step = step
    model_module.masked_token_loss = loss
elif point == "checkpoint":
    real_write = checkpoint_module._write_file

    def write(path, tensors, metadata):
        real_write(path, tensors, metadata)
        if f"step_{at_step:08d}" in path.name:
            data = path.read_bytes()
            path.write_bytes(data[: len(data) // 2])
            stall()

    checkpoint_module._write_file = write
else:
    raise SystemExit(f"unknown stall point {point}")

main()
