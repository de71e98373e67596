"""The hinge fit (utils.judge.hinge) against a plain, obviously right one: for each instance,
a weighted least-squares line through `max(0, t - knot)` for every candidate knot in turn
(numpy.linalg.lstsq), the knot of least error chosen by the same rules, and the tail and
the wander's z worked out from their definitions, one instance at a time.

The vectorised fit works all instances at once from suffix sums of centred values; the
reference knows nothing of that. Fixed cases with answers known by hand come first.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from utils.judge.hinge import (
    KNOT_PENALTY,
    MAX_AR1,
    MIN_LEAK_FLOORS,
    MIN_WANDER_FLOORS,
    TAIL_MIN_FLOORS,
    TAIL_WANDER_FLOORS,
    Fits,
    Points,
    fit_hinges,
    segments,
)

FloatArray = npt.NDArray[np.float64]


class Instance(NamedTuple):
    t: FloatArray  # days since the first sample, increasing
    w: FloatArray  # weights (a bucket's fill)
    y: FloatArray  # floors, MiB
    span_days: float
    min_leak_days: float


class Reference(NamedTuple):
    ok: bool
    knot_row: int
    knot_days: float
    rate: float
    start_mb: float
    growth_mb: float
    noise_sq: float  # noise_mb squared: compared squared, as the fit's sse can round to 0
    r2: float
    tail_rate: float
    tail_se: float
    tail_floors: int
    decisive: bool  # no other knot comes within rounding of the chosen one


def weighted_line(x: FloatArray, y: FloatArray, w: FloatArray) -> tuple[float, float, float]:
    """Intercept, slope and weighted squared error of `y = c + b x`, by lstsq."""
    root = np.sqrt(w)
    design = np.column_stack([np.ones_like(x), x]) * root[:, None]
    (c, b), *_ = np.linalg.lstsq(design, y * root, rcond=None)
    sse = float(np.sum(w * (y - c - b * x) ** 2))
    return float(c), float(b), sse


def knot_errors(one: Instance) -> FloatArray:
    """The weighted squared error of the hinge with its knot at each floor (inf: no knot
    there: too few floors or too little time after it, or no spread in x)."""
    t, w, y = one.t, one.w, one.y
    sse = np.full(t.size, np.inf)
    for k in range(t.size):
        if t.size - k < MIN_LEAK_FLOORS or one.span_days - t[k] < one.min_leak_days:
            continue
        x = np.maximum(0.0, t - t[k])
        if np.sum(w * (x - np.average(x, weights=w)) ** 2) <= 1e-12:
            continue
        sse[k] = weighted_line(x, y, w)[2]
    return sse


def chosen_knot(sse: FloatArray) -> tuple[int, bool]:
    """The knot of least error (the earliest of equals), unless the line through all the
    floors is within Akaike's price of it; and whether that choice is clear of rounding."""
    m = sse.size
    best = int(np.argmin(sse))
    price = math.exp(KNOT_PENALTY / m)
    line_wins = sse[0] <= sse[best] * price
    finite = np.sort(sse[np.isfinite(sse)])
    scale = 1e-7 * (1.0 + finite[0])
    clear = finite.size == 1 or finite[1] - finite[0] > scale
    if np.isfinite(sse[0]):
        clear = clear and abs(sse[0] - sse[best] * price) > scale
    return (0 if line_wins else best), bool(clear)


def reference_fit(one: Instance) -> Reference:
    t, w, y = one.t, one.w, one.y
    sse = knot_errors(one)
    if not np.isfinite(sse).any():
        return Reference(False, -1, *(math.nan,) * 8, 0, True)
    k, clear = chosen_knot(sse)
    x = np.maximum(0.0, t - t[k])
    c, b, error = weighted_line(x, y, w)
    m = t.size
    grow = slice(k, None)
    fitted = c + b * x
    sst = float(np.sum(w[grow] * (y[grow] - np.average(y[grow], weights=w[grow])) ** 2))
    sse_grow = float(np.sum(w[grow] * (y[grow] - fitted[grow]) ** 2))
    r2 = min(1.0, max(0.0, 1 - sse_grow / sst)) if sst > 0 else 0.0
    # The jitter: the median step between neighbouring residuals, as a standard deviation.
    jitter = float(np.median(np.abs(np.diff(y - fitted)))) / (0.6745 * math.sqrt(2))
    tail_n = min(m - k, max(TAIL_MIN_FLOORS, math.ceil((m - k) / 3)))
    tail = slice(m - tail_n, None)
    _, tail_rate, tail_sse = weighted_line(t[tail], y[tail], w[tail])
    stt = float(np.sum(w[tail] * (t[tail] - np.average(t[tail], weights=w[tail])) ** 2))
    tail_sigma = math.sqrt(tail_sse / (np.sum(w[tail]) * (tail_n - 2) / tail_n))
    # The tail's own AR(1) wander widens its slope's error: sqrt((1 + r) / (1 - r)).
    tail_rho = min(reference_wander_z(t[tail], y[tail])[1], MAX_AR1)
    widen = math.sqrt((1 + tail_rho) / (1 - tail_rho)) if tail_n >= TAIL_WANDER_FLOORS else 1.0
    return Reference(
        ok=True,
        knot_row=k,
        knot_days=float(t[k]),
        rate=b,
        start_mb=c,
        growth_mb=b * (one.span_days - t[k]),
        noise_sq=error / (np.sum(w) * (m - 3) / m),
        r2=r2,
        tail_rate=tail_rate,
        tail_se=widen * max(jitter, tail_sigma) / math.sqrt(stt),
        tail_floors=tail_n,
        decisive=clear,
    )


def reference_wander_z(t: FloatArray, y: FloatArray) -> tuple[float, float]:
    """The slope over its standard error after Prais and Winsten's transform, by lstsq; and
    the AR(1) coefficient it used (0 for the z where the rule gives up on the wander)."""
    m = t.size
    design = np.column_stack([np.ones(m), t])
    coef, *_ = np.linalg.lstsq(design, y, rcond=None)
    resid = y - design @ coef
    denominator = float(np.sum(resid**2))
    rho = float(np.sum(resid[1:] * resid[:-1])) / denominator if denominator > 0 else 0.0
    # Kendall's small-sample correction of the lag-1 autocorrelation.
    rho = min(1.0, max(0.0, rho + (1 + 3 * rho) / m))
    if rho >= MAX_AR1 or m < MIN_WANDER_FLOORS:
        return 0.0, rho
    first = math.sqrt(1 - rho * rho)
    rows = [[first, first * t[0], first * y[0]]]
    rows += [[1 - rho, t[i] - rho * t[i - 1], y[i] - rho * y[i - 1]] for i in range(1, m)]
    transformed = np.array(rows)
    (c, b), *_ = np.linalg.lstsq(transformed[:, :2], transformed[:, 2], rcond=None)
    sse = float(np.sum((transformed[:, 2] - c * transformed[:, 0] - b * transformed[:, 1]) ** 2))
    covariance = np.linalg.inv(transformed[:, :2].T @ transformed[:, :2])
    se = math.sqrt(sse / (m - 2) * covariance[1, 1])
    return (b / se if se > 0 else 0.0), rho


def fit_all(instances: list[Instance]) -> Fits:
    """The vectorised fit of all the instances at once."""
    sizes = [one.t.size for one in instances]
    group = np.repeat(np.arange(len(instances), dtype=np.int64), sizes)
    points = Points(
        t=np.concatenate([one.t for one in instances]),
        w=np.concatenate([one.w for one in instances]),
        y=np.concatenate([one.y for one in instances]),
        seg=segments(group),
        instance=np.arange(len(instances), dtype=np.int64),
    )
    return fit_hinges(
        points,
        np.array([one.span_days for one in instances]),
        np.array([one.min_leak_days for one in instances]),
    )


def close(got: float, want: float, scale: float = 1.0) -> bool:
    return math.isclose(got, want, rel_tol=1e-6, abs_tol=1e-6 * scale)


# --- Answers known by hand ---------------------------------------------------------------


def one_instance(y: list[float], t: list[float] | None = None) -> Instance:
    times = np.arange(len(y), dtype=np.float64) if t is None else np.array(t)
    return Instance(times, np.ones(len(y)), np.array(y, dtype=np.float64), times[-1], 0.0)


def test_a_clean_hinge_is_found_where_it_bends() -> None:
    # Flat at 100 MiB for two days, then 10 MiB a day.
    one = one_instance([100, 100, 100, 110, 120, 130, 140, 150, 160, 170])
    fit = fit_all([one])
    assert fit.ok[0] and fit.knot_days[0] == pytest.approx(2.0)
    assert fit.rate[0] == pytest.approx(10.0) and fit.start_mb[0] == pytest.approx(100.0)
    assert fit.growth_mb[0] == pytest.approx(70.0) and fit.noise_mb[0] == pytest.approx(0, abs=1e-5)
    assert fit.r2[0] == pytest.approx(1.0)
    assert fit.tail_rate[0] == pytest.approx(10.0) and fit.tail_floors[0] == 4


def test_a_plain_line_keeps_its_knot_at_the_first_floor() -> None:
    fit = fit_all([one_instance([5 + 3 * day for day in range(8)])])
    assert fit.knot_days[0] == 0.0 and fit.rate[0] == pytest.approx(3.0)
    assert fit.start_mb[0] == pytest.approx(5.0) and fit.growth_mb[0] == pytest.approx(21.0)


def test_a_knot_must_pay_for_itself() -> None:
    # A line with a first floor a little high: a knot at the second floor fits better, but
    # not by Akaike's price (e**(2/m) of the error), so the line through all floors stays.
    line = [0.54] + [i + (0.1 if i % 2 else -0.1) for i in range(1, 12)]
    sse = knot_errors(one_instance(line))
    assert np.argmin(sse) == 1 and sse[0] <= sse[1] * math.exp(KNOT_PENALTY / len(line))
    assert fit_all([one_instance(line)]).knot_days[0] == 0.0
    # A first floor higher still: the knot pays for itself.
    bent = [0.58, *line[1:]]
    sse = knot_errors(one_instance(bent))
    assert sse[0] > sse[1] * math.exp(KNOT_PENALTY / len(bent))
    assert fit_all([one_instance(bent)]).knot_days[0] == 1.0


def test_too_few_floors_or_too_little_time_leave_no_knot() -> None:
    short = one_instance([1.0, 2.0, 3.0])  # under MIN_LEAK_FLOORS floors
    late = one_instance([1.0, 2.0, 3.0, 4.0, 5.0])._replace(min_leak_days=10.0)
    fit = fit_all([short, one_instance([1.0, 1.0, 2.0, 3.0, 4.0]), late])
    assert fit.ok.tolist() == [False, True, False]


def test_the_wander_is_not_judged_on_few_floors_or_a_random_walk() -> None:
    rng = np.random.default_rng(7)
    few = one_instance(list(np.arange(10.0) + rng.normal(0, 1, 10)))
    walk = one_instance(list(np.cumsum(rng.normal(0, 5, 60))))
    assert reference_wander_z(walk.t, walk.y)[1] >= MAX_AR1
    fit = fit_all([few, walk])
    assert fit.wander_z.tolist() == [0.0, 0.0]
    # The random walk's slope is still weighed, at AR(1) = MAX_AR1: what the plain rule
    # asks of it (utils.judge.growth.WALK_Z); the few floors' is not.
    assert np.isnan(fit.walk_z[0]) and np.isfinite(fit.walk_z[1])
    rising = one_instance(list(np.asarray(walk.y) + 10.0 * np.arange(60.0)))  # same residuals
    steep, flat = fit_all([rising, walk]).walk_z
    assert steep > 2.0 and abs(flat) < steep


def test_white_noise_around_a_line_has_the_ols_z() -> None:
    # Alternating residuals: their AR(1) estimate is negative, clipped to 0, so the
    # transform is the identity and z is the plain least-squares t statistic.
    t = np.arange(30.0)
    y = 2.0 * t + np.where(np.arange(30) % 2 == 0, 1.0, -1.0)
    z, rho = reference_wander_z(t, y)
    assert rho == 0.0
    design = np.column_stack([np.ones(30), t])
    coef, *_ = np.linalg.lstsq(design, y, rcond=None)
    sse = float(np.sum((y - design @ coef) ** 2))
    se = math.sqrt(sse / 28 / float(np.sum((t - t.mean()) ** 2)))
    assert z == pytest.approx(coef[1] / se)
    assert fit_all([one_instance(list(y))]).wander_z[0] == pytest.approx(z)


# --- The vectorised fit against the reference ----------------------------------------------


@st.composite
def instances(draw: st.DrawFn) -> Instance:
    """Floors of one instance: a hinge of random place and rate under noise, at uneven
    times, with partly filled buckets."""
    n = draw(st.integers(MIN_LEAK_FLOORS, 60))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    t = np.cumsum(np.r_[0.0, rng.uniform(0.05, 1.0, n - 1)])
    knot = draw(st.floats(-1.0, 1.0)) * float(t[-1]) + 0.5 * float(t[-1])
    rate = draw(st.sampled_from([0.0, 0.5, 5.0, 50.0, -20.0]))
    noise = draw(st.sampled_from([0.5, 3.0, 20.0]))
    base = draw(st.floats(50.0, 5000.0))
    walk = draw(st.booleans())  # serially correlated noise, as a service's load makes
    jitter = np.cumsum(rng.normal(0, noise, n)) if walk else rng.normal(0, noise, n)
    y = np.round(base + rate * np.maximum(0.0, t - knot) + jitter, 3)
    w = rng.choice([0.5, 0.75, 1.0], n, p=[0.1, 0.1, 0.8])
    span = float(t[-1]) + draw(st.floats(0.0, 0.5))
    return Instance(t, w, y, span, draw(st.sampled_from([0.0, 0.5, 2.0])))


@given(st.lists(instances(), min_size=1, max_size=5))
def test_the_fit_matches_a_least_squares_fit_per_knot(group: list[Instance]) -> None:
    fit = fit_all(group)
    for i, one in enumerate(group):
        want = reference_fit(one)
        assert bool(fit.ok[i]) == want.ok
        if not want.ok:
            continue
        if not want.decisive:
            # Two knots within rounding of each other: the fit's must be one of the best.
            row = int(np.searchsorted(one.t, fit.knot_days[i]))
            sse = knot_errors(one)
            assert sse[row] <= sse.min() * math.exp(KNOT_PENALTY / one.t.size) * (1 + 1e-6)
            continue
        size = float(np.ptp(one.y)) + 1.0
        assert fit.knot_days[i] == want.knot_days
        assert close(fit.rate[i], want.rate, size)
        assert close(fit.start_mb[i], want.start_mb, size)
        assert close(fit.growth_mb[i], want.growth_mb, size)
        assert close(fit.noise_mb[i] ** 2, want.noise_sq, size**2)
        assert close(fit.r2[i], want.r2, 1e-3)
        assert int(fit.tail_floors[i]) == want.tail_floors
        assert close(fit.tail_rate[i], want.tail_rate, size)
        assert close(fit.tail_se[i], want.tail_se, size)


@given(st.lists(instances(), min_size=1, max_size=5))
def test_the_wander_z_matches_prais_winsten_by_lstsq(group: list[Instance]) -> None:
    fit = fit_all(group)
    for i, one in enumerate(group):
        z, rho = reference_wander_z(one.t, one.y)
        if abs(rho - MAX_AR1) < 1e-9:
            continue  # on the edge of the rule: rounding decides
        assert close(fit.wander_z[i], z, 1e-3), (fit.wander_z[i], z, rho)
