"""Sustained memory growth (a leak) per process instance, judged from 6-hour RSS floors.

RSS spread (max - min) answers "what moved"; this answers "what leaks". A process
instance is flagged when the floor of its memory keeps rising for at least a day, fast
enough to matter and clearly above its noise.

The floor. Each instance's lowest RSS in each 6-hour UTC bucket (bucket index =
epoch_seconds // BUCKET_S) ignores spikes (a nightly job's hour at +3 GB), and a
garbage collector's sawtooth with a period of a few hours, since every bucket then holds
a trough. A leak lifts the troughs too, so the floors still rise. A bucket holding few
snapshots (the first or last of an instance, or one cut by an outage of the collector)
has a minimum biased upwards: it counts in proportion to its share of a full bucket, and
not at all under half of one.

The fit. After a warm-up, the floors are fitted with a hinge,
`floor = c + b * max(0, t - since)`, by weighted least squares for every candidate
`since` at once: the sums the normal equations need for each knot are suffix sums,
so an instance costs O(buckets), and all instances are fitted together without a Python
loop per instance. The knot of least squared error gives the rate b and since when,
unless a plain line (the knot at the first floor) fits about as well: a knot is one more
parameter, and it must pay for itself (Akaike's criterion).

The verdict, rule by rule (the first that fails names the reason):
  1. observed for at least min_span_days;
  2. at least MIN_FIT_FLOORS usable floors after the warm-up;
  3. the last floors stand above the lowest one by at least half the least growth a
     leak can have (min rate over MIN_LEAK_DAYS): a cheap prefilter, before any fit;
  4. the fitted rate is at least min_rate_mb_per_day;
  5. the end still rises: the slope of the last third of the growing part is not
     clearly under half the fitted rate (a slow start-up ramp, or a step reaching a
     plateau); "clearly" is judged with the floors' jitter from one floor to the next,
     which a step or a bend of the fit does not inflate;
  6. the fitted growth (since -> last sample) is at least MIN_GROWTH_NOISE times the
     floors' noise (the RMS of their residuals around the fit: slow wander counts);
  7. the growing part is a clean line: its R2 is at least MIN_FIT_R2.
The confidence of a flagged instance is that R2: 1 for a perfect line, lower as noise
or curvature take over. The rate is the floor's: when the noise scales with RSS, the
floor rises a few percent slower than the mean does.

All instances are judged together, in one pass of array operations (no Python loop per
instance). docs/leaks.md explains the method and why the defaults are what they are.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from utils.defaults import LEAK_MIN_RATE_MB_PER_DAY, LEAK_MIN_SPAN_DAYS
from utils.units import DAY_S, HOUR_S

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

# The floors: the lowest RSS per 6 hours, aligned to UTC.
BUCKET_S = 6 * HOUR_S

# Start-up ramps (loading code, JIT, filling caches and pools, sizing a heap) settle
# within minutes to a couple of hours. Buckets starting under 6 hours after the first
# sample are left out (6 to 12 hours in all, by where the first sample falls), which a
# restart every few days can afford. Slower ramps are caught by the tail test.
WARMUP_S = 6 * HOUR_S
# A bucket under half full is likely to miss a sawtooth's trough, and with fewer samples
# its minimum dips less into the noise: its floor stands too high to trust.
MIN_FILL = 0.5
# 1.5 days of floors: the fewest that tell a rise that goes on from a step or a ramp.
MIN_FIT_FLOORS = 6
# The growing part holds at least a day (4 floors): a shorter rise is a step as far as
# anyone can tell.
MIN_LEAK_DAYS = 1.0
MIN_LEAK_FLOORS = 4
# Akaike's price of a parameter, in units of log-likelihood: the hinge's knot.
KNOT_PENALTY = 2.0
# The prefilter lets through anything whose last floors stand this share of the least
# possible leak growth above its lowest floor: loose, so that noise never hides a leak
# the fit would flag.
RISE_SHARE = 0.5
END_FLOORS = 4
# Growth under 6 standard deviations of the floors' noise is a wander, not a trend; for a
# straight line that bound is also an R2 of 0.75.
MIN_GROWTH_NOISE = 6.0
# The growing part's R2: under 0.6 the floors are not a line (a step, a curve, noise).
MIN_FIT_R2 = 0.6
# Still rising at the end: the last third of the growing part (at least 4 floors) must not
# rise clearly slower than half the fitted rate ("clearly": even 2 standard errors above
# its slope stays under that). A ramp or a step that reached its plateau fails here.
TAIL_SHARE = 1 / 3
TAIL_MIN_FLOORS = 4
TAIL_MIN_RATIO = 0.5
TAIL_Z = 2.0


class Rule(enum.IntEnum):
    """The rule that decided an instance's verdict (GROWS: flagged)."""

    GROWS = 0
    SHORT = 1  # observed for under min_span_days
    FEW_FLOORS = 2  # under MIN_FIT_FLOORS usable floors after the warm-up
    NO_RISE = 3  # the prefilter: the last floors barely stand above the lowest
    SLOW = 4  # fitted rate under min_rate_mb_per_day
    TAIL = 5  # not rising any more at the end
    NOISE = 6  # fitted growth within the floors' noise
    FIT = 7  # the growing part is not a clean line


@dataclass(frozen=True)
class GrowthParams:
    min_rate_mb_per_day: float = LEAK_MIN_RATE_MB_PER_DAY  # below this, never flagged
    min_span_days: float = LEAK_MIN_SPAN_DAYS  # observed for less: never judged

    def __post_init__(self) -> None:
        if not self.min_rate_mb_per_day >= 0:
            raise ValueError(f"min_rate_mb_per_day must be >= 0, not {self.min_rate_mb_per_day}")
        if not self.min_span_days >= 0:
            raise ValueError(f"min_span_days must be >= 0, not {self.min_span_days}")


@dataclass(frozen=True)
class FloorTable:
    """6-hour floors of many instances, rows sorted by instance, then bucket."""

    instance: IntArray  # 0..n-1, non-decreasing
    bucket: IntArray  # epoch seconds // BUCKET_S
    floor_mb: FloatArray  # lowest RSS (MiB) of the instance in that bucket
    samples: IntArray  # snapshots of the instance in that bucket


@dataclass(frozen=True)
class InstanceSpans:
    first_s: IntArray  # per instance: epoch seconds of its first sample
    last_s: IntArray  # ... of its last sample
    samples: IntArray  # ... number of samples


@dataclass(frozen=True)
class Growth:
    instance: int
    since_s: int  # epoch seconds where the sustained growth starts
    rate_mb_per_day: float
    growth_mb: float  # fitted growth from since_s to the instance's last sample
    confidence: float  # 0..1, how clean the trend is (R2 of the growing part)
    start_mb: float  # fitted floor level at since_s (to draw the fitted line)


@dataclass(frozen=True)
class Verdict:
    """One instance's verdict, for tests, debugging and reports."""

    instance: int
    flagged: bool
    rule: Rule
    reason: str  # the deciding rule, with its numbers
    growth: Growth | None  # set when flagged
    fitted: Growth | None  # the hinge fit even when rejected by a later rule (None: no fit)


@dataclass(frozen=True)
class _Assessment:
    """Every instance's rule and numbers (NaN where a rule came before the number)."""

    rule: npt.NDArray[np.int8]
    span_days: FloatArray
    floors: IntArray  # usable floors after the warm-up
    rise_mb: FloatArray
    trend: _Trend  # the fitted numbers


def floors_of(
    times_s: npt.NDArray[np.int64], rss_mb: npt.NDArray[np.float64]
) -> tuple[IntArray, FloatArray, IntArray]:
    """Reference floors of one series (times sorted): the caller uses it to draw floors on
    a plot. Returns each bucket's index, lowest RSS (MiB) and number of samples."""
    times = np.asarray(times_s, dtype=np.int64)
    rss = np.asarray(rss_mb, dtype=np.float64)
    if times.shape != rss.shape or times.ndim != 1:
        raise ValueError("times_s and rss_mb must be 1-D arrays of the same length")
    if times.size == 0:
        return np.empty(0, np.int64), np.empty(0, np.float64), np.empty(0, np.int64)
    if np.any(times[1:] < times[:-1]):
        raise ValueError("times_s must be sorted")
    buckets = times // BUCKET_S
    starts = np.flatnonzero(np.r_[True, buckets[1:] != buckets[:-1]])
    samples = np.diff(np.r_[starts, times.size]).astype(np.int64)
    floor = np.asarray(np.minimum.reduceat(rss, starts), dtype=np.float64)
    return buckets[starts], floor, samples


def tables_of(
    series: Sequence[tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]],
) -> tuple[FloorTable, InstanceSpans]:
    """The tables find_growth takes, from whole series (one per instance, times sorted,
    none empty): for tests and small inputs; the analysis builds them batch by batch."""
    parts = [floors_of(times, rss) for times, rss in series]
    if any(times.size == 0 for times, _ in series):
        raise ValueError("every series needs at least one sample")
    counts = [part[0].size for part in parts]
    table = FloorTable(
        instance=np.repeat(np.arange(len(parts), dtype=np.int64), counts),
        bucket=np.concatenate([p[0] for p in parts] or [np.empty(0, np.int64)]),
        floor_mb=np.concatenate([p[1] for p in parts] or [np.empty(0, np.float64)]),
        samples=np.concatenate([p[2] for p in parts] or [np.empty(0, np.int64)]),
    )
    spans = InstanceSpans(
        first_s=np.array([int(times[0]) for times, _ in series], dtype=np.int64),
        last_s=np.array([int(times[-1]) for times, _ in series], dtype=np.int64),
        samples=np.array([times.size for times, _ in series], dtype=np.int64),
    )
    return table, spans


def find_growth(
    floors: FloorTable, spans: InstanceSpans, interval_s: float, params: GrowthParams
) -> list[Growth]:
    """The instances with sustained growth, highest rate first. interval_s is the usual
    time between snapshots (600 normally; tests may use other values)."""
    found = _assess(floors, spans, interval_s, params)
    flagged = np.flatnonzero(found.rule == Rule.GROWS)
    flagged = flagged[np.argsort(-found.trend.rate_mb_per_day[flagged], kind="stable")]
    return [_growth(found, int(i)) for i in flagged]


def judge(
    floors: FloorTable,
    spans: InstanceSpans,
    instance: int,
    interval_s: float,
    params: GrowthParams,
) -> Verdict:
    """One instance's verdict and why, by the same rules as find_growth."""
    if not 0 <= instance < spans.first_s.size:
        raise ValueError(f"no instance {instance} among {spans.first_s.size}")
    lo, hi = np.searchsorted(floors.instance, [instance, instance + 1])
    rows = slice(int(lo), int(hi))
    one = slice(instance, instance + 1)
    found = _assess(
        FloorTable(
            instance=np.zeros(int(hi - lo), np.int64),
            bucket=floors.bucket[rows],
            floor_mb=floors.floor_mb[rows],
            samples=floors.samples[rows],
        ),
        InstanceSpans(spans.first_s[one], spans.last_s[one], spans.samples[one]),
        interval_s,
        params,
    )
    return _verdict(found, 0, params, instance)


def verdicts(
    floors: FloorTable, spans: InstanceSpans, interval_s: float, params: GrowthParams
) -> list[Verdict]:
    """Every instance's verdict, in instance order (for debugging: builds n strings)."""
    found = _assess(floors, spans, interval_s, params)
    return [_verdict(found, i, params, i) for i in range(spans.first_s.size)]


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


class _Segments(NamedTuple):
    """Rows sorted by group, cut into one segment per group."""

    start: IntArray  # each segment's first row
    end: IntArray  # ... and the row after its last
    of_row: IntArray  # each row's segment number


def _segments(group: IntArray) -> _Segments:
    """The segments of rows sorted by group."""
    starts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]]) if group.size else group
    ends = np.r_[starts[1:], group.size].astype(np.int64)
    segment = np.repeat(np.arange(starts.size, dtype=np.int64), np.diff(np.r_[starts, group.size]))
    return _Segments(starts.astype(np.int64), ends, segment)


def _first_per_segment(rows: IntArray, segment: IntArray) -> IntArray:
    """The first of the (sorted) rows in each segment; every segment must have one."""
    seg = segment[rows]
    return rows[np.r_[True, seg[1:] != seg[:-1]]]


def _suffix(values: FloatArray, end_of_row: IntArray) -> FloatArray:
    """Each row's sum of values from that row to the end of its segment."""
    total = np.cumsum(values)
    return total[end_of_row - 1] - total + values


# --- The rules, all instances at once ----------------------------------------------


class _Screen(NamedTuple):
    """Rules 1 to 3, the cheap ones, for every instance (GROWS: still in the running)."""

    rule: npt.NDArray[np.int8]
    span_days: FloatArray
    floors: IntArray  # per instance: usable floors after the warm-up
    rise_mb: FloatArray  # per instance (NaN when rule 1 or 2 decided)
    fill: FloatArray  # per row: the share of a full bucket its samples make, 0..1
    keep: BoolArray  # per row: a usable floor of an instance that passed rule 2


class _Points(NamedTuple):
    """The floors to fit, one segment per instance, as weighted points."""

    t: FloatArray  # days since the instance's first sample
    w: FloatArray  # the bucket's fill
    y: FloatArray  # the floor, MiB
    seg: _Segments
    instance: IntArray  # each segment's instance


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
    fitted: BoolArray


def _assess(
    floors: FloorTable, spans: InstanceSpans, interval_s: float, params: GrowthParams
) -> _Assessment:
    """Every instance through the rules, all at once: the cheap rules for all of them, the
    fit and the rules on it for those the prefilter lets through."""
    _check(floors, spans, interval_s)
    screen = _screen(floors, spans, interval_s, params)
    rule = screen.rule
    trend = _no_trend(rule.size)
    fit_rows = screen.keep & (rule[floors.instance] == Rule.GROWS)
    if np.any(fit_rows):
        points = _points(floors, spans, fit_rows, screen.fill, interval_s)
        fit = _fit_hinges(points, screen.span_days[points.instance])
        rule[points.instance[~fit.ok]] = Rule.FEW_FLOORS  # no knot leaves a day to grow in
        # The others go on, with their fits.
        ids, fit = points.instance[fit.ok], _Fits._make(field[fit.ok] for field in fit)
        _store_fits(trend, ids, fit, spans.first_s)
        rule[ids] = _fit_rules(fit, params)
    return _Assessment(
        rule=rule,
        span_days=screen.span_days,
        floors=screen.floors,
        rise_mb=screen.rise_mb,
        trend=trend,
    )


def _screen(
    floors: FloorTable, spans: InstanceSpans, interval_s: float, params: GrowthParams
) -> _Screen:
    """Rules 1 to 3, per instance, before any fit."""
    n = spans.first_s.size
    rule = np.full(n, Rule.GROWS, dtype=np.int8)

    # Rule 1, per instance: observed span.
    span_days = (spans.last_s - spans.first_s) / DAY_S
    short = span_days < params.min_span_days
    rule[short] = Rule.SHORT

    # Rule 2, per row: full enough buckets after the warm-up, of judged instances.
    inst = floors.instance
    fill = np.minimum(1.0, floors.samples * (interval_s / BUCKET_S))
    after_warmup = floors.bucket * BUCKET_S >= spans.first_s[inst] + WARMUP_S
    usable = (fill >= MIN_FILL) & after_warmup & ~short[inst]
    count = np.bincount(inst[usable], minlength=n).astype(np.int64)
    few = ~short & (count < MIN_FIT_FLOORS)
    rule[few] = Rule.FEW_FLOORS
    keep = usable & ~few[inst]

    # Rule 3, the prefilter: the last floors against the lowest.
    rise = _rise_mb(inst[keep], floors.floor_mb[keep], n)
    rule[(rule == Rule.GROWS) & ~(rise >= _least_rise_mb(params))] = Rule.NO_RISE
    return _Screen(rule, span_days, count, rise, fill, keep)


def _least_rise_mb(params: GrowthParams) -> float:
    """What the prefilter asks of the last floors over the lowest: a share of the growth
    the slowest leak makes over the shortest time a leak may take."""
    return RISE_SHARE * params.min_rate_mb_per_day * MIN_LEAK_DAYS


def _rise_mb(instance: IntArray, floor_mb: FloatArray, n: int) -> FloatArray:
    """Per instance, how far the highest of its last END_FLOORS floors stands above its
    lowest floor (NaN: no floors). Rows sorted by instance."""
    rise = np.full(n, np.nan)
    starts, ends, segment = _segments(instance)
    if starts.size:
        lowest = np.minimum.reduceat(floor_mb, starts)
        at_end = ends[segment] - np.arange(instance.size) <= END_FLOORS
        last_high = np.maximum.reduceat(np.where(at_end, floor_mb, -np.inf), starts)
        rise[instance[starts]] = last_high - lowest
    return rise


def _points(
    floors: FloorTable,
    spans: InstanceSpans,
    rows: BoolArray,
    fill: FloatArray,
    interval_s: float,
) -> _Points:
    """The chosen rows as points to fit, weighted by how full their buckets are."""
    inst = floors.instance[rows]
    seg = _segments(inst)
    # The floor stands for the observed part of its bucket (the last one may be cut).
    lo = floors.bucket[rows] * BUCKET_S
    hi = np.minimum(lo + BUCKET_S, spans.last_s[inst] + interval_s)
    t = (0.5 * (lo + hi) - spans.first_s[inst]) / DAY_S  # days since the first sample
    return _Points(t, fill[rows], floors.floor_mb[rows], seg, inst[seg.start])


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
        fitted=np.zeros(n, bool),
    )


def _store_fits(trend: _Trend, ids: IntArray, fit: _Fits, first_s: IntArray) -> None:
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


def _fit_rules(fit: _Fits, params: GrowthParams) -> npt.NDArray[np.int8]:
    """Rules 4 to 7 for fitted instances, in order: the first that fails decides (GROWS:
    none fails)."""
    b = fit.rate
    checks = (
        (Rule.SLOW, b < params.min_rate_mb_per_day),
        (Rule.TAIL, fit.tail_rate + TAIL_Z * fit.tail_se < TAIL_MIN_RATIO * b),
        (Rule.NOISE, fit.growth_mb < MIN_GROWTH_NOISE * fit.noise_mb),
        (Rule.FIT, fit.r2 < MIN_FIT_R2),
    )
    rule = np.full(b.size, Rule.GROWS, dtype=np.int8)
    # Last rule first, so that an earlier rule that also fails overwrites it.
    for code, failed in reversed(checks):
        rule[failed] = code
    return rule


# --- The hinge fit ---------------------------------------------------------------


class _Fits(NamedTuple):
    """The best hinge of each segment (instance), and what the rules need of it."""

    ok: BoolArray  # a knot leaving a day to grow in was found
    knot_days: FloatArray  # days since the first sample
    rate: FloatArray  # MiB/day
    growth_mb: FloatArray  # fitted growth from the knot to the last sample
    start_mb: FloatArray  # fitted floor at the knot
    noise_mb: FloatArray  # RMS of the residuals
    r2: FloatArray  # of the growing part, 0..1
    tail_rate: FloatArray  # MiB/day, slope of the last floors alone
    tail_se: FloatArray  # its standard error
    tail_floors: IntArray


class _Sums(NamedTuple):
    """Each row's weighted sums from that row to the end of its segment (y centred)."""

    w: FloatArray
    wt: FloatArray
    wtt: FloatArray
    wy: FloatArray
    wty: FloatArray
    wyy: FloatArray


class _Knots(NamedTuple):
    """Per row, the sums a hinge with its knot at that row's time needs."""

    sx: FloatArray  # of x = max(0, t - knot)
    sxx: FloatArray
    sxy: FloatArray
    sw: FloatArray  # the segment's totals, on each of its rows
    sy: FloatArray
    sse: FloatArray  # the hinge's squared error (inf: not a valid knot)
    slope: FloatArray  # its slope b (0: not a valid knot)


class _Hinge(NamedTuple):
    """Each segment's chosen hinge, `y = c + b * max(0, t - knot)`."""

    row: IntArray  # the knot's row
    knot_days: FloatArray
    b: FloatArray  # MiB/day
    c: FloatArray  # MiB, centred
    sse: FloatArray


class _Tail(NamedTuple):
    """The last floors of each segment's growing part, fitted alone."""

    rate: FloatArray  # MiB/day (inf: no slope)
    se: FloatArray  # its standard error
    floors: IntArray


def _fit_hinges(points: _Points, span_days: FloatArray) -> _Fits:
    """Weighted least squares of `y = c + b * max(0, t - knot)` for a knot at every row,
    in O(rows) for all segments together; the best knot of each segment, and its tail."""
    t, w, seg = points.t, points.w, points.seg
    starts, ends, segment = seg
    end_of_row = ends[segment]
    # Centred per instance, so that the sums of squares stay small and their differences
    # keep their precision.
    y_mean = np.add.reduceat(w * points.y, starts) / np.add.reduceat(w, starts)
    y = points.y - y_mean[segment]
    sums = _suffix_sums(t, w, y, end_of_row)
    # A knot must leave the growth MIN_LEAK_FLOORS floors and MIN_LEAK_DAYS.
    room = (end_of_row - np.arange(t.size) >= MIN_LEAK_FLOORS) & (
        span_days[segment] - t >= MIN_LEAK_DAYS
    )
    knots = _knot_sums(t, sums, seg, room)
    hinge = _best_hinge(t, knots, seg)
    x = np.maximum(0.0, t - hinge.knot_days[segment])
    resid = y - hinge.c[segment] - hinge.b[segment] * x
    tail = _tail(sums, seg, hinge.row, _jitter(resid, seg))
    # The noise: the residuals' weighted RMS, on m - 3 degrees of freedom (the hinge's 3).
    m = (ends - starts).astype(np.float64)
    sw = knots.sw[hinge.row]
    return _Fits(
        ok=np.isfinite(hinge.sse),
        knot_days=hinge.knot_days,
        rate=hinge.b,
        growth_mb=hinge.b * (span_days - hinge.knot_days),
        start_mb=hinge.c + y_mean,
        noise_mb=np.sqrt(np.maximum(hinge.sse, 0.0) / (sw * (m - 3) / m)),
        r2=_growing_r2(sums, knots, hinge),
        tail_rate=tail.rate,
        tail_se=tail.se,
        tail_floors=tail.floors,
    )


def _suffix_sums(t: FloatArray, w: FloatArray, y: FloatArray, end_of_row: IntArray) -> _Sums:
    """The weighted sums of every row to the end of its segment."""
    ws, wts, wtts = (_suffix(v, end_of_row) for v in (w, w * t, w * t * t))
    wys, wtys, wyys = (_suffix(v, end_of_row) for v in (w * y, w * t * y, w * y * y))
    return _Sums(ws, wts, wtts, wys, wtys, wyys)


def _knot_sums(t: FloatArray, sums: _Sums, seg: _Segments, room: BoolArray) -> _Knots:
    """The error and slope of a hinge with its knot at each row's time, where `room` allows
    a knot and the times after it spread."""
    sw, sy, syy = (total[seg.start][seg.of_row] for total in (sums.w, sums.wy, sums.wyy))
    # Knot at each row's time: x = max(0, t - t_row) is zero before it, so the sums over x
    # are suffix sums.
    sx = sums.wt - t * sums.w
    sxx = sums.wtt - 2 * t * sums.wt + t * t * sums.w
    sxy = sums.wty - t * sums.wy
    var_x = sxx - sx * sx / sw
    cov = sxy - sx * sy / sw
    var_y = syy - sy * sy / sw
    valid = room & (var_x > 1e-12)
    with np.errstate(divide="ignore", invalid="ignore"):
        sse = np.where(valid, var_y - cov * cov / var_x, np.inf)
        slope = np.where(valid, cov / var_x, 0.0)
    return _Knots(sx, sxx, sxy, sw, sy, sse, slope)


def _best_hinge(t: FloatArray, knots: _Knots, seg: _Segments) -> _Hinge:
    """Each segment's knot of least error, unless a plain line fits about as well."""
    starts, ends, segment = seg
    sse = knots.sse
    # The least error within each instance; ties go to the earliest knot.
    least = np.minimum.reduceat(sse, starts)
    best = _first_per_segment(np.flatnonzero(sse == least[segment]), segment)
    # A knot after the first floor is one more parameter: worth it only if it pays for
    # itself (Akaike), else a leak from the start shows a later `since` and a rate fitted
    # on fewer floors whenever noise favours it.
    m = (ends - starts).astype(np.float64)
    best = np.where(sse[starts] <= sse[best] * np.exp(KNOT_PENALTY / m), starts, best)
    b = knots.slope[best]
    c = (knots.sy[best] - b * knots.sx[best]) / knots.sw[best]
    return _Hinge(row=best, knot_days=t[best], b=b, c=c, sse=sse[best])


def _jitter(resid: FloatArray, seg: _Segments) -> FloatArray:
    """The floors' jitter: the median step between neighbouring floors' residuals, as a
    standard deviation. Unlike the residuals' RMS it ignores a step or a bend the hinge
    misses, so it can tell that a tail is flat when the fit is poor."""
    starts, ends, segment = seg
    jump = np.abs(np.diff(resid, prepend=0.0))
    # Sorted within each instance by one argsort: the instance's number plus the jump
    # scaled into [0, 1); an instance's first row has no neighbour and sorts last.
    key = segment + jump / (2.0 * float(jump.max()) + 1.0)
    key[starts] = segment[starts] + 0.75
    by_jump = np.argsort(key)
    lower, upper = starts + (ends - starts - 2) // 2, starts + (ends - starts - 1) // 2
    jitter: FloatArray = (jump[by_jump[lower]] + jump[by_jump[upper]]) / (2 * 0.6745 * np.sqrt(2))
    return jitter


def _growing_r2(sums: _Sums, knots: _Knots, hinge: _Hinge) -> FloatArray:
    """R2 of the growing part (knot to end) around the fitted line."""
    k, b, c = hinge.row, hinge.b, hinge.c
    sse_k = (
        sums.wyy[k]
        - 2 * c * sums.wy[k]
        - 2 * b * knots.sxy[k]
        + c * c * sums.w[k]
        + 2 * c * b * knots.sx[k]
        + b * b * knots.sxx[k]
    )
    sst_k = sums.wyy[k] - sums.wy[k] ** 2 / sums.w[k]
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.clip(np.where(sst_k > 0, 1 - sse_k / sst_k, 0.0), 0.0, 1.0)


def _tail(sums: _Sums, seg: _Segments, knot_row: IntArray, jitter: FloatArray) -> _Tail:
    """The last third of the growing part, at least TAIL_MIN_FLOORS floors: its slope and
    the slope's standard error."""
    grow_floors = seg.end - knot_row
    tail_n = np.minimum(
        grow_floors, np.maximum(TAIL_MIN_FLOORS, np.ceil(TAIL_SHARE * grow_floors))
    ).astype(np.int64)
    j = seg.end - tail_n
    w, wt, wy = sums.w[j], sums.wt[j], sums.wy[j]
    stt = sums.wtt[j] - wt**2 / w
    sty = sums.wty[j] - wt * wy / w
    # Its slope's standard error: from the jitter, or from the tail's own scatter around
    # its line when larger (a slow wander moves neighbours together, which the jitter
    # misses).
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = np.where(stt > 0, sty / stt, np.inf)
        tail_sse = np.maximum(0.0, sums.wyy[j] - wy**2 / w - sty * rate)
        tail_sigma = np.sqrt(tail_sse / (w * (tail_n - 2) / tail_n))
        se = np.where(stt > 0, np.maximum(jitter, tail_sigma) / np.sqrt(stt), np.inf)
    return _Tail(rate, se, tail_n)


# --- Verdicts ----------------------------------------------------------------------


def _growth(found: _Assessment, i: int, instance: int | None = None) -> Growth:
    return Growth(
        instance=i if instance is None else instance,
        since_s=int(found.trend.since_s[i]),
        rate_mb_per_day=float(found.trend.rate_mb_per_day[i]),
        growth_mb=float(found.trend.growth_mb[i]),
        confidence=float(found.trend.r2[i]),
        start_mb=float(found.trend.start_mb[i]),
    )


def _verdict(found: _Assessment, i: int, params: GrowthParams, instance: int) -> Verdict:
    rule = Rule(int(found.rule[i]))
    fit = _growth(found, i, instance) if found.trend.fitted[i] else None
    flagged = rule is Rule.GROWS
    return Verdict(
        instance=instance,
        flagged=flagged,
        rule=rule,
        reason=_reason(found, i, params),
        growth=fit if flagged else None,
        fitted=fit,
    )


def _reason(found: _Assessment, i: int, params: GrowthParams) -> str:
    """The rule that decided instance i, with its numbers."""
    rule = Rule(int(found.rule[i]))
    rate, growth = float(found.trend.rate_mb_per_day[i]), float(found.trend.growth_mb[i])
    if rule is Rule.SHORT:
        reason = f"observed {found.span_days[i]:.2f} days, under {params.min_span_days:g} days"
    elif rule is Rule.FEW_FLOORS and found.floors[i] >= MIN_FIT_FLOORS:
        reason = f"no day of floors left to grow in after the {WARMUP_S // 3600}-hour warm-up"
    elif rule is Rule.FEW_FLOORS:
        reason = f"{found.floors[i]} usable 6-hour floors after the warm-up, under {MIN_FIT_FLOORS}"
    elif rule is Rule.NO_RISE:
        need = _least_rise_mb(params)
        reason = (
            f"the last floors stand {found.rise_mb[i]:.1f} MiB above the lowest, under {need:g}"
        )
    elif rule is Rule.SLOW:
        reason = f"rises {rate:.1f} MiB/day, under {params.min_rate_mb_per_day:g}"
    elif rule is Rule.NOISE:
        reason = (
            f"grows {growth:.1f} MiB, under {MIN_GROWTH_NOISE:g} x the floors' noise "
            f"({found.trend.noise_mb[i]:.1f} MiB)"
        )
    elif rule is Rule.TAIL:
        reason = (
            f"not rising at the end: the last {found.trend.tail_floors[i]} floors rise "
            f"{found.trend.tail_rate_mb_per_day[i]:.1f} MiB/day against {rate:.1f} fitted"
        )
    elif rule is Rule.FIT:
        reason = f"not a clean trend: R2 {found.trend.r2[i]:.2f}, under {MIN_FIT_R2:g}"
    else:
        since = datetime.fromtimestamp(int(found.trend.since_s[i]), UTC).strftime("%Y-%m-%d %H:%M")
        reason = (
            f"grows {rate:.1f} MiB/day since {since} UTC, {growth:.0f} MiB in all "
            f"(confidence {found.trend.r2[i]:.2f})"
        )
    return reason
