"""The services (memory cgroups: systemd units, containers, pods) over time: how much each
holds, whether it leaks as a whole, how soon it reaches its limit, and its OOM kills.

A service is a cgroup, keyed by its path and shown by the name the collector resolved. Its
leak verdict is the process leak finder's (utils.judge.growth.survey, the same rules and time
scales), judged on the floors of its anon + swap: the page cache in its memory.current rises
with any I/O and the kernel drops it under pressure, so it is no leak. Workers that are
recycled (gunicorn `max_requests`, php-fpm `pm.max_requests`) each live too short to be
judged; the cgroup outlives them, so a leak that survives their restarts shows here.

A slice holds its children's memory (cgroup v2 memory.current and v1's hierarchical
counters), so a leaking service makes its slice grow too: a cgroup is flagged only when no
cgroup below it is, so that the flag names the service, not every slice above it.

The time to the limit is judged on the memory the kernel cannot drop to make room (memory
less page cache, shared memory counted back in: shmem sits in `file` but cannot be dropped),
at the service's own time scale: the Theil-Sen slope of its floors after the warm-up, with
the slope's 95 % bounds (Gilbert 1987, ch. 16) giving the range. It is given only when that
slope is clearly above zero (its lower bound is) and a limit is set.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import NamedTuple

import numpy as np
import numpy.typing as npt
import pandas as pd

from utils.core.units import DAY_S
from utils.judge.gaps import usual_interval_s
from utils.judge.growth import (
    MIN_FILL,
    MIN_FIT_FLOORS,
    MIN_JUDGED_SAMPLES,
    WARMUP_BUCKETS,
    FloorTable,
    Growth,
    GrowthParams,
    InstanceSpans,
    level_for_span,
    min_span_for,
    survey,
)
from utils.reduce.buckets import BUCKET_S, MAX_LEVEL, bucket_index

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

# What a service's leak verdict was judged on: anon + swap where every row has anon, else
# its whole memory (a kernel that reports no anon for it).
BASIS_FOOTPRINT = "anon+swap"
BASIS_MEMORY = "memory"
# The range of the time to a limit: the slope's two-sided 95 % bounds.
SLOPE_Z = 1.959964
SERVICES_CSV = "services.csv"


class ServicePlot(NamedTuple):
    """What a service's plot shows (picklable: it may be drawn in the plot worker)."""

    service: str
    cgroup: str
    times: npt.NDArray[np.datetime64]
    memory_mb: FloatArray  # memory.current / memory.usage_in_bytes
    footprint_mb: FloatArray  # anon + swap (or memory, see basis)
    limit_mb: float | None
    basis: str
    rate_mb_per_day: float | None  # flagged: the leak's rate
    judged: bool = True  # watched long enough for the leak finder


@dataclass(frozen=True)
class Service:
    """One cgroup's row of services.csv, with what its verdicts rest on."""

    service: str  # the name of its last row
    cgroup: str
    first_mb: float  # memory at its first and last snapshot (NaN: never reported)
    last_mb: float
    limit_mb: float | None  # at its last snapshot; None: no limit
    oom_kills: int  # rises of its OOM_KILLS counter
    basis: str
    leak: Growth | None  # flagged: the leak finder's growth
    days_to_limit: float | None  # rising toward a limit: about this many days...
    days_fast: float | None  # ... at the fast end of the range
    days_slow: float | None  # ... and the slow end (None: no end, the slope may be ~0)
    judged: bool = True  # watched long enough for the leak finder

    @property
    def growth_mb(self) -> float:
        return self.last_mb - self.first_mb

    @property
    def leak_mb_per_day(self) -> float | None:
        return None if self.leak is None else self.leak.rate_mb_per_day


@dataclass(frozen=True)
class ServiceFindings:
    """Every service, largest last memory first, and what was judged."""

    services: list[Service]
    snapshots: int  # cgroup snapshots read
    judged: int  # services watched long enough to be judged
    min_span_s: float
    plots: tuple[ServicePlot, ...] = ()
    span_s: tuple[int, int] = (0, 0)  # the first and last cgroup snapshot, UTC epoch seconds

    @property
    def leaks(self) -> list[Service]:
        """The flagged services, fastest first."""
        flagged = [service for service in self.services if service.leak is not None]
        return sorted(flagged, key=lambda s: -(s.leak_mb_per_day or 0.0))

    @property
    def near_limit(self) -> list[Service]:
        """The services rising toward their limit, soonest first."""
        rising = [s for s in self.services if s.days_fast is not None]
        return sorted(rising, key=lambda s: s.days_fast or 0.0)


class _Rows(NamedTuple):
    """The frame's rows grouped by cgroup: instance number per row, in (cgroup, time) order."""

    frame: pd.DataFrame
    instance: IntArray
    paths: list[str]
    starts: IntArray  # rows of instance i are starts[i]:starts[i + 1]


def _grouped(frame: pd.DataFrame) -> _Rows:
    ordered = frame.sort_values(["CGROUP", "time"], kind="stable").reset_index(drop=True)
    codes, paths = pd.factorize(ordered["CGROUP"], sort=True)
    instance = codes.astype(np.int64)
    starts = np.searchsorted(instance, np.arange(len(paths) + 1))
    return _Rows(ordered, instance, [str(path) for path in paths], starts.astype(np.int64))


def footprint(frame: pd.DataFrame) -> FloatArray:
    """Anon + swap per row (NaN where anon is not reported; swap counts 0 where the kernel
    has no number for it: no swap accounting)."""
    anon = frame["ANON_MB"].to_numpy(np.float64)
    swap = np.nan_to_num(frame["SWAP_MB"].to_numpy(np.float64))
    total: FloatArray = anon + swap
    return total


def pinned_mb(frame: pd.DataFrame) -> FloatArray:
    """Per row, the memory the kernel cannot drop to make room under a limit: memory less
    page cache, shared memory counted back in (tmpfs and shmem sit in `file`, and cannot be
    dropped); memory itself where `file` is not reported."""
    memory = frame["MEMORY_MB"].to_numpy(np.float64)
    cache = np.nan_to_num(frame["FILE_MB"].to_numpy(np.float64))
    shared = np.nan_to_num(frame["SHMEM_MB"].to_numpy(np.float64))
    pinned: FloatArray = memory - np.maximum(cache - shared, 0.0)
    return pinned


def floor_table(
    instance: IntArray, times_s: IntArray, values: FloatArray, level: int
) -> FloorTable:
    """The lowest value per instance and UTC bucket at a level (NaN values left out), sorted
    by instance, then bucket."""
    ok = ~np.isnan(values)
    frame = pd.DataFrame(
        {"i": instance[ok], "b": bucket_index(times_s[ok], level), "v": values[ok]}
    )
    grouped = frame.groupby(["i", "b"], sort=True)["v"].agg(["min", "size"]).reset_index()
    return FloorTable(
        instance=grouped["i"].to_numpy(np.int64),
        bucket=grouped["b"].to_numpy(np.int64),
        floor_mb=grouped["min"].to_numpy(np.float64),
        samples=grouped["size"].to_numpy(np.int64),
        level=level,
    )


def oom_kill_rises(counts: FloatArray) -> int:
    """The kills a counter's snapshots show: each rise, and after a drop (the cgroup made
    again) the new count (NaN rows left out)."""
    known = counts[~np.isnan(counts)]
    if known.size < 2:
        return 0
    steps = np.diff(known)
    return int(np.where(steps >= 0, steps, known[1:]).sum())


def sen_slope(t: FloatArray, y: FloatArray) -> tuple[float, float, float]:
    """The Theil-Sen slope of y over t and its two-sided 95 % bounds (Gilbert 1987, ch. 16:
    the ranks of the pair slopes around the median that Kendall's S allows); NaN under 3
    points."""
    n = t.size
    if n < 3:
        return math.nan, math.nan, math.nan
    left, right = np.triu_indices(n, k=1)
    dt = t[right] - t[left]
    slopes = np.sort(((y[right] - y[left]) / dt)[dt != 0])
    if not slopes.size:
        return math.nan, math.nan, math.nan
    spread = SLOPE_Z * math.sqrt(n * (n - 1) * (2 * n + 5) / 18.0)
    # Gilbert's ranks, 1-based: M1 = (N - C) / 2 and M2 = (N + C) / 2 + 1.
    low_rank = max(math.floor((slopes.size - spread) / 2.0) - 1, 0)
    high_rank = min(math.ceil((slopes.size + spread) / 2.0), slopes.size - 1)
    return float(np.median(slopes)), float(slopes[low_rank]), float(slopes[high_rank])


class Approach(NamedTuple):
    """A service's way to its limit: about `days`, from `fast` to `slow` (None: no end)."""

    days: float
    fast: float
    slow: float | None


def approach(
    times_s: IntArray, pinned: FloatArray, limit_mb: float, interval_s: float, finest: int
) -> Approach | None:
    """How soon one service's unreclaimable memory reaches its limit, judged on its floors
    at its own time scale after the warm-up; None unless they clearly rise (the slope's lower
    bound is above 0) with at least MIN_FIT_FLOORS floors."""
    span_s = float(times_s[-1] - times_s[0])
    level = int(level_for_span(np.array([span_s]), interval_s, finest)[0])
    bucket_s = BUCKET_S / 2.0**level
    floors = floor_table(np.zeros(times_s.size, np.int64), times_s, pinned, level)
    start_s = floors.bucket * bucket_s
    fill = floors.samples * interval_s / bucket_s
    usable = (start_s >= times_s[0] + WARMUP_BUCKETS * bucket_s) & (fill >= MIN_FILL)
    if np.count_nonzero(usable) < MIN_FIT_FLOORS:
        return None
    mid_s = np.minimum(start_s[usable] + bucket_s / 2, float(times_s[-1]))
    t_days = (mid_s - times_s[0]) / DAY_S
    y = floors.floor_mb[usable]
    slope, low, high = sen_slope(t_days, y)
    if not low > 0:
        return None
    # Where it stands now: the values of its last bucket's time carried to the last snapshot
    # along the slope (a floor is the lowest of a bucket: it stands below a rising line).
    last = (times_s > times_s[-1] - bucket_s) & ~np.isnan(pinned)
    if not np.any(last):
        return None
    moved = pinned[last] + slope * (times_s[-1] - times_s[last]) / DAY_S
    headroom = max(limit_mb - float(np.median(moved)), 0.0)
    return Approach(float(headroom / slope), float(headroom / high), float(headroom / low))


def _without_ancestors(flagged: dict[str, Growth]) -> dict[str, Growth]:
    """The flagged cgroups no flagged cgroup lies below (a slice grows with its child)."""
    return {
        path: growth
        for path, growth in flagged.items()
        if not any(
            other != path and (path == "/" or other.startswith(path.rstrip("/") + "/"))
            for other in flagged
        )
    }


class _Judged(NamedTuple):
    leaks: dict[str, Growth]
    judged: int
    min_span_s: float
    level: int


def _judge_leaks(
    rows: _Rows, values: FloatArray, interval_s: float | None, params: GrowthParams
) -> _Judged:
    """The leak finder on every cgroup's floors (values: each row's judged memory)."""
    times_s = rows.frame["time"].to_numpy(np.int64)
    first_s, last_s = times_s[rows.starts[:-1]], times_s[rows.starts[1:] - 1]
    collection_s = float(times_s.max() - times_s.min())
    if interval_s is None:
        return _Judged({}, 0, min_span_for(params, collection_s, 1.0), 0)
    samples = np.diff(rows.starts)
    span_s = (last_s - first_s).astype(np.float64)
    level = int(level_for_span(span_s, interval_s, MAX_LEVEL).max())
    spans = InstanceSpans(first_s, last_s, samples, collection_s=collection_s)
    found = survey(floor_table(rows.instance, times_s, values, level), spans, interval_s, params)
    flagged = {rows.paths[growth.instance]: growth for growth in found.growths}
    return _Judged(_without_ancestors(flagged), found.judged, found.min_span_s, level)


def _service(rows: _Rows, i: int, values: FloatArray, footed: bool, judged: _Judged) -> Service:
    part = rows.frame.iloc[int(rows.starts[i]) : int(rows.starts[i + 1])]
    memory = part["MEMORY_MB"].to_numpy(np.float64)
    known = memory[~np.isnan(memory)]
    limit = float(part["LIMIT_MB"].iloc[-1])
    limit_mb = None if math.isnan(limit) else limit
    times_s = part["time"].to_numpy(np.int64)
    near = None
    is_judged = times_s.size >= MIN_JUDGED_SAMPLES and (
        times_s[-1] - times_s[0] >= judged.min_span_s
    )
    interval = usual_interval_s(times_s.astype("datetime64[s]"))
    if limit_mb is not None and is_judged and interval is not None:
        near = approach(times_s, pinned_mb(part), limit_mb, interval, MAX_LEVEL)
    return Service(
        service=str(part["NAME"].iloc[-1]),
        cgroup=rows.paths[i],
        first_mb=float(known[0]) if known.size else math.nan,
        last_mb=float(known[-1]) if known.size else math.nan,
        limit_mb=limit_mb,
        oom_kills=oom_kill_rises(part["OOM_KILLS"].to_numpy(np.float64)),
        basis=BASIS_FOOTPRINT if footed else BASIS_MEMORY,
        leak=judged.leaks.get(rows.paths[i]),
        days_to_limit=None if near is None else near.days,
        days_fast=None if near is None else near.fast,
        days_slow=None if near is None else near.slow,
        judged=is_judged,
    )


def find_services(
    frame: pd.DataFrame, params: GrowthParams, plot_top: int = 0
) -> ServiceFindings | None:
    """Every cgroup of the cgroup_mem rows (utils.read.cgroup_specs.cgroup_frame) judged;
    None when there are none. With plot_top, the series of the flagged services, those near
    their limit and the plot_top largest are taken for their plots."""
    if frame.empty:
        return None
    rows = _grouped(frame)
    footed = np.ones(len(rows.paths), bool)
    anon_missing = np.isnan(rows.frame["ANON_MB"].to_numpy(np.float64))
    footed[np.unique(rows.instance[anon_missing])] = False
    memory = rows.frame["MEMORY_MB"].to_numpy(np.float64)
    values = np.where(footed[rows.instance], footprint(rows.frame), memory)
    snapshots = np.unique(rows.frame["time"].to_numpy(np.int64))
    interval = usual_interval_s(snapshots.astype("datetime64[s]"))
    judged = _judge_leaks(rows, values, interval, params)
    services = [_service(rows, i, values, bool(footed[i]), judged) for i in range(len(rows.paths))]
    services.sort(key=lambda s: (-(s.last_mb if not math.isnan(s.last_mb) else -1.0), s.cgroup))
    span_s = (int(snapshots[0]), int(snapshots[-1]))
    found = ServiceFindings(
        services, int(snapshots.size), judged.judged, judged.min_span_s, span_s=span_s
    )
    if plot_top <= 0:
        return found
    plots = tuple(_plot(rows, values, s) for s in plotted(found, plot_top))
    return replace(found, plots=plots)


def plotted(found: ServiceFindings, top: int) -> list[Service]:
    """The services that get a plot: the flagged, those near their limit, and the `top`
    largest by memory at their last snapshot."""
    chosen = {s.cgroup: s for s in [*found.leaks, *found.near_limit, *found.services[:top]]}
    return list(chosen.values())


def _plot(rows: _Rows, values: FloatArray, service: Service) -> ServicePlot:
    i = rows.paths.index(service.cgroup)
    cut = slice(int(rows.starts[i]), int(rows.starts[i + 1]))
    part = rows.frame.iloc[cut]
    return ServicePlot(
        service=service.service,
        cgroup=service.cgroup,
        times=part["time"].to_numpy(np.int64).astype("datetime64[s]"),
        memory_mb=part["MEMORY_MB"].to_numpy(np.float64),
        footprint_mb=values[cut],
        limit_mb=service.limit_mb,
        basis=service.basis,
        rate_mb_per_day=service.leak_mb_per_day,
        judged=service.judged,
    )
