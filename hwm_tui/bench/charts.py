"""`hwm-tui bench ui`: how long the dashboard's charts take to draw a long run."""

from __future__ import annotations

import asyncio
import gc
import math
import statistics
import tempfile
import time
from pathlib import Path

from hwm_core.events.types import CheckpointEvent, EvalEvent, StartEvent, StateEvent, StepEvent, WarningEvent
from hwm_core.status import RUNNING
from hwm_core.training.schedule import lr_at

from ..link import ReplayLink


def synthetic_history(steps: int) -> list:
    """A plausible 60,000-step run: falling noisy loss, cosine LR, spiky grad norms."""
    import random

    rng = random.Random(0)
    events: list = [
        StartEvent(
            run_id="bench",
            run_dir="",
            preset="12gb",
            device="bench",
            start_step=0,
            max_steps=steps,
            peak_lr=5e-5,
            warmup_steps=500,
            schedule="cosine",
            max_grad_norm=1.0,
            global_batch=16,
            world_size=1,
            num_parameters=0,
            tokens_per_sample=9216,
            codebook_size=64000,
        )
    ]
    for step in range(1, steps + 1):
        loss = 4.0 + 7.07 * math.exp(-step / 3000) + rng.gauss(0, 0.1)
        pre = math.exp(rng.gauss(0, 0.6)) * (50 if rng.random() < 0.001 else 1)
        events.append(
            StepEvent(
                step=step,
                loss=loss,
                lr=lr_at(step, peak_lr=5e-5, warmup_steps=500, max_steps=steps),
                grad_norm_pre_clip=pre,
                grad_norm_post_clip=min(pre, 1.0),
                grad_max_abs=0.1,
                grad_min_abs=0.0,
                clipped=pre > 1,
                samples_per_s=40.0,
                tokens_per_s=368640.0,
                step_time_s=0.4,
                memory_bytes=3 << 30,
            )
        )
        if step % 500 == 0:
            events.append(EvalEvent(step=step, val_loss=loss + 0.2, val_token_acc=0.3))
        if step % 1000 == 0:
            events.append(CheckpointEvent(step=step, path=f"step_{step:08d}.safetensors", seconds=1.0, bytes=1))
        if pre > 20:
            events.append(WarningEvent(step=step, kind="instability", value=pre, message="spike"))
    events.append(StateEvent(RUNNING, steps))
    return events


def chart_redraw_ms(steps: int = 60_000, sizes=((80, 24), (200, 60)), redraws: int = 20) -> dict:
    from textual.geometry import Region

    from ..app import HwmApp
    from ..widgets.run_chart import RunChart

    results: dict = {}

    async def measure(size):
        app = HwmApp(link=ReplayLink(synthetic_history(steps)), runs_dir=Path(tempfile.gettempdir()))
        async with app.run_test(size=size) as pilot:
            await pilot.pause(1.0)
            # The events are consumed into numpy series by now, as in a live run; collect
            # their garbage first so a full GC pass is not timed as a redraw.
            gc.collect()
            gc.freeze()  # as the dashboard does once it is up (see HwmApp.on_mount)
            charts = list(app.screen.query(RunChart))
            times: dict[str, list[float]] = {c.id: [] for c in charts}
            for _ in range(redraws):
                for chart in charts:
                    # All of the chart's lines as Textual composes them (plot, border,
                    # styles): what a redraw costs the UI thread, not plotext alone.
                    chart.show(chart.view, force=True)
                    started = time.perf_counter()
                    chart.render_lines(Region(0, 0, *chart.outer_size))
                    times[chart.id].append((time.perf_counter() - started) * 1000)
                await pilot.pause(0.05)
            return {cid: {"median_ms": statistics.median(t), "max_ms": max(t)} for cid, t in times.items()}

    for size in sizes:
        results[f"{size[0]}x{size[1]}"] = asyncio.run(measure(size))
    return {"steps_of_history": steps, "charts": results}
