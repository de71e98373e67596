"""The seasonal Kendall test and the seasonal Theil-Sen slope with its confidence bounds, on
hourly values with the hour of the day as the season.

Hirsch, Slack and Smith (1982) built both for monthly water-quality data over years: the
test's statistic S counts, within each season, the pairs of values that rose against those
that fell; the slope is the median of those pairs' slopes. Any cycle whose period divides
a day (a daily backup, a garbage collector's 2-hour swing) is the same at both ends of such
a pair and cancels exactly. Hirsch and Slack (1984) let the seasons be correlated: the
variance of S is the sum of the covariances of the seasons' statistics, estimated from the
ranks of the data. Here the days play the years and the 24 hours of the day the seasons,
and adjacent hours are strongly correlated (a burst or a day's bigger cycle moves them
together), which the covariances absorb. The covariances are estimated from the values
less the fitted trend: estimated from the values themselves, a trend correlates every
season with every other and takes the test's power with it (a clean fall over three days
would never be significant). The slope's bounds follow Gilbert (1987, ch. 17) with that
variance.

numpy only.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

Values = npt.NDArray[np.float64]

SEASONS = 24  # hours in a day
# Day pairs at most: a window of 400 days holds 80,000 of them (a 24-column sign matrix of
# 15 MiB); a longer window is tested on its last 400 days.
MAX_TEST_DAYS = 400


class SeasonalTrend(NamedTuple):
    """A seasonal Sen slope with the seasonal Kendall test of it, in the values' units per day."""

    slope: float  # per day; negative when falling
    low: float  # the slope's lower bound (two-sided, at the confidence asked for)
    high: float  # ... and its upper bound
    z: float  # Kendall's S over its standard deviation, continuity-corrected: < 0 falling
    p_falling: float  # one-sided p-value of "no trend" against "falling" (Student's t)
    pairs: int  # pairs of hours a whole number of days apart


def by_day(hourly: Values) -> Values:
    """Hourly values (index 0 the latest hour) as a days x 24 matrix, day 0 the latest; the
    hours of an unfinished oldest day are NaN."""
    days = math.ceil(len(hourly) / SEASONS)
    padded = np.full(days * SEASONS, np.nan)
    padded[: len(hourly)] = hourly
    return padded.reshape(days, SEASONS)


def _signs(matrix: Values) -> Values:
    """sign(later - earlier) of every pair of days, per season (0 where either is NaN): a
    (pairs x 24) matrix. Day 0 is the latest, so row i minus row j, i < j, is a rise."""
    later, earlier = np.triu_indices(len(matrix), k=1)
    with np.errstate(invalid="ignore"):
        signs: Values = np.nan_to_num(np.sign(matrix[later] - matrix[earlier]))
    return signs


def _centred_ranks(matrix: Values) -> Values:
    """Each season's midranks over the days (ties share their mean rank) less their mean:
    0 where a value is NaN, as Hirsch and Slack give a missing value the mean rank."""
    ranks = np.empty_like(matrix)
    for season in range(matrix.shape[1]):
        column = matrix[:, season]
        present = ~np.isnan(column)
        _, inverse, counts = np.unique(column[present], return_inverse=True, return_counts=True)
        midranks = np.cumsum(counts) - (counts - 1) / 2
        ranks[present, season] = midranks[inverse] - (np.count_nonzero(present) + 1) / 2
        ranks[~present, season] = 0.0
    return ranks


def _tie_corrected_variance(column: Values) -> float:
    """Var(S) of one season with no serial correlation, less the correction for ties."""
    values = column[~np.isnan(column)]
    n = values.size
    _, counts = np.unique(values, return_counts=True)
    ties = float(np.sum(counts * (counts - 1) * (2 * counts + 5)))
    return (n * (n - 1) * (2 * n + 5) - ties) / 18


def kendall_variance(matrix: Values, detrended: Values) -> float:
    """Var(S) of the seasonal Kendall statistic with correlated seasons (Hirsch and Slack
    1984): the seasons' own variances (from the values, ties counted) plus their
    covariances, estimated from the ranks of the detrended values."""
    signs = _signs(detrended)
    kendall = signs.T @ signs  # K_gh: concordant minus discordant pairs of days
    ranks = _centred_ranks(detrended)
    # 4 sum(R_g R_h) - n (n + 1)^2 of complete data, with the ranks centred on their mean,
    # which holds for seasons with missing days too.
    covariance = (kendall + 4 * ranks.T @ ranks) / 3
    variances = np.array([_tie_corrected_variance(matrix[:, g]) for g in range(matrix.shape[1])])
    np.fill_diagonal(covariance, variances)
    return float(max(covariance.sum(), variances.sum() / matrix.shape[1]))


def pair_slopes(matrix: Values) -> Values:
    """The slope (per day) of every pair of hours a whole number of days apart, sorted."""
    later, earlier = np.triu_indices(len(matrix), k=1)
    with np.errstate(invalid="ignore"):
        slopes = (matrix[later] - matrix[earlier]) / (earlier - later)[:, None]
    return np.sort(slopes[np.isfinite(slopes)])


def seasonal_trend(matrix: Values, level: float, slope: float | None = None) -> SeasonalTrend:
    """The seasonal Sen slope of a days x 24 matrix (day 0 the latest), the Kendall test of
    it at a one-sided level, and its bounds at that level on each side. `slope`: the slope
    already known (from more pairs than the test takes), else the median here.

    The variance of S is estimated from the days themselves, a handful of them, and days
    next to each other are not quite independent (a wander carries over midnight): S over
    its estimated deviation is referred to Student's t with days - 2 degrees of freedom
    (days: the days' worth of hours with data) rather than to the normal, which on flat
    hosts called a week "falling" several times too often (docs/forecast.md)."""
    matrix = matrix[:MAX_TEST_DAYS]
    slopes = pair_slopes(matrix)
    if slope is None:
        slope = float(np.median(slopes))
    age_days = np.arange(len(matrix), dtype=np.float64)[:, None]
    # The value at each hour less the trend to day 0; rounded, so that the float error of a
    # clean line's detrended values (all equal) does not rank them at random.
    detrended = np.round(matrix + slope * age_days, 6)
    s = float(_signs(matrix).sum())
    variance = kendall_variance(matrix, detrended)
    sd = math.sqrt(variance) if variance > 0 else math.inf
    z = (s - math.copysign(1.0, s)) / sd if s else 0.0
    # Days' worth of hours with data: an outage of a day is a day less to go on.
    days = int(np.count_nonzero(np.isfinite(matrix))) // SEASONS
    freedom = max(1, days - 2)
    low, high = _bounds(slopes, student_t_quantile(1 - level, freedom) * sd)
    return SeasonalTrend(slope, low, high, z, student_t_cdf(z, freedom), int(slopes.size))


def _bounds(slopes: Values, spread: float) -> tuple[float, float]:
    """Gilbert's bounds: the slopes of rank (N - C) / 2 and (N + C) / 2 + 1 of N sorted,
    C the spread of S; interpolated between ranks, and the extremes past them."""
    n = slopes.size
    lower = (n - spread) / 2
    upper = (n + spread) / 2 + 1
    ranks = np.arange(1, n + 1, dtype=np.float64)
    low = float(np.interp(lower, ranks, slopes)) if lower >= 1 else -math.inf
    high = float(np.interp(upper, ranks, slopes)) if upper <= n else math.inf
    return low, high


def student_t_cdf(t: float, freedom: int) -> float:
    """P(T <= t) for Student's t with a whole number of degrees of freedom, in closed form
    (Abramowitz and Stegun 26.7.3 and 26.7.4)."""
    theta = math.atan(abs(t) / math.sqrt(freedom))
    cos, sin = math.cos(theta), math.sin(theta)
    odd = freedom % 2 == 1
    term = total = cos if odd else 1.0
    for k in range(3 if odd else 2, freedom - 1, 2):
        term *= cos * cos * (k - 1) / k
        total += term
    # P(|T| < t): the odd case has the angle itself, and no sum for one degree.
    odd_part = 2 / math.pi * (theta + (sin * total if freedom > 1 else 0.0))
    inside = odd_part if odd else sin * total
    tail = (1 - inside) / 2  # P(T <= -|t|)
    return tail if t <= 0 else 1 - tail


def student_t_quantile(p: float, freedom: int) -> float:
    """The t with P(T <= t) = p (0.5 < p < 1), by bisection on student_t_cdf."""
    low, high = 0.0, 1.0
    while student_t_cdf(high, freedom) < p:
        low, high = high, high * 2
    for _ in range(60):
        middle = (low + high) / 2
        low, high = (middle, high) if student_t_cdf(middle, freedom) < p else (low, middle)
    return (low + high) / 2
