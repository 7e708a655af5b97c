"""The one follower of a growing metrics.jsonl, and its one rewind rule."""

from __future__ import annotations

import os

from hwm_core.events.follow import MetricsFollower
from hwm_core.events.log import event_to_json
from tests.tui_fakes import scripted_events


def lines(n: int) -> list[str]:
    return [event_to_json(e) + "\n" for e in scripted_events(n)][:n]


def test_reads_what_was_appended_and_never_a_torn_line(tmp_path):
    path = tmp_path / "metrics.jsonl"
    metrics = MetricsFollower(path)
    assert metrics.poll().events == [] and not metrics.poll().rewound  # no file yet: nothing, no rewind
    text = "".join(lines(10))
    path.write_text(text[:-5])  # the last line torn
    assert len(metrics.poll().events) == 9
    path.write_text(text)
    read = metrics.poll()
    assert len(read.events) == 1 and not read.rewound and metrics.offset == len(text.encode())
    assert metrics.poll().events == []


def test_a_shorter_file_or_another_file_starts_over(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text("".join(lines(10)))
    metrics = MetricsFollower(path)
    assert len(metrics.poll().events) == 10
    path.write_text("".join(lines(4)))  # rewound in place: shorter than where we stopped
    read = metrics.poll()
    assert read.rewound and len(read.events) == 4
    longer = tmp_path / "metrics.new"
    longer.write_text("".join(lines(30)))
    os.replace(longer, path)  # a resume swaps in a new file, longer than our offset
    read = metrics.poll()
    assert read.rewound and len(read.events) == 30


def test_a_cached_offset_past_the_end_starts_over_and_parts_are_read_in_turn(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text("".join(lines(20)))
    read = MetricsFollower(path, offset=10**9).poll()  # a run.json summary from before a resume
    assert read.rewound and len(read.events) == 20
    metrics = MetricsFollower(path)
    first = metrics.poll(max_bytes=600)
    assert 0 < len(first.events) < 20
    rest = metrics.poll()
    assert len(first.events) + len(rest.events) == 20 and not rest.rewound
