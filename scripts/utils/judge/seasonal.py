"""A straight line through hourly values with a term for each hour of the day, and the
slope's standard error under errors correlated over a day (Newey and West 1987).

The hour-of-day terms take out the daily cycle whatever its shape: a nightly job's hour, a
garbage collector's 2-hour swing (its period divides a day), a backup's afternoon. What is
left is the trend plus a wander: a service's load carries MemAvailable up or down for hours,
and a day's level differs from the next. Those errors are correlated, so the textbook
standard error (which takes them as independent) understates the slope's uncertainty many
times over; Newey and West's estimator sums the errors' autocovariances out to a lag of
`BANDWIDTH_H` hours, with Bartlett's declining weights, which keeps it positive.

The slope over that standard error is referred to Student's t with a third of the days as
its degrees of freedom (`freedom`), not to the normal: over a week there are only a
handful of independent days to estimate a day-long correlation from, and a Newey-West
variance from so few is itself uncertain and low on average (Kiefer and Vogelsang 2005
give its fixed-bandwidth distribution, wider than the normal's). With days - 2 the test
called flat hosts falling several times more often than its level; docs/forecast.md has
the rates measured for each choice, and the power on falling hosts.

An hour whose value is far off the line (a one-off job, a burst that filled an hour) would
pull a least-squares line: an hour more than `CLIP_SIGMAS` robust deviations off the line
is left out, and the line fitted again, a few rounds.

numpy only.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

Values = npt.NDArray[np.float64]

SEASONS = 24  # hours in a day
# The errors are taken as correlated up to this many hours apart: a day and a half, so that
# a day's level carried over midnight into the next counts too.
BANDWIDTH_H = 36
# An hour's error beyond this many robust deviations (1.4826 times the median absolute
# error) leaves it out of the line: a Gaussian wander gets there once in 16,000 hours.
CLIP_SIGMAS = 4.0
# At most this many rounds of leaving out hours far off the line.
OUTLIER_ROUNDS = 4
# Student's t takes a degree of freedom for this many days of hours with values (see the
# module's docstring).
DAYS_PER_FREEDOM = 3


class SeasonalFit(NamedTuple):
    """A line with hour-of-day terms, in the values' units per day (negative: falling)."""

    slope: float
    se: float  # the slope's Newey-West standard error
    low: float  # the slope's lower bound (two-sided, at the level asked for on each side)
    high: float  # ... and its upper bound
    t: float  # slope / se
    p_falling: float  # one-sided p-value of "no trend" against "falling"
    level: float  # the line at age 0: the median of the hours' own lines there
    freedom: int  # Student's t degrees of freedom: days / DAYS_PER_FREEDOM
    hours: int  # hours with a value


def seasonal_fit(hourly: Values, age_days: Values, level: float) -> SeasonalFit | None:
    """The line through hourly values (index 0 the latest hour, NaN where none) at their
    ages in days, the season of index i being i mod 24; None when no hour of the day has
    been seen twice with the line's time between them."""
    robust = _robust_line(hourly, age_days)
    if robust is None:
        return None
    slope, error, present = robust
    season = _seasons(hourly.size)
    x = np.where(present, -age_days, 0.0)
    x_dev = _within_season(x, present, season)
    hours = int(np.count_nonzero(present))
    seasons_seen = int(np.unique(season[present]).size)
    sxx = float(np.sum(x_dev * x_dev))
    variance = newey_west(x_dev * error, BANDWIDTH_H) * _small_sample(hours, seasons_seen)
    se = math.sqrt(variance) / sxx
    freedom = max(1, hours // SEASONS // DAYS_PER_FREEDOM)
    spread = student_t_quantile(1 - level, freedom) * se
    t = slope / se if se > 0 else math.copysign(math.inf, slope) if slope else 0.0
    return SeasonalFit(
        slope=slope,
        se=se,
        low=slope - spread,
        high=slope + spread,
        t=t,
        p_falling=student_t_cdf(t, freedom),
        level=_level(np.where(present, hourly, 0.0), present, season, slope, x),
        freedom=freedom,
        hours=hours,
    )


def _robust_line(
    hourly: Values, age_days: Values
) -> tuple[float, Values, npt.NDArray[np.bool_]] | None:
    """The line's slope, its errors and the hours it was fitted on: hours far off the line
    (one-off jobs) are left out and the line fitted again, until none is left out (a first
    line tilted by a few big dips leaves smaller ones inside), at most OUTLIER_ROUNDS times."""
    present = np.isfinite(hourly) & np.isfinite(age_days)
    line = _line(hourly, age_days, present)
    for _ in range(OUTLIER_ROUNDS):
        if line is None:
            return None
        error = line[1]
        sigma = 1.4826 * float(np.median(np.abs(error[present])))
        outlier = present & (np.abs(error) > CLIP_SIGMAS * sigma)
        if sigma <= 0 or not outlier.any():
            break
        present = present & ~outlier
        line = _line(hourly, age_days, present)
    if line is None:
        return None
    return line[0], line[1], present


def _line(
    hourly: Values, age_days: Values, present: npt.NDArray[np.bool_]
) -> tuple[float, Values] | None:
    """The slope of the line with a level per hour of the day, and each hour's error (0
    where absent); None when the hours leave the slope undefined."""
    season = _seasons(hourly.size)
    x_dev = _within_season(np.where(present, -age_days, 0.0), present, season)
    sxx = float(np.sum(x_dev * x_dev))
    if not sxx > 1e-12:
        return None
    y_dev = _within_season(np.where(present, hourly, 0.0), present, season)
    slope = float(np.sum(x_dev * y_dev)) / sxx
    error: Values = np.where(present, y_dev - slope * x_dev, 0.0)
    return slope, error


def _seasons(hours: int) -> npt.NDArray[np.int64]:
    """The season of each hour counted back from the latest: its index mod 24."""
    return np.arange(hours) % SEASONS


def _within_season(
    values: Values, present: npt.NDArray[np.bool_], season: npt.NDArray[np.int64]
) -> Values:
    """Each present value less the mean of its season's present values; 0 where absent."""
    counts = np.bincount(season, weights=present.astype(np.float64), minlength=SEASONS)
    sums = np.bincount(season, weights=np.where(present, values, 0.0), minlength=SEASONS)
    means = np.divide(sums, counts, out=np.zeros(SEASONS), where=counts > 0)
    deviations: Values = np.where(present, values - means[season], 0.0)
    return deviations


def _level(
    y: Values,
    present: npt.NDArray[np.bool_],
    season: npt.NDArray[np.int64],
    slope: float,
    x: Values,
) -> float:
    """The line at x = 0: each season's mean of y - slope * x, and their median (a nightly
    job's hour does not pull it down)."""
    counts = np.bincount(season, weights=present.astype(np.float64), minlength=SEASONS)
    sums = np.bincount(season, weights=np.where(present, y - slope * x, 0.0), minlength=SEASONS)
    return float(np.median(sums[counts > 0] / counts[counts > 0]))


def _small_sample(hours: int, seasons: int) -> float:
    """The usual n / (n - k) for the k parameters fitted (a level per season and a slope)."""
    return hours / max(1, hours - seasons - 1)


def newey_west(scores: Values, bandwidth: int) -> float:
    """The long-run variance of the sum of `scores` (consecutive hours, 0 where absent):
    the autocovariances out to `bandwidth` lags with Bartlett's weights 1 - lag / (bandwidth + 1).
    """
    total = float(np.dot(scores, scores))
    for lag in range(1, min(bandwidth, scores.size - 1) + 1):
        weight = 1 - lag / (bandwidth + 1)
        total += 2 * weight * float(np.dot(scores[lag:], scores[:-lag]))
    return max(total, 0.0)


def student_t_cdf(t: float, freedom: int) -> float:
    """P(T <= t) for Student's t with a whole number of degrees of freedom, in closed form
    (Abramowitz and Stegun 26.7.3 and 26.7.4)."""
    if math.isinf(t):
        return 0.0 if t < 0 else 1.0
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
