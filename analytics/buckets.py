"""The fixed buckets the minutes from out for delivery to delivered are
counted in: one rollup column each, so a year's histogram is a SUM per
column in SQL. Pure rules, no Django.

Exact per-minute histograms (one JSON object per rollup row) had to be
merged in Python: 1.46 s of a year's dashboard for a million parcels
(bench/analytics.py, bench/RESULTS.md "Analytics"). Buckets trade that for
a bounded error:

- A bucket holds the durations from its lower edge (included) to the next
  one's (excluded): 5-minute buckets under an hour, 15-minute ones up to
  4 hours, 30-minute ones up to 12 hours, 2-hour ones up to a day, 6-hour
  ones up to two days; the last bucket (two days) also holds every longer
  duration, and a negative one (a delivery scan before its out-for-delivery
  scan) counts as 0.
- A percentile is the nearest-rank percentile over the buckets, reported
  as the middle of its bucket, rounded down to the minute. The exact
  nearest-rank percentile lies in that bucket, so the reported figure is
  off by at most half the bucket's width: 2 minutes under an hour, 7
  under 4 hours, 15 under 12 hours, 60 under a day, 180 up to two days.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence

# (from this many minutes, buckets this wide); the last edge is a catch-all.
STEPS = ((0, 5), (60, 15), (240, 30), (720, 120), (1440, 360))
LAST_EDGE = 2 * 24 * 60


def _edges() -> tuple[int, ...]:
    edges = []
    for (start, width), (stop, _) in zip(STEPS, [*STEPS[1:], (LAST_EDGE, 0)], strict=True):
        edges.extend(range(start, stop, width))
    return (*edges, LAST_EDGE)


# The lower edge of each bucket, ascending.
EDGES: tuple[int, ...] = _edges()
# One rollup column per bucket, named by its lower edge.
COLUMNS: tuple[str, ...] = tuple(f"ofd_from_{edge}" for edge in EDGES)


def bucket_of(minutes: int) -> int:
    """The index of the bucket holding this many minutes."""
    return max(bisect_right(EDGES, minutes) - 1, 0)


def middle(index: int) -> int:
    """The figure a percentile falling in this bucket reports."""
    if index == len(EDGES) - 1:
        return EDGES[index]  # the catch-all has no upper edge
    return (EDGES[index] + EDGES[index + 1]) // 2


def percentile(counts: Sequence[int], fraction: float) -> int | None:
    """The nearest-rank percentile of bucket counts (one per EDGES), as the
    middle of its bucket; None when every count is 0."""
    total = sum(counts)
    if not total:
        return None
    rank = max(1, -(-int(fraction * total * 1000) // 1000))  # ceil, without float drift
    seen = 0
    for index, count in enumerate(counts):
        seen += count
        if seen >= rank:
            return middle(index)
    return None
