"""A run's latest evaluation in one line, as `runs compare` and the history screen show it."""

from __future__ import annotations

from hwm_core.predictions.evaluation_store import EvaluationHeadline


def evaluation_line(h: EvaluationHeadline) -> str:
    """e.g. `evaluated at step 1000 on 231 samples: 71.2% tokens right · 30.1% under another
    sample's states (controllability +41.1 pts) · copy-last 26.4% · the states make 84.5% predictable`."""
    parts = [f"evaluated at step {h.step} on {h.samples} samples: {h.accuracy:.1%} tokens right"]
    if h.other_states_accuracy is not None and h.delta_accuracy is not None:
        parts.append(
            f"{h.other_states_accuracy:.1%} under another sample's states "
            f"(controllability {h.delta_accuracy * 100:+.1f} pts)"
        )
    parts.append(f"copy-last {h.copy_last_accuracy:.1%}")
    if h.states_shift_accuracy is not None:
        parts.append(f"the states make {h.states_shift_accuracy:.1%} predictable")
    return " · ".join(parts)
