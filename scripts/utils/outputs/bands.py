"""What a long series is drawn as: per bucket of whole UTC hours its lowest, median and
highest value, broken at outages.

A line of more points than the plot has pixels across zigzags inside each column of pixels,
so a reader sees only a solid smear from the lowest to the highest value there. The band draws
that smear on purpose, with the median as the line through it. A series whose hours would each
be drawn wider than a few pixels keeps every point: its own shape is still visible.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import numpy.typing as npt

HOUR_MS = 3_600_000
# An hour drawn wider than this many pixels shows more as points than as a band.
MAX_HOUR_PX = 8.0
# Coarser buckets when even hours outnumber the pixels: hours that divide a day, then days.
HOURS_WITHIN_A_DAY = (1, 2, 3, 4, 6, 12)

Times = npt.NDArray[np.datetime64]
Values = npt.NDArray[np.float64]


class Band(NamedTuple):
    """One point per bucket (at the middle of the samples it holds), with a NaN row midway
    across every outage so that both the band and the line break there."""

    times: Times
    lowest: Values
    median: Values
    highest: Values
    bucket_hours: int


def bucket_hours_for(span_hours: float, width_px: float) -> int:
    """The finest bucket (an hour, a divisor of a day, or whole days) of which the span touches
    no more than there are pixels: at most span / bucket + 1, so fewer than width_px + 1."""
    for hours in HOURS_WITHIN_A_DAY:
        if span_hours / hours < width_px:
            return hours
    return 24 * (int(span_hours / 24 / width_px) + 1)


def band_label(bucket_hours: int) -> str:
    """What the legend says the band and its line are."""
    if bucket_hours == 1:
        every = "hourly"
    elif bucket_hours % 24 == 0:
        every = "daily" if bucket_hours == 24 else f"{bucket_hours // 24}-day"
    else:
        every = f"{bucket_hours}-hour"
    return f"{every} median; band: lowest to highest"


def band_for(
    times: Times, values: Values, width_px: float, threshold_s: float | None
) -> Band | None:
    """The band to draw instead of the points, or None when every point should be drawn: when
    there are no more points than pixels, or when an hour would be wider than MAX_HOUR_PX.

    `times` ascend; two samples more than threshold_s apart (None: no outage) are never in
    one bucket. A bucket whose values are all NaN gives NaN (the line breaks there too)."""
    if len(times) <= width_px:
        return None
    ms = times.astype("datetime64[ms]").astype(np.int64)
    span_hours = float(ms[-1] - ms[0]) / HOUR_MS
    if span_hours * MAX_HOUR_PX < width_px:
        return None
    hours = bucket_hours_for(span_hours, width_px)
    after_gap = np.zeros(len(ms), dtype=bool)
    if threshold_s is not None:  # the rule plotting.break_at_gaps breaks a line by
        after_gap[1:] = np.diff(times) / np.timedelta64(1, "s") > threshold_s
    bucket = ms // (hours * HOUR_MS)
    starts = np.flatnonzero(np.concatenate(([True], (np.diff(bucket) != 0) | after_gap[1:])))
    ends = np.append(starts[1:], len(ms)) - 1
    middles = times[starts] + (times[ends] - times[starts]) / 2
    lowest, median, highest = _reduce(values.astype(np.float64), starts)
    # The breaks: a NaN before each bucket that follows an outage, midway across it.
    breaks = np.flatnonzero(after_gap[starts])
    before, after = times[starts[breaks] - 1], times[starts[breaks]]
    gap_middles = before + (after - before) / 2
    return Band(
        np.insert(middles, breaks, gap_middles),
        np.insert(lowest, breaks, np.nan),
        np.insert(median, breaks, np.nan),
        np.insert(highest, breaks, np.nan),
        hours,
    )


def _reduce(values: Values, starts: npt.NDArray[np.intp]) -> tuple[Values, Values, Values]:
    """The lowest, median and highest of each run values[starts[i]:starts[i + 1]], NaNs left
    out (all NaN: NaN), as numpy's nanmin, nanmedian and nanmax give them, for all the runs
    in one sort rather than a loop over hundreds of buckets."""
    group = np.repeat(np.arange(len(starts)), np.diff(np.append(starts, len(values))))
    known = ~np.isnan(values)
    counts = np.add.reduceat(known.astype(np.intp), starts)
    # Within each run, ascending with the NaNs last: a run's known values are its first
    # `count`, so its lowest, median and highest sit at fixed places.
    ordered = values[np.lexsort((np.where(known, values, np.inf), ~known, group))]
    has = counts > 0
    first, last = starts[has], starts[has] + counts[has] - 1
    lower, upper = starts[has] + (counts[has] - 1) // 2, starts[has] + counts[has] // 2
    lowest, median, highest = (np.full(len(starts), np.nan) for _ in range(3))
    lowest[has], highest[has] = ordered[first], ordered[last]
    # Halves first: the sum of two values near the float's limit would overflow. An odd run's
    # median is its middle value itself (halving a subnormal float would round it to 0).
    halves = ordered[lower] / 2 + ordered[upper] / 2
    median[has] = np.where(lower == upper, ordered[lower], halves)
    return lowest, median, highest
