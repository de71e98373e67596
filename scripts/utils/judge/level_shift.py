"""The last level shift in hourly values: the hour a service started or stopped for good, or
a host was given more memory, after which the trend must be judged afresh.

A trend line across a step reads the step as part of a fall (or hides a fall behind a
rise), so the forecast looks only at the hours since the last step. A step is told from
what else moves MemAvailable in hours:

- the daily cycle, a nightly job's hour and a collector's swing (a period dividing a day)
  recur at the same hour every day: each hour of the day's typical offset from its day is
  taken out first;
- a burst of an hour or two moves a median of `SIDE_H` hours little: the level on either
  side of each hour boundary is the median of the hours there;
- a trend changes those medians by its rate times the hours between them: that part, at the
  series' typical rate per hour, is taken out;
- a wander moves those medians too, by an amount its own data show: a step is a change of
  level at least `STEP_SIGMAS` times the robust spread of such changes over the whole
  series (1.4826 times their median absolute size), and at least `MIN_STEP_MB`.

numpy only.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import sliding_window_view

from utils.judge.seasonal import SEASONS

Values = npt.NDArray[np.float64]

# Hours on each side of a boundary whose median is the level there; half a day keeps an
# hour-long burst, or two, from moving it, and still finds a step 6 hours before the end
# (where the side after it may shrink to MIN_SIDE_H).
SIDE_H = 12
MIN_SIDE_H = 6
# A change of level this many robust deviations of all the changes: a Gaussian wander gets
# there about once in 500 million boundaries.
STEP_SIGMAS = 6.0
# ... and never under this: a perfectly quiet series would otherwise call a few MiB a step.
MIN_STEP_MB = 128.0
# Under this many hours there is too little to tell a step from the cycle.
MIN_HOURS = 2 * SEASONS


class LevelShift(NamedTuple):
    """The last step: the hours before index `hour` (index 0 the latest) come after it."""

    hour: int  # the first hour wholly after the step, counted back from the latest
    size_mb: float  # the level after it less the level before it


def deseasonalised(hourly: Values) -> Values:
    """Hourly values (index 0 the latest) less each hour of the day's typical offset from
    the median of the day around it (a rolling 24-hour median)."""
    padded = np.concatenate((np.full(SEASONS // 2, np.nan), hourly, np.full(SEASONS // 2, np.nan)))
    windows = sliding_window_view(padded, SEASONS + 1)[: hourly.size]
    with np.errstate(all="ignore"):
        rolling = _nanmedian_rows(windows)
    offset = hourly - rolling
    season = np.arange(hourly.size) % SEASONS
    profile = np.zeros(SEASONS)
    for hour in range(SEASONS):
        seen = offset[(season == hour) & np.isfinite(offset)]
        profile[hour] = float(np.median(seen)) if seen.size else 0.0
    result: Values = hourly - profile[season]
    return result


def _nanmedian_rows(windows: Values) -> Values:
    """The median of each row's finite values (NaN where none), without nanmedian's warning."""
    counts = np.count_nonzero(np.isfinite(windows), axis=1)
    ordered = np.sort(windows, axis=1)  # NaN sorts last
    rows = np.arange(len(windows))
    low = np.maximum(counts - 1, 0) // 2
    high = np.maximum(counts, 1) // 2
    high = np.minimum(high, np.maximum(counts - 1, 0))
    medians: Values = (ordered[rows, low] + ordered[rows, high]) / 2
    return np.where(counts > 0, medians, np.nan)


def level_changes(values: Values) -> tuple[Values, Values]:
    """At each boundary b (between index b - 1 and b), the median of the SIDE_H hours after
    it (indices b - SIDE_H .. b - 1, the later ones) less the median of the SIDE_H before it
    (NaN where a side has under MIN_SIDE_H values), and the hours between the two sides'
    middles."""
    n = values.size
    padded = np.concatenate((np.full(SIDE_H, np.nan), values, np.full(SIDE_H, np.nan)))
    windows = sliding_window_view(padded, SIDE_H)
    # Boundary b: later hours are values[b - SIDE_H : b] = padded[b : b + SIDE_H], earlier
    # ones values[b : b + SIDE_H] = padded[b + SIDE_H : b + 2 SIDE_H].
    later = windows[: n + 1]
    earlier = windows[SIDE_H : SIDE_H + n + 1]
    later_n = np.count_nonzero(np.isfinite(later), axis=1)
    earlier_n = np.count_nonzero(np.isfinite(earlier), axis=1)
    change = _nanmedian_rows(later) - _nanmedian_rows(earlier)
    enough = (later_n >= MIN_SIDE_H) & (earlier_n >= MIN_SIDE_H)
    # The hours between the sides' middles: a trend alone changes the level by its rate
    # times this, less near the latest hour where the later side is short.
    distance = (later_n + earlier_n) / 2
    return np.where(enough, change, np.nan), distance.astype(np.float64)


def last_shift(hourly: Values) -> LevelShift | None:
    """The latest step in hourly values (index 0 the latest hour, NaN where none); None
    when there is none, or too few hours to tell."""
    if np.count_nonzero(np.isfinite(hourly)) < MIN_HOURS:
        return None
    values = deseasonalised(hourly)
    change, distance = level_changes(values)
    known = np.isfinite(change)
    if np.count_nonzero(known) < SEASONS:
        return None
    # What a trend alone would change the level by, from the typical change per hour.
    trend = float(np.median(change[known] / distance[known])) * distance
    change = change - trend
    spread = 1.4826 * float(np.median(np.abs(change[known])))
    threshold = max(STEP_SIGMAS * spread, MIN_STEP_MB)
    beyond = np.flatnonzero(known & (np.abs(change) >= threshold))
    if not beyond.size:
        return None
    # The latest run of boundaries past the threshold is one step.
    first = int(beyond[0])
    run_end = first
    while run_end + 1 < change.size and abs(change[run_end + 1]) >= threshold:
        run_end += 1
    peak = _where(values, first, run_end)
    # The hour at the boundary's earlier side may hold the step inside it: the hours wholly
    # after it are those before that one.
    return LevelShift(hour=max(0, peak - 1), size_mb=float(change[peak]))


def _where(values: Values, first: int, last: int) -> int:
    """The boundary in first..last where the means of the SIDE_H hours on either side differ
    most: the medians' change is flat for hours around a step (a median does not move
    until half its hours have crossed), the means' peaks where the step is."""
    best, best_change = first, -1.0
    for boundary in range(first, last + 1):
        later = values[max(0, boundary - SIDE_H) : boundary]
        earlier = values[boundary : boundary + SIDE_H]
        later, earlier = later[np.isfinite(later)], earlier[np.isfinite(earlier)]
        if later.size and earlier.size:
            change = abs(float(later.mean() - earlier.mean()))
            if change > best_change:
                best, best_change = boundary, change
    return best
