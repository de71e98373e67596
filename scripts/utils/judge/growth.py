"""Sustained memory growth (a leak) per process instance, judged from the floors of its memory.

RSS spread (max - min) answers "what moved"; this answers "what leaks". A process
instance is flagged when the floor of its memory keeps rising, fast enough to matter
and clearly above its noise, at the time scale it was watched at.

The floor. Each instance's lowest value in each bucket of time, aligned to UTC, ignores
spikes (a nightly job's hour at +3 GB) and a garbage collector's sawtooth, since every
bucket then holds a trough. A leak lifts the troughs too, so the floors still rise. A
bucket holding few snapshots (the first or last of an instance, or one cut by an outage
of the collector) has a minimum biased upwards: it counts in proportion to its share of
a full bucket, and not at all under half of one.

The time scale. An instance watched for at least 2 days is judged on 6-hour floors; a
shorter one on floors 2, 4, 8 ... times shorter, so that it has as many floors as a
2-day one has (8 to 16): a quarter of an hour at 1 s is judged as two days at 10
minutes are. A bucket holds at least MIN_BUCKET_SAMPLES snapshots. The warm-up, the
least time a leak must grow for and the least growth scale with the bucket. The floors
are kept at the finest level the collection may need (`floor_level`) and merged into
each instance's own level here (a minimum of minimums is exact).

The verdict, rule by rule (the first that fails names the reason):
  1. observed for at least the minimum span (`min_span_s`: by default 2 days, or most of
     a shorter collection), with at least MIN_JUDGED_SAMPLES snapshots;
  2. at least MIN_FIT_FLOORS usable floors after the warm-up (one bucket);
  3. the last floors stand above the lowest one by at least half the least growth a
     leak can have over the least time a leak grows for: a cheap prefilter;
  4. the fitted rate (utils.judge.hinge) is at least the least rate, min_rate_mb_per_day
     (and min_rise_mb over the instance's time scale, the shorter of its span and 2 days,
     when asked for), and the fitted growth is at least the least rise: MIN_RISE_SHARE of
     the instance's size (its fitted floor where the growth starts), never under
     LEAST_RISE_MB; the floors' noise is rule 6's;
  5. the end still rises: the slope of the last third of the growing part is not
     clearly under half the fitted rate (a slow start-up ramp, or a step reaching a
     plateau); "clearly" is judged with the floors' jitter from one floor to the next,
     widened where the tail's own residuals wander (utils.judge.hinge);
  6. the fitted growth (since -> last sample) is at least MIN_GROWTH_NOISE times the
     floors' noise (the RMS of their residuals around the fit), or, for a service whose
     floors follow its load up and down for days, the growth rate is WANDER_Z standard
     errors above zero under an AR(1) model of that wander and the growth at least
     WANDER_GROWTH_NOISE times the noise; where the residuals wander like a random walk,
     the first way also asks WALK_Z standard errors under the strongest AR(1) trusted;
  7. the growing part is a clean line: its R2 is at least MIN_FIT_R2.
The confidence of a flagged instance is that R2: 1 for a perfect line, lower as noise
or curvature take over.

All instances are judged together by array operations (no Python loop per instance): the
ones rule 1 keeps, their floors read a run of whole instances at a time. docs/leaks.md
explains the method, what the rules were tried on and why the defaults are what they are.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from utils.core.defaults import LEAK_MIN_RATE_MB_PER_DAY, LEAK_MIN_RISE_MB, LEAK_MIN_SPAN_DAYS
from utils.core.text import format_duration
from utils.core.units import DAY_S
from utils.judge.floor_passes import passes, rise_mb
from utils.judge.hinge import MIN_LEAK_FLOORS, Fits, Points, fit_hinges, segments
from utils.reduce.buckets import BUCKET_S, MAX_LEVEL

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

# From this span on, an instance is judged on BUCKET_S floors; it is also the minimum span
# of a long collection.
LONG_SPAN_S = LEAK_MIN_SPAN_DAYS * DAY_S
# A floor is the lowest of at least this many snapshots.
MIN_BUCKET_SAMPLES = 3
# An instance with fewer snapshots is never judged, whatever its span: 30 snapshots are 30
# seconds at 1 s, 5 hours at 10 minutes.
MIN_JUDGED_SAMPLES = 30
# By default, a collection shorter than LONG_SPAN_S / MOST_OF_COLLECTION judges the
# instances watched for this share of it.
MOST_OF_COLLECTION = 0.75
# Start-up ramps (loading code, JIT, filling caches and pools, sizing a heap) settle
# within minutes to a couple of hours of a long-running service. Buckets starting under
# one bucket after the first sample are left out (one to two buckets in all, by where the
# first sample falls). Slower ramps are caught by the tail test.
WARMUP_BUCKETS = 1
# A bucket under half full is likely to miss a sawtooth's trough, and with fewer samples
# its minimum dips less into the noise: its floor stands too high to trust.
MIN_FILL = 0.5
# 1.5 days of 6-hour floors: the fewest that tell a rise that goes on from a step or a ramp.
MIN_FIT_FLOORS = 6
# The growing part covers at least 4 buckets (a day of 6-hour floors).
MIN_LEAK_BUCKETS = MIN_LEAK_FLOORS
# The prefilter lets through anything whose last floors stand this share of the least
# possible leak growth above its lowest floor: loose, so that noise never hides a leak
# the fit would flag.
RISE_SHARE = 0.5
END_FLOORS = 4
# The least rise a leak must reach over its growing part: a share of the instance's size,
# so that one rule holds for a soak test's 10 MiB process and a 4 GiB cache (the floors'
# noise is rule 6's). Never under a few of glibc malloc's heap extensions (M_TOP_PAD,
# 128 KiB, mallopt(3)): a rise of a few pages is an allocator's step, not a leak.
MIN_RISE_SHARE = 0.05
LEAST_RISE_MB = 1.0
# Growth under 6 standard deviations of the floors' noise is a wander, not a trend; for a
# straight line that bound is also an R2 of 0.75.
MIN_GROWTH_NOISE = 6.0
# ... unless the rate stands this many standard errors above zero under an AR(1) model of
# the floors' wander, with a growth of at least this many times their noise.
WANDER_Z = 4.5
WANDER_GROWTH_NOISE = 4.0
# ... and where the floors wander like a random walk (AR(1) >= MAX_AR1), a growth beyond
# the noise must also be this many standard errors above zero at AR(1) = MAX_AR1.
WALK_Z = 2.0
# The growing part's R2: under 0.6 the floors are not a line (a step, a curve, noise).
MIN_FIT_R2 = 0.6
# Still rising at the end: the last third of the growing part (at least 4 floors) must not
# rise clearly slower than half the fitted rate ("clearly": even 2 standard errors above
# its slope stays under that). A ramp or a step that reached its plateau fails here.
TAIL_MIN_RATIO = 0.5
TAIL_Z = 2.0
# Rules 1 to 3 go through the floors this many rows at a time, in whole instances
# (utils.judge.floor_passes).
ROWS_PER_PASS = 1 << 16


class Rule(enum.IntEnum):
    """The rule that decided an instance's verdict (GROWS: flagged)."""

    GROWS = 0
    SHORT = 1  # observed for under the minimum span, or with too few snapshots
    FEW_FLOORS = 2  # under MIN_FIT_FLOORS usable floors after the warm-up
    NO_RISE = 3  # the prefilter: the last floors barely stand above the lowest
    SLOW = 4  # fitted rate under the least rate
    TAIL = 5  # not rising any more at the end
    NOISE = 6  # fitted growth within the floors' noise
    FIT = 7  # the growing part is not a clean line
    SMALL = 8  # fitted growth under the least rise for the instance's size


@dataclass(frozen=True, kw_only=True)
class GrowthParams:
    """What the user asked of the leak finder; min_span_s None: the collection's default."""

    min_rate_mb_per_day: float = LEAK_MIN_RATE_MB_PER_DAY  # below this, never flagged
    min_span_s: float | None = None  # observed for less: never judged
    min_rise_mb: float = LEAK_MIN_RISE_MB  # least growth over the time scale (0: off)
    min_rise_share: float = MIN_RISE_SHARE  # least growth, as a share of the size

    def __post_init__(self) -> None:
        if not self.min_rate_mb_per_day >= 0:
            raise ValueError(f"min_rate_mb_per_day must be >= 0, not {self.min_rate_mb_per_day}")
        if self.min_span_s is not None and not self.min_span_s >= 0:
            raise ValueError(f"min_span_s must be >= 0, not {self.min_span_s}")
        if not self.min_rise_mb >= 0:
            raise ValueError(f"min_rise_mb must be >= 0, not {self.min_rise_mb}")
        if not self.min_rise_share >= 0:
            raise ValueError(f"min_rise_share must be >= 0, not {self.min_rise_share}")


def min_span_for(params: GrowthParams, collection_s: float, interval_s: float) -> float:
    """The minimum span of a judged instance: the one asked for, else 2 days, or most of a
    collection shorter than that; never under MIN_JUDGED_SAMPLES snapshots."""
    if params.min_span_s is not None:
        span = params.min_span_s
    else:
        span = min(LONG_SPAN_S, MOST_OF_COLLECTION * collection_s)
    return max(span, MIN_JUDGED_SAMPLES * interval_s)


def level_for_span(span_s: FloatArray, interval_s: float, finest: int) -> IntArray:
    """Each instance's floor level: 0 (BUCKET_S) from LONG_SPAN_S on, one level finer (half
    the bucket) each time the span halves, but never a bucket under MIN_BUCKET_SAMPLES
    snapshots, nor finer than the floors kept (`finest`)."""
    with np.errstate(divide="ignore"):
        wanted = np.ceil(np.log2(LONG_SPAN_S / np.maximum(span_s, 1.0)))
    by_interval = math.floor(math.log2(BUCKET_S / (MIN_BUCKET_SAMPLES * max(interval_s, 1e-3))))
    cap = max(0, min(finest, by_interval, MAX_LEVEL))
    return np.clip(wanted, 0, cap).astype(np.int64)


def floor_level(min_span_s: float, interval_s: float | None) -> int:
    """The finest floor level an instance of min_span_s may need (interval_s None: not
    known before reading, so not a limit): the level the reader keeps floors at."""
    interval = 1.0 if interval_s is None else interval_s
    return int(level_for_span(np.array([min_span_s]), interval, MAX_LEVEL)[0])


@dataclass(frozen=True)
class FloorTable:
    """Floors of many instances at one level, rows sorted by instance, then bucket."""

    instance: IntArray  # 0..n-1, non-decreasing
    bucket: IntArray  # bucket_index(epoch seconds, level)
    floor_mb: FloatArray  # the lowest value (MiB) of the instance in that bucket
    samples: IntArray  # snapshots of the instance in that bucket
    level: int = 0  # buckets of BUCKET_S / 2**level seconds


@dataclass(frozen=True)
class InstanceSpans:
    first_s: IntArray  # per instance: epoch seconds of its first sample
    last_s: IntArray  # ... of its last sample
    samples: IntArray  # ... number of samples
    # The whole collection's span, for the default minimum span (None: the instances').
    collection_s: float | None = None


@dataclass(frozen=True)
class Growth:
    instance: int
    since_s: int  # epoch seconds where the sustained growth starts
    rate_mb_per_day: float
    growth_mb: float  # fitted growth from since_s to the instance's last sample
    confidence: float  # 0..1, how clean the trend is (R2 of the growing part)
    start_mb: float  # fitted floor level at since_s (to draw the fitted line)
    bucket_s: float  # the instance's floors: its time scale


@dataclass(frozen=True)
class Survey:
    """What the finder judged: the flagged instances, highest rate first, and how many were
    judged at all (the others were watched for under `min_span_s`)."""

    growths: list[Growth]
    judged: int
    instances: int
    min_span_s: float


def survey(
    floors: FloorTable, spans: InstanceSpans, interval_s: float, params: GrowthParams
) -> Survey:
    """Judge every instance; interval_s is the usual time between snapshots."""
    _check(floors, spans, interval_s)
    min_span_s, short = short_instances(spans, interval_s, params)
    kept = np.flatnonzero(~short)
    del short
    found = _assess(*_judged_only(floors, spans, kept), interval_s, params)
    flagged = np.flatnonzero(found.rule == Rule.GROWS)
    flagged = flagged[np.argsort(-found.trend.rate_mb_per_day[flagged], kind="stable")]
    judged = int(np.count_nonzero(found.rule != Rule.SHORT))
    growths = [_growth(found, int(i), int(kept[i])) for i in flagged]
    return Survey(growths, judged, int(spans.first_s.size), min_span_s)


def _judged_only(
    floors: FloorTable, spans: InstanceSpans, kept: IntArray
) -> tuple[FloorTable, InstanceSpans]:
    """The tables of the instances `kept` (sorted) alone, numbered 0..kept.size - 1 in the
    same order. A year holds hundreds of thousands of short-lived instances that rule 1
    rejects whatever their floors, and every rule but the first reads an instance's own
    rows and spans alone, in the same order: the verdicts of the kept ones are those of the
    whole tables, without arrays over every instance (or floor) for them."""
    if kept.size == spans.first_s.size:
        return floors, spans
    judged = np.zeros(spans.first_s.size, bool)
    judged[kept] = True
    mask = judged[floors.instance]
    rows: slice | BoolArray = slice(None) if mask.all() else mask
    table = FloorTable(
        instance=np.searchsorted(kept, floors.instance[rows]),
        bucket=floors.bucket[rows],
        floor_mb=floors.floor_mb[rows],
        samples=floors.samples[rows],
        level=floors.level,
    )
    own = InstanceSpans(
        spans.first_s[kept], spans.last_s[kept], spans.samples[kept], _collection_s(spans)
    )
    return table, own


def _collection_s(spans: InstanceSpans) -> float:
    """The collection's span: as given, else from its first to its last instance."""
    if spans.collection_s is not None:
        return spans.collection_s
    if not spans.first_s.size:
        return 0.0
    return float(spans.last_s.max() - spans.first_s.min())


def _check(floors: FloorTable, spans: InstanceSpans, interval_s: float) -> None:
    n = spans.first_s.size
    rows = floors.instance.size
    if not (floors.bucket.size == floors.floor_mb.size == floors.samples.size == rows):
        raise ValueError("FloorTable arrays differ in length")
    if not (spans.last_s.size == spans.samples.size == n):
        raise ValueError("InstanceSpans arrays differ in length")
    if rows and (floors.instance[0] < 0 or floors.instance[-1] >= n):
        raise ValueError(f"FloorTable instances must be in 0..{n - 1}")
    same = floors.instance[1:] == floors.instance[:-1]
    if np.any(floors.instance[1:] < floors.instance[:-1]) or np.any(
        same & (floors.bucket[1:] <= floors.bucket[:-1])
    ):
        raise ValueError("FloorTable rows must be sorted by instance, then bucket")
    if not interval_s > 0:
        raise ValueError(f"interval_s must be > 0, not {interval_s}")
    if not 0 <= floors.level <= MAX_LEVEL:
        raise ValueError(f"FloorTable level must be in 0..{MAX_LEVEL}, not {floors.level}")


# --- Each instance at its own time scale ---------------------------------------------


class _Scale(NamedTuple):
    """The time scale of every instance, and the limits that follow from it."""

    min_span_s: float
    short: BoolArray  # per instance: not judged (rule 1)
    bucket_s: FloatArray  # per instance: the length of its floors' buckets
    min_rate: FloatArray  # per instance: the least rate called a leak, MiB/day
    # per instance: the least rate the prefilter lets through, MiB/day: min_rate, and
    # LEAST_RISE_MB over the instance's span (the slowest a least rise may be)
    screen_rate: FloatArray


def short_instances(
    spans: InstanceSpans, interval_s: float, params: GrowthParams
) -> tuple[float, BoolArray]:
    """The minimum span of a judged instance, and which instances are under it or have too
    few snapshots (rule 1): they are never judged, so none of their floors is ever read."""
    span_s = (spans.last_s - spans.first_s).astype(np.float64)
    min_span_s = min_span_for(params, _collection_s(spans), interval_s)
    return min_span_s, (span_s < min_span_s) | (spans.samples < MIN_JUDGED_SAMPLES)


def _scales(spans: InstanceSpans, interval_s: float, params: GrowthParams, finest: int) -> _Scale:
    span_s = (spans.last_s - spans.first_s).astype(np.float64)
    min_span_s, short = short_instances(spans, interval_s, params)
    level = level_for_span(span_s, interval_s, finest)
    bucket_s = BUCKET_S / np.exp2(level)
    # The least rate: the one asked for, and the least rise over the time scale.
    scale_days = np.maximum(np.minimum(span_s, LONG_SPAN_S), interval_s) / DAY_S
    min_rate = np.maximum(params.min_rate_mb_per_day, params.min_rise_mb / scale_days)
    span_days = np.maximum(span_s, interval_s) / DAY_S
    screen_rate = np.maximum(min_rate, LEAST_RISE_MB / span_days)
    return _Scale(min_span_s, short, bucket_s, min_rate, screen_rate)


def coarsened(floors: FloorTable, bucket_s: FloatArray) -> FloorTable:
    """The floors merged into each instance's own buckets (bucket_s, a power of two times
    the table's), still sorted; buckets are indexed at each instance's own level."""
    table_bucket_s = BUCKET_S / 2.0**floors.level
    shift = np.rint(np.log2(bucket_s / table_bucket_s)).astype(np.int64)[floors.instance]
    if not np.any(shift):
        return floors
    bucket = floors.bucket >> shift
    inst = floors.instance
    cuts = np.flatnonzero(np.r_[True, (inst[1:] != inst[:-1]) | (bucket[1:] != bucket[:-1])])
    return FloorTable(
        instance=inst[cuts],
        bucket=bucket[cuts],
        floor_mb=np.minimum.reduceat(floors.floor_mb, cuts),
        samples=np.add.reduceat(floors.samples, cuts),
        level=floors.level,
    )


# --- The rules, all instances at once ----------------------------------------------


class _Screen(NamedTuple):
    """Rules 1 to 3, the cheap ones, for every instance (GROWS: still in the running)."""

    rule: npt.NDArray[np.int8]
    span_days: FloatArray
    floors: IntArray  # per instance: usable floors after the warm-up
    rise_mb: FloatArray  # per instance: the last floors over the lowest (NaN: no floors)
    keep: BoolArray  # per row: a usable floor of an instance that passed rule 2
    samples: IntArray  # per instance: its snapshots


class _Rows(NamedTuple):
    """Per floor row, for the rules that read them (see _row_scale)."""

    instance: IntArray
    bucket_s: FloatArray  # the length of the instance's buckets
    start_s: FloatArray  # the bucket's start, epoch seconds
    fill: FloatArray  # the share of a full bucket its samples make, 0..1


class _Trend(NamedTuple):
    """Every instance's fitted numbers (NaN, 0 or False where there is no fit)."""

    since_s: IntArray
    rate_mb_per_day: FloatArray
    growth_mb: FloatArray
    start_mb: FloatArray
    noise_mb: FloatArray
    r2: FloatArray
    tail_rate_mb_per_day: FloatArray
    tail_floors: IntArray
    wander_z: FloatArray
    fitted: BoolArray


@dataclass(frozen=True)
class _Assessment:
    """Every instance's rule and numbers (NaN where a rule came before the number)."""

    rule: npt.NDArray[np.int8]
    screen: _Screen
    scale: _Scale
    trend: _Trend  # the fitted numbers
    params: GrowthParams


def _assess(
    floors: FloorTable, spans: InstanceSpans, interval_s: float, params: GrowthParams
) -> _Assessment:
    """Every instance through the rules, all at once: the cheap rules for all of them, the
    fit and the rules on it for those the prefilter lets through."""
    _check(floors, spans, interval_s)
    scale = _scales(spans, interval_s, params, floors.level)
    floors = coarsened(floors, scale.bucket_s)
    screen = _screen(floors, spans, interval_s, scale, params)
    rule = screen.rule
    trend = _no_trend(rule.size)
    fit_rows = screen.keep & (rule[floors.instance] == Rule.GROWS)
    if np.any(fit_rows):
        points = _points(floors, spans, scale, fit_rows, interval_s)
        days = scale.bucket_s[points.instance] / DAY_S
        fit = fit_hinges(points, screen.span_days[points.instance], MIN_LEAK_BUCKETS * days)
        rule[points.instance[~fit.ok]] = Rule.FEW_FLOORS  # no knot leaves room to grow in
        # The others go on, with their fits.
        ids, fit = points.instance[fit.ok], Fits._make(field[fit.ok] for field in fit)
        _store_fits(trend, ids, fit, spans.first_s)
        rule[ids] = _fit_rules(fit, scale.min_rate[ids], params.min_rise_share)
    return _Assessment(rule=rule, screen=screen, scale=scale, trend=trend, params=params)


def _screen(
    floors: FloorTable,
    spans: InstanceSpans,
    interval_s: float,
    scale: _Scale,
    params: GrowthParams,
) -> _Screen:
    """Rules 1 to 3, per instance, before any fit (floors at each instance's level)."""
    n = spans.first_s.size
    rule = np.full(n, Rule.GROWS, dtype=np.int8)

    # Rule 1, per instance: observed span and snapshots.
    span_days = (spans.last_s - spans.first_s) / DAY_S
    rule[scale.short] = Rule.SHORT

    # Rule 2, per row: full enough buckets after the warm-up, of judged instances.
    inst = floors.instance
    usable = np.empty(inst.size, bool)
    count = np.zeros(n, np.int64)
    for rows in passes(inst, ROWS_PER_PASS):
        usable[rows] = _usable(floors, rows, spans, interval_s, scale)
        count += np.bincount(inst[rows][usable[rows]], minlength=n)
    few = ~scale.short & (count < MIN_FIT_FLOORS)
    rule[few] = Rule.FEW_FLOORS
    keep = usable & ~few[inst]
    del usable

    # Rule 3, the prefilter: the last floors against the lowest.
    rise = np.full(n, np.nan)
    for rows in passes(inst, ROWS_PER_PASS):
        chosen = keep[rows]
        rise_mb(inst[rows][chosen], floors.floor_mb[rows][chosen], END_FLOORS, rise)
    rule[(rule == Rule.GROWS) & ~(rise >= _least_rise_mb(scale))] = Rule.NO_RISE
    return _Screen(rule, span_days, count, rise, keep, spans.samples)


def _row_scale(
    floors: FloorTable, rows: slice | BoolArray, interval_s: float, scale: _Scale
) -> _Rows:
    """Of the chosen rows: the instance, the length of its bucket, the bucket's start (epoch
    seconds) and the share of a full bucket its samples make (0..1)."""
    inst = floors.instance[rows]
    bucket_s = scale.bucket_s[inst]
    fill = np.minimum(1.0, floors.samples[rows] * (interval_s / bucket_s))
    return _Rows(inst, bucket_s, floors.bucket[rows] * bucket_s, fill)


def _usable(
    floors: FloorTable, rows: slice, spans: InstanceSpans, interval_s: float, scale: _Scale
) -> BoolArray:
    """Of the rows: a full enough bucket after the warm-up, of a judged instance."""
    row = _row_scale(floors, rows, interval_s, scale)
    after_warmup = row.start_s >= spans.first_s[row.instance] + WARMUP_BUCKETS * row.bucket_s
    usable: BoolArray = (row.fill >= MIN_FILL) & after_warmup & ~scale.short[row.instance]
    return usable


def _least_rise_mb(scale: _Scale) -> FloatArray:
    """What the prefilter asks of the last floors over the lowest: a share of the growth
    the slowest leak makes over the shortest time a leak may grow for (the least rise
    relative to the size is rule 4's, after the fit: loose here, it never hides a leak)."""
    least: FloatArray = RISE_SHARE * scale.screen_rate * MIN_LEAK_BUCKETS * scale.bucket_s / DAY_S
    return least


def _points(
    floors: FloorTable, spans: InstanceSpans, scale: _Scale, rows: BoolArray, interval_s: float
) -> Points:
    """The chosen rows as points to fit, weighted by how full their buckets are."""
    row = _row_scale(floors, rows, interval_s, scale)
    inst = row.instance
    seg = segments(inst)
    # The floor stands for the observed part of its bucket (the last one may be cut).
    lo = row.start_s
    hi = np.minimum(lo + row.bucket_s, spans.last_s[inst] + interval_s)
    t = (0.5 * (lo + hi) - spans.first_s[inst]) / DAY_S  # days since the first sample
    return Points(t, row.fill, floors.floor_mb[rows], seg, inst[seg.start])


def _no_trend(n: int) -> _Trend:
    """Every instance without a fit, for _store_fits to fill in."""
    return _Trend(
        since_s=np.zeros(n, np.int64),
        rate_mb_per_day=np.full(n, np.nan),
        growth_mb=np.full(n, np.nan),
        start_mb=np.full(n, np.nan),
        noise_mb=np.full(n, np.nan),
        r2=np.full(n, np.nan),
        tail_rate_mb_per_day=np.full(n, np.nan),
        tail_floors=np.zeros(n, np.int64),
        wander_z=np.full(n, np.nan),
        fitted=np.zeros(n, bool),
    )


def _store_fits(trend: _Trend, ids: IntArray, fit: Fits, first_s: IntArray) -> None:
    """Write the fits of instances `ids` into every instance's arrays, in place."""
    trend.fitted[ids] = True
    trend.since_s[ids] = np.rint(first_s[ids] + fit.knot_days * DAY_S).astype(np.int64)
    trend.rate_mb_per_day[ids] = fit.rate
    trend.growth_mb[ids] = fit.growth_mb
    trend.start_mb[ids] = fit.start_mb
    trend.noise_mb[ids] = fit.noise_mb
    trend.r2[ids] = fit.r2
    trend.tail_rate_mb_per_day[ids] = fit.tail_rate
    trend.tail_floors[ids] = fit.tail_floors
    trend.wander_z[ids] = fit.wander_z


def least_rise_mb(size_mb: FloatArray, share: float = MIN_RISE_SHARE) -> FloatArray:
    """The least growth a leak of an instance of size_mb (its floor where the growth
    starts) reaches: `share` of it, never under LEAST_RISE_MB."""
    least: FloatArray = np.maximum(LEAST_RISE_MB, share * np.maximum(size_mb, 0.0))
    return least


def _fit_rules(fit: Fits, min_rate: FloatArray, share: float) -> npt.NDArray[np.int8]:
    """Rules 4 to 7 for fitted instances, in order: the first that fails decides (GROWS:
    none fails)."""
    b = fit.rate
    # A wander like a random walk fakes a trend the plain rule cannot tell: there the rate
    # must also stand WALK_Z standard errors above zero under the strongest AR(1) trusted.
    walk_ok = np.isnan(fit.walk_z) | (fit.walk_z >= WALK_Z)
    beyond_noise = (fit.growth_mb >= MIN_GROWTH_NOISE * fit.noise_mb) & walk_ok
    beyond_wander = (fit.wander_z >= WANDER_Z) & (
        fit.growth_mb >= WANDER_GROWTH_NOISE * fit.noise_mb
    )
    checks = (
        (Rule.SLOW, b < min_rate),
        (Rule.SMALL, ~(fit.growth_mb >= least_rise_mb(fit.start_mb, share))),
        (Rule.TAIL, fit.tail_rate + TAIL_Z * fit.tail_se < TAIL_MIN_RATIO * b),
        (Rule.NOISE, ~(beyond_noise | beyond_wander)),
        (Rule.FIT, fit.r2 < MIN_FIT_R2),
    )
    rule = np.full(b.size, Rule.GROWS, dtype=np.int8)
    # Last rule first, so that an earlier rule that also fails overwrites it.
    for code, failed in reversed(checks):
        rule[failed] = code
    return rule


# --- Verdicts ----------------------------------------------------------------------


def _growth(found: _Assessment, i: int, instance: int | None = None) -> Growth:
    return Growth(
        instance=i if instance is None else instance,
        since_s=int(found.trend.since_s[i]),
        rate_mb_per_day=float(found.trend.rate_mb_per_day[i]),
        growth_mb=float(found.trend.growth_mb[i]),
        confidence=float(found.trend.r2[i]),
        start_mb=float(found.trend.start_mb[i]),
        bucket_s=float(found.scale.bucket_s[i]),
    )


def span_text(seconds: float) -> str:
    """A span as the verdicts say it: `2 days`, `3.75 days` from a day on; `5 h 40 min`, to
    the minute, from 10 minutes on; else `2 min 5 s`."""
    if seconds >= DAY_S:
        days = f"{seconds / DAY_S:.2f}".rstrip("0").rstrip(".")
        return f"{days} day" if days == "1" else f"{days} days"
    return format_duration(round(seconds / 60) * 60 if seconds >= 600 else seconds)
