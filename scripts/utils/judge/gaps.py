"""Outages in a time series: where two consecutive samples lie further apart than usual.

The summary counts them and the plots shade them; both read them from here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

# Two samples further apart than this many usual intervals mean the collector was
# down (or, for one PID, the process was gone): the line breaks there.
GAP_FACTOR = 1.5

Times = npt.NDArray[np.datetime64]


@dataclass(frozen=True)
class Gap:
    """Two consecutive samples further apart than the gap threshold."""

    start: np.datetime64
    end: np.datetime64

    @property
    def seconds(self) -> float:
        return float((self.end - self.start) / np.timedelta64(1, "s"))


def usual_interval_s(times: Times) -> float | None:
    """The median time between consecutive snapshots, or None with fewer than two."""
    if len(times) < 2:
        return None
    steps = np.diff(times) / np.timedelta64(1, "s")
    steps = steps[steps > 0]
    return float(np.median(steps)) if len(steps) else None


def gap_threshold_s(times: Times) -> float | None:
    usual = usual_interval_s(times)
    return None if usual is None else GAP_FACTOR * usual


def find_gaps(times: Times, threshold_s: float | None) -> list[Gap]:
    if threshold_s is None or len(times) < 2:
        return []
    steps = np.diff(times) / np.timedelta64(1, "s")
    return [Gap(times[i], times[i + 1]) for i in np.nonzero(steps > threshold_s)[0]]
