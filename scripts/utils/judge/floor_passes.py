"""The floor rows of many instances, sorted by instance, a pass of whole instances at a time;
and the per-instance numbers the leak verdict's prefilter reads of them.

A year's judged floors are hundreds of thousands of rows: a step over all of them at once
makes an array of that length for each temporary, where a pass at a time makes one of the
pass's length. What reads an instance's own rows alone gives the same answers either way.
"""

from __future__ import annotations

import itertools

import numpy as np
import numpy.typing as npt

from utils.judge.hinge import segments

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


def passes(instance: IntArray, rows_per_pass: int) -> list[slice]:
    """The rows (sorted by instance) in runs of about rows_per_pass, each ending where an
    instance does (an instance with more rows gets a run of its own); one empty run when
    there are no rows."""
    if not instance.size:
        return [slice(0, 0)]
    cuts = np.unique(np.searchsorted(instance, instance[::rows_per_pass]))
    return [slice(lo, hi) for lo, hi in itertools.pairwise([*cuts.tolist(), instance.size])]


def rise_mb(instance: IntArray, floor_mb: FloatArray, last: int, rise: FloatArray) -> None:
    """Per instance with rows, into `rise`: how far the highest of its last `last` floors
    stands above its lowest floor. Rows sorted by instance."""
    starts, ends, segment = segments(instance)
    if starts.size:
        lowest = np.minimum.reduceat(floor_mb, starts)
        at_end = ends[segment] - np.arange(instance.size) <= last
        last_high = np.maximum.reduceat(np.where(at_end, floor_mb, -np.inf), starts)
        rise[instance[starts]] = last_high - lowest
