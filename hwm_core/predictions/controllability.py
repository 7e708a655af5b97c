"""Which sample lends its robot states to another when evaluate measures controllability.

Controllability is how much a prediction depends on the actions: the same frames
predicted under the sample's own states and under another sample's. The other
sample is half the split away, a fixed pairing: far apart (another segment, other
motions), never the sample itself, and the same every run and whatever `--limit`
is, so figures compare across checkpoints and runs.
"""

from __future__ import annotations


def paired_sample(index: int, count: int) -> int:
    """The sample whose states sample `index` of `count` is predicted under."""
    if count < 2:
        raise ValueError(f"a split of {count} sample(s) has no other sample to lend its states")
    return (index + count // 2) % count
