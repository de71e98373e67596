"""The hinge fit of the leak finder: `floor = c + b * max(0, t - since)` for many instances at
once, with what its rules need: the noise, the R2 of the growing part, the slope of its
tail, and the slope's significance against a wander.

Weighted least squares for every candidate `since` at once: the sums the normal equations
need for each knot are suffix sums, so an instance costs O(floors), and all instances are
fitted together without a Python loop per instance. The knot of least squared error
gives the rate b and since when, unless a plain line (the knot at the first floor) fits
about as well: a knot is one more parameter, and it must pay for itself (Akaike's
criterion).

The wander. A service's memory follows its load up and down for hours or days: its
floors' residuals around the fit are serially correlated, and the residuals' RMS then
understates how far such a wander carries the floors over a week. `wander_z` fits a line
through all the floors again under an AR(1) model of its residuals (Prais and Winsten
1954; the lag-1 autocorrelation corrected for its small-sample bias, Kendall 1954), so
that the slope is judged against the wander it would take to fake it. The whole series,
not the hinge's growing part: a knot chosen where the wander turns upwards would make
any upswing look significant.

numpy only; every function takes and returns whole arrays.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

# The growing part holds at least 4 floors: a shorter rise is a step as far as anyone
# can tell.
MIN_LEAK_FLOORS = 4
# Akaike's price of a parameter, in units of log-likelihood: the hinge's knot.
KNOT_PENALTY = 2.0
# The tail: the last third of the growing part, at least 4 floors.
TAIL_SHARE = 1 / 3
TAIL_MIN_FLOORS = 4
# An AR(1) coefficient at this or above is a random walk as far as a few dozen floors can
# tell; past it the wander model is not trusted (its slope's error grows without bound).
MAX_AR1 = 0.9
# Fewer floors do not tell an AR(1) coefficient from noise: 6 days of 6-hour floors.
MIN_WANDER_FLOORS = 24
# A tail of this many floors and more has its own AR(1) coefficient estimated (2 days of
# 6-hour floors): a wander carries neighbouring floors together, so the tail's scatter
# around its line understates how far its slope can stray.
TAIL_WANDER_FLOORS = 8


class Segments(NamedTuple):
    """Rows sorted by group, cut into one segment per group."""

    start: IntArray  # each segment's first row
    end: IntArray  # ... and the row after its last
    of_row: IntArray  # each row's segment number


def segments(group: IntArray) -> Segments:
    """The segments of rows sorted by group."""
    starts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]]) if group.size else group
    ends = np.r_[starts[1:], group.size].astype(np.int64)
    segment = np.repeat(np.arange(starts.size, dtype=np.int64), np.diff(np.r_[starts, group.size]))
    return Segments(starts.astype(np.int64), ends, segment)


def first_per_segment(rows: IntArray, segment: IntArray) -> IntArray:
    """The first of the (sorted) rows in each segment; every segment must have one."""
    seg = segment[rows]
    return rows[np.r_[True, seg[1:] != seg[:-1]]]


def suffix(values: FloatArray, end_of_row: IntArray) -> FloatArray:
    """Each row's sum of values from that row to the end of its segment."""
    total = np.cumsum(values)
    return total[end_of_row - 1] - total + values


class Points(NamedTuple):
    """The floors to fit, one segment per instance, as weighted points."""

    t: FloatArray  # days since the instance's first sample
    w: FloatArray  # the bucket's fill
    y: FloatArray  # the floor, MiB
    seg: Segments
    instance: IntArray  # each segment's instance


class Fits(NamedTuple):
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
    wander_z: FloatArray  # the growth rate over its standard error under an AR(1) wander
    # the same with the AR(1) coefficient held at MAX_AR1, where the residuals wander like
    # a random walk (NaN elsewhere, and with too few floors)
    walk_z: FloatArray


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


def fit_hinges(points: Points, span_days: FloatArray, min_leak_days: FloatArray) -> Fits:
    """Weighted least squares of `y = c + b * max(0, t - knot)` for a knot at every row,
    in O(rows) for all segments together; the best knot of each segment, its tail and its
    slope's significance against a wander. `span_days` and `min_leak_days` are per
    segment: the instance's span, and the least time its growing part must cover."""
    t, w, seg = points.t, points.w, points.seg
    starts, ends, segment = seg
    end_of_row = ends[segment]
    # Centred per instance, so that the sums of squares stay small and their differences
    # keep their precision.
    y_mean = np.add.reduceat(w * points.y, starts) / np.add.reduceat(w, starts)
    y = points.y - y_mean[segment]
    sums = _suffix_sums(t, w, y, end_of_row)
    # A knot must leave the growth MIN_LEAK_FLOORS floors and min_leak_days.
    room = (end_of_row - np.arange(t.size) >= MIN_LEAK_FLOORS) & (
        span_days[segment] - t >= min_leak_days[segment]
    )
    knots = _knot_sums(t, sums, seg, room)
    hinge = _best_hinge(t, knots, seg)
    x = np.maximum(0.0, t - hinge.knot_days[segment])
    resid = y - hinge.c[segment] - hinge.b[segment] * x
    tail = _tail(sums, seg, hinge.row, _jitter(resid, seg), points)
    # The noise: the residuals' weighted RMS, on m - 3 degrees of freedom (the hinge's 3).
    m = (ends - starts).astype(np.float64)
    sw = knots.sw[hinge.row]
    return Fits(
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
        **_wander_fields(t, y, seg),
    )


def _wander_fields(t: FloatArray, y: FloatArray, seg: Segments) -> dict[str, FloatArray]:
    """wander_z and walk_z of each segment's points (all of them)."""
    z, rho, m = _wander(t, y, seg.start[seg.of_row], seg)
    walk = np.where((rho >= MAX_AR1) & (m >= MIN_WANDER_FLOORS), z, np.nan)
    return {
        "wander_z": np.where((rho >= MAX_AR1) | (m < MIN_WANDER_FLOORS), 0.0, z),
        "walk_z": walk,
    }


def _suffix_sums(t: FloatArray, w: FloatArray, y: FloatArray, end_of_row: IntArray) -> _Sums:
    """The weighted sums of every row to the end of its segment."""
    ws, wts, wtts = (suffix(v, end_of_row) for v in (w, w * t, w * t * t))
    wys, wtys, wyys = (suffix(v, end_of_row) for v in (w * y, w * t * y, w * y * y))
    return _Sums(ws, wts, wtts, wys, wtys, wyys)


def _knot_sums(t: FloatArray, sums: _Sums, seg: Segments, room: BoolArray) -> _Knots:
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


def _best_hinge(t: FloatArray, knots: _Knots, seg: Segments) -> _Hinge:
    """Each segment's knot of least error, unless a plain line fits about as well."""
    starts, ends, segment = seg
    sse = knots.sse
    # The least error within each instance; ties go to the earliest knot.
    least = np.minimum.reduceat(sse, starts)
    best = first_per_segment(np.flatnonzero(sse == least[segment]), segment)
    # A knot after the first floor is one more parameter: worth it only if it pays for
    # itself (Akaike), else a leak from the start shows a later `since` and a rate fitted
    # on fewer floors whenever noise favours it.
    m = (ends - starts).astype(np.float64)
    best = np.where(sse[starts] <= sse[best] * np.exp(KNOT_PENALTY / m), starts, best)
    b = knots.slope[best]
    c = (knots.sy[best] - b * knots.sx[best]) / knots.sw[best]
    return _Hinge(row=best, knot_days=t[best], b=b, c=c, sse=sse[best])


def _jitter(resid: FloatArray, seg: Segments) -> FloatArray:
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


def _tail(
    sums: _Sums, seg: Segments, knot_row: IntArray, jitter: FloatArray, points: Points
) -> _Tail:
    """The last third of the growing part, at least TAIL_MIN_FLOORS floors: its slope and
    the slope's standard error, widened by the tail's own AR(1) wander."""
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
    return _Tail(rate, se * _tail_wander(points, j, tail_n), tail_n)


def _tail_wander(points: Points, first_row: IntArray, tail_n: IntArray) -> FloatArray:
    """How much an AR(1) wander of the tail's residuals around its own line widens its
    slope's standard error: sqrt((1 + r) / (1 - r)), the square root of an AR(1) series'
    long-run variance over its variance, with r capped at MAX_AR1; 1 for a tail under
    TAIL_WANDER_FLOORS floors. A step's plateau leaves white residuals (r near 0): the tail
    still tells it from a leak; a wander that dips at the end does not count as a plateau."""
    _, rho, _ = _wander(points.t, points.y, first_row, points.seg)
    r = np.where(tail_n >= TAIL_WANDER_FLOORS, np.minimum(rho, MAX_AR1), 0.0)
    widen: FloatArray = np.sqrt((1 + r) / (1 - r))
    return widen


def wander_z(x: FloatArray, y: FloatArray, knot_row: IntArray, seg: Segments) -> FloatArray:
    """The slope of each segment's points from `knot_row` on over its standard error, with
    the residuals modelled as AR(1): Prais-Winsten's transform of `y = c + b x` with the
    lag-1 autocorrelation of the residuals of the plain fit. 0 where there are too few
    points, or where the residuals wander like a random walk (AR(1) >= MAX_AR1).
    Unweighted: a partial bucket's floor counts as one (the hinge has discounted it)."""
    z, rho, m = _wander(x, y, knot_row, seg)
    z[(rho >= MAX_AR1) | (m < MIN_WANDER_FLOORS)] = 0.0
    return z


def _wander(
    x: FloatArray, y: FloatArray, knot_row: IntArray, seg: Segments
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Per segment: the Prais-Winsten z with the AR(1) coefficient capped at MAX_AR1, that
    coefficient, and the points it was fitted on."""
    segment = seg.of_row
    inside = np.arange(x.size) >= knot_row[segment]
    part = segments(segment[inside])
    owner = segment[inside][part.start]  # each growing part's segment
    gx, gy = x[inside], y[inside]
    m = (part.end - part.start).astype(np.float64)
    resid = _line_residuals(gx, gy, part)
    follows = np.r_[False, part.of_row[1:] == part.of_row[:-1]]
    lagged = np.r_[0.0, resid[:-1]] * follows
    with np.errstate(divide="ignore", invalid="ignore"):
        rho = np.add.reduceat(resid * lagged, part.start) / np.add.reduceat(
            resid * resid, part.start
        )
    rho = np.clip(np.nan_to_num(rho) + (1 + 3 * np.nan_to_num(rho)) / m, 0.0, 1.0)
    z, rho_of, m_of = (np.zeros(seg.start.size) for _ in range(3))
    z[owner] = _prais_winsten_z(gx, gy, rho, part, follows)
    rho_of[owner], m_of[owner] = rho, m
    return z, rho_of, m_of


def _line_residuals(x: FloatArray, y: FloatArray, seg: Segments) -> FloatArray:
    """Each segment's residuals around its own least-squares line."""
    start, of_row = seg.start, seg.of_row
    n = (seg.end - start).astype(np.float64)
    mx = np.add.reduceat(x, start) / n
    my = np.add.reduceat(y, start) / n
    dx, dy = x - mx[of_row], y - my[of_row]
    with np.errstate(divide="ignore", invalid="ignore"):
        slope = np.add.reduceat(dx * dy, start) / np.add.reduceat(dx * dx, start)
    residuals: FloatArray = dy - np.nan_to_num(slope)[of_row] * dx
    return residuals


def _prais_winsten_z(
    x: FloatArray, y: FloatArray, rho: FloatArray, seg: Segments, follows: BoolArray
) -> FloatArray:
    """The slope over its standard error of `y = c + b x` after Prais and Winsten's
    transform by each segment's AR(1) coefficient rho (rows of a segment in order)."""
    r = np.minimum(rho, MAX_AR1)[seg.of_row]
    first = np.sqrt(1 - r * r)
    prev_x, prev_y = np.r_[0.0, x[:-1]], np.r_[0.0, y[:-1]]
    # The first row of a segment is scaled; the others are differenced with the row before.
    one = np.where(follows, 1 - r, first)
    tx = np.where(follows, x - r * prev_x, first * x)
    ty = np.where(follows, y - r * prev_y, first * y)
    start = seg.start
    s11, s1x, sxx = (np.add.reduceat(v, start) for v in (one * one, one * tx, tx * tx))
    s1y, sxy, syy = (np.add.reduceat(v, start) for v in (one * ty, tx * ty, ty * ty))
    det = s11 * sxx - s1x * s1x
    m = (seg.end - start).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        b = (s11 * sxy - s1x * s1y) / det
        c = (sxx * s1y - s1x * sxy) / det
        sse = syy - 2 * b * sxy - 2 * c * s1y + b * b * sxx + 2 * b * c * s1x + c * c * s11
        se = np.sqrt(np.maximum(sse, 0.0) / (m - 2) * s11 / det)
        z = np.where((det > 0) & (se > 0), b / se, 0.0)
    return np.nan_to_num(z)
