"""Status bar: run id, preset, device, state, step/max with a progress bar and ETA,
throughput, memory, global batch and time since the last checkpoint."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from hwm_core.events.run_state import RunProgress
from hwm_core.events.types import GpuEvent
from hwm_core.figures import format_bytes, format_duration, format_rate

from ..style import ON_TRACK_STYLES, STATE_STYLES


class StatusBar(Static):
    DEFAULT_CSS = """
    StatusBar {
        height: auto;
        padding: 0 1;
        background: $boost;
    }
    """

    _lines_shown = 0

    sweep_label = ""  # set by a dashboard that trains a sweep's run

    def show(self, p: RunProgress, *, state: str, message: str, now: float) -> None:
        # The state has a column of its own: a long device name or preset path is cut, never the state.
        head = Table.grid(padding=(0, 1), expand=True)
        head.add_column(ratio=1, no_wrap=True, overflow="ellipsis")
        head.add_column(no_wrap=True, justify="right")
        names = Text(no_wrap=True, overflow="ellipsis")
        names.append("run ", style="dim")
        names.append(p.run_id or "-", style="bold")
        names.append(f" · {p.preset} · {p.device}", style="dim")
        if self.sweep_label:
            names.append(f" · {self.sweep_label}", style="magenta")
        head.add_row(names, Text(f"● {state}", style=STATE_STYLES.get(state, "bold")))

        progress = Table.grid(padding=(0, 1))
        progress.add_column(no_wrap=True)
        progress.add_column(ratio=1)
        progress.add_column(no_wrap=True)
        percent = f"{100 * p.fraction:.0f}%"
        where = Text(f"{percent} · ETA {format_duration(p.eta_s)}")
        if p.on_track is not None:
            where.append(f" · {p.on_track.word} at step {p.on_track.step}", style=ON_TRACK_STYLES[p.on_track.word])
        progress.add_row(
            Text(f"step {p.step}/{p.max_steps}", style="bold"),
            ProgressBar(total=max(p.max_steps, 1), completed=p.step),
            where,
        )

        since = p.since_checkpoint_s(now)
        figures = Text(no_wrap=True, overflow="ellipsis", style="dim")
        figures.append(f"{p.samples_per_s:.2f} samples/s" if p.samples_per_s == p.samples_per_s else "-- samples/s")
        figures.append(f" · {format_rate(p.tokens_per_s)} tok/s · mem {format_bytes(p.memory_bytes)}")
        figures.append(f" · batch {p.global_batch}")
        if p.micro_batch and p.grad_accum_steps > 1:
            ranks = f"×{p.world_size}" if p.world_size > 1 else ""
            figures.append(f" = {p.micro_batch}×{p.grad_accum_steps}{ranks}")
        elif p.world_size > 1:
            figures.append(f" ({p.world_size} ranks)")
        figures.append(f" · ckpt {format_duration(since)} ago" if since is not None else " · no checkpoint yet")
        lines: list[RenderableType] = [head, progress, figures]
        if p.gpu is not None:
            lines.append(gpu_line(p.gpu))
        if message:
            lines.append(Text(message, no_wrap=True, overflow="ellipsis", style="italic"))
        # A new layout (the whole screen arranged and drawn again) only when the bar gains
        # or loses its message line: done once a second, it was much of the UI's work.
        self.update(Group(*lines), layout=len(lines) != self._lines_shown)
        self._lines_shown = len(lines)


def _known(value: float, form: str) -> str:
    return form.format(value) if value == value else "–"  # NaN != NaN


def gpu_line(gpu: GpuEvent) -> Text:
    """Each GPU: utilisation (red when idle), memory used/total, power, temperature."""
    line = Text(no_wrap=True, overflow="ellipsis", style="dim")
    for n, (index, util, used, total, power, temp) in enumerate(
        zip(gpu.index, gpu.utilization, gpu.memory_used, gpu.memory_total, gpu.power_w, gpu.temperature_c)
    ):
        if n:
            line.append(" │ ")
        line.append(f"GPU{index} ")
        # A field NVML does not report on this GPU (MIG, vGPU) is NaN: shown as "–".
        busy = "bold green" if util >= 80 else "bold yellow" if util >= 30 else "bold red"
        line.append(_known(util, "{:.0f}%"), style=busy if util == util else "")
        memory = f"{used / 2**30:.1f}/{total / 2**30:.0f} GiB" if used == used and total == total else "– GiB"
        line.append(f" · {memory} · {_known(power, '{:.0f} W')} · ")
        line.append(_known(temp, "{:.0f}°C"), style="bold red" if temp >= 85 else "")
    return line
