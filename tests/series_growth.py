"""The tests' way to the leak verdict of whole series of (time, MiB), a model host's
processes or services: floors built here from each whole series, then judged by the process
leak finder's own rules (utils.judge.growth.survey), as the analyses judge the floors they
fold batch by batch (processes) or build per cgroup (utils.judge.services.floor_table).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from utils.judge.growth import FloorTable, GrowthParams, InstanceSpans, Survey, survey
from utils.reduce.buckets import MAX_LEVEL, bucket_index

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
Series = tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]


def floors_of(
    times_s: npt.NDArray[np.int64], values_mb: npt.NDArray[np.float64], level: int = 0
) -> tuple[IntArray, FloatArray, IntArray]:
    """Floors of one series (times sorted) at a level: each bucket's index, lowest value
    (MiB) and number of samples."""
    times = np.asarray(times_s, dtype=np.int64)
    values = np.asarray(values_mb, dtype=np.float64)
    if times.shape != values.shape or times.ndim != 1:
        raise ValueError("times_s and values_mb must be 1-D arrays of the same length")
    if times.size == 0:
        return np.empty(0, np.int64), np.empty(0, np.float64), np.empty(0, np.int64)
    if np.any(times[1:] < times[:-1]):
        raise ValueError("times_s must be sorted")
    buckets = bucket_index(times, level)
    starts = np.flatnonzero(np.r_[True, buckets[1:] != buckets[:-1]])
    samples = np.diff(np.r_[starts, times.size]).astype(np.int64)
    floor = np.asarray(np.minimum.reduceat(values, starts), dtype=np.float64)
    return buckets[starts], floor, samples


def tables_of(
    series: Sequence[Series], level: int = 0, collection_s: float | None = None
) -> tuple[FloorTable, InstanceSpans]:
    """The tables `survey` takes, from whole series (one per instance, times sorted, none
    empty), with floors at `level`, of a collection of `collection_s` (None: the series'
    own)."""
    if any(times.size == 0 for times, _ in series):
        raise ValueError("every series needs at least one sample")
    parts = [floors_of(times, values, level) for times, values in series]
    counts = [part[0].size for part in parts]
    table = FloorTable(
        instance=np.repeat(np.arange(len(parts), dtype=np.int64), counts),
        bucket=np.concatenate([p[0] for p in parts] or [np.empty(0, np.int64)]),
        floor_mb=np.concatenate([p[1] for p in parts] or [np.empty(0, np.float64)]),
        samples=np.concatenate([p[2] for p in parts] or [np.empty(0, np.int64)]),
        level=level,
    )
    spans = InstanceSpans(
        first_s=np.array([int(times[0]) for times, _ in series], dtype=np.int64),
        last_s=np.array([int(times[-1]) for times, _ in series], dtype=np.int64),
        samples=np.array([times.size for times, _ in series], dtype=np.int64),
        collection_s=collection_s,
    )
    return table, spans


def series_survey(
    series: Sequence[Series],
    interval_s: float,
    params: GrowthParams,
    collection_s: float | None = None,
) -> Survey:
    """The leak verdict of each series (`Growth.instance` is its index in `series`), by
    the process leak finder's rules, each at its own time scale; interval_s is the usual
    time between two samples."""
    floors, spans = tables_of(series, MAX_LEVEL, collection_s)
    return survey(floors, spans, interval_s, params)
