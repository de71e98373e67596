"""The seasonal Kendall test and Sen slope (utils.judge.seasonal) against plain O(n^2) loops
over the pairs of days within each hour: Kendall's S as the count of rises less falls, the
slope as the median of the pairs' slopes, and Hirsch and Slack's variance of S from its
definition. Fixed cases with answers known by hand first.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from utils.judge import seasonal
from utils.judge.seasonal import (
    SEASONS,
    by_day,
    kendall_variance,
    pair_slopes,
    seasonal_trend,
    student_t_cdf,
    student_t_quantile,
)

Values = npt.NDArray[np.float64]


def plain_pairs(matrix: Values) -> list[tuple[int, int, int]]:
    """(season, later day, earlier day) of every pair of days with a value in that season;
    day 0 is the latest."""
    days = len(matrix)
    return [
        (g, i, j)
        for g in range(matrix.shape[1])
        for i in range(days)
        for j in range(i + 1, days)
        if not (math.isnan(matrix[i, g]) or math.isnan(matrix[j, g]))
    ]


def plain_s(matrix: Values) -> int:
    """Kendall's seasonal S: within each season, the pairs that rose less those that fell."""
    s = 0
    for g, i, j in plain_pairs(matrix):
        s += sign(float(matrix[i, g] - matrix[j, g]))
    return s


def plain_slopes(matrix: Values) -> list[float]:
    return sorted((matrix[i, g] - matrix[j, g]) / (j - i) for g, i, j in plain_pairs(matrix))


def plain_sen_slope(matrix: Values) -> float:
    slopes = plain_slopes(matrix)
    middle = len(slopes) // 2
    if len(slopes) % 2:
        return slopes[middle]
    return (slopes[middle - 1] + slopes[middle]) / 2


def sign(value: float) -> int:
    return int(value > 0) - int(value < 0)


def centred_midranks(column: Values) -> list[float]:
    """Each value's midrank among the present ones (1 + the values below it + half the
    others equal to it) less the mean rank; 0 for a missing value."""
    present = [float(v) for v in column if not math.isnan(v)]
    mean = (len(present) + 1) / 2
    return [
        (
            0.0
            if math.isnan(v)
            else 1 + sum(u < v for u in present) + (sum(u == v for u in present) - 1) / 2 - mean
        )
        for v in column
    ]


def plain_variance(matrix: Values, detrended: Values) -> float:
    """Var(S) with correlated seasons (Hirsch and Slack 1984), term by term: each season's
    variance with its ties, and each pair of seasons' covariance from the concordance of
    their detrended values and the products of their ranks."""
    days, seasons = matrix.shape
    total = 0.0
    own = []
    for g in range(seasons):
        values = [float(v) for v in matrix[:, g] if not math.isnan(v)]
        n = len(values)
        ties = sum(c * (c - 1) * (2 * c + 5) for c in (values.count(v) for v in set(values)))
        own.append((n * (n - 1) * (2 * n + 5) - ties) / 18)
    ranks = [centred_midranks(detrended[:, g]) for g in range(seasons)]
    for g in range(seasons):
        for h in range(seasons):
            if g == h:
                total += own[g]
                continue
            k = 0
            for i in range(days):
                for j in range(i + 1, days):
                    rise_g = detrended[i, g] - detrended[j, g]
                    rise_h = detrended[i, h] - detrended[j, h]
                    if not (math.isnan(rise_g) or math.isnan(rise_h)):
                        k += sign(float(rise_g)) * sign(float(rise_h))
            products = sum(a * b for a, b in zip(ranks[g], ranks[h], strict=True))
            total += (k + 4 * products) / 3
    return float(max(total, sum(own) / seasons))


# --- Answers known by hand ---------------------------------------------------------------


def line(days: int, per_day: float, cycle: float = 0.0) -> Values:
    """A days x 24 matrix (day 0 the latest) of a line changing per_day, plus a daily cycle."""
    age = np.arange(days, dtype=np.float64)[:, None]
    hour = np.arange(SEASONS, dtype=np.float64)[None, :]
    return 1000.0 - per_day * age + cycle * np.sin(2 * np.pi * hour / SEASONS)


def test_a_clean_fall_has_every_pair_falling() -> None:
    trend = seasonal_trend(line(5, -2.0), 0.05)
    assert trend.slope == -2.0 and trend.low == -2.0 and trend.high == -2.0
    assert trend.pairs == 10 * SEASONS
    assert float(seasonal._signs(line(5, -2.0)).sum()) == -240 == plain_s(line(5, -2.0))
    assert trend.z < 0 and trend.p_falling < 0.05


def test_a_daily_cycle_cancels_exactly() -> None:
    assert seasonal_trend(line(6, 3.0, cycle=500.0), 0.05).slope == pytest.approx(3.0)
    assert pair_slopes(line(6, 3.0, cycle=500.0)) == pytest.approx(np.full(15 * SEASONS, 3.0))


def test_flat_values_have_no_trend() -> None:
    trend = seasonal_trend(np.full((4, SEASONS), 7.0), 0.05)
    assert (trend.slope, trend.z, trend.p_falling) == (0.0, 0.0, 0.5)


def test_the_hours_of_an_unfinished_oldest_day_are_left_out() -> None:
    hourly = np.arange(3 * SEASONS + 5, dtype=np.float64)  # index 0 the latest hour
    matrix = by_day(hourly)
    assert matrix.shape == (4, SEASONS) and np.isnan(matrix[3, 5:]).all()
    assert matrix[3, :5].tolist() == [72.0, 73.0, 74.0, 75.0, 76.0]
    # Each hour's value rises one a day towards the past: a fall of 24 a day.
    assert pair_slopes(matrix).tolist() == [-24.0] * (3 * SEASONS + 3 * 5)


def test_student_t_against_its_closed_forms() -> None:
    assert student_t_cdf(0.0, 7) == 0.5
    assert student_t_cdf(1.0, 1) == pytest.approx(0.75)  # Cauchy: 1/2 + atan(1)/pi
    for t in (-3.0, -0.5, 0.2, 1.0, 4.0):
        assert student_t_cdf(t, 2) == pytest.approx(0.5 + t / (2 * math.sqrt(2 + t * t)))
    assert student_t_quantile(0.975, 1) == pytest.approx(math.tan(math.pi * 0.475))
    assert student_t_quantile(0.95, 10) == pytest.approx(1.812461, abs=1e-6)


# --- The vectorised test against the plain loops -------------------------------------------


@st.composite
def matrices(draw: st.DrawFn) -> Values:
    """Days x 24 of hourly values: a trend, a daily cycle, noise rounded to make ties, and
    hours missing here and there (an outage, an unfinished oldest day)."""
    days = draw(st.integers(2, 9))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    per_day = draw(st.sampled_from([0.0, -0.5, -5.0, 3.0]))
    noise = draw(st.sampled_from([0.0, 0.2, 1.0, 10.0]))
    matrix = line(days, per_day, cycle=draw(st.sampled_from([0.0, 40.0])))
    matrix = np.round(matrix + rng.normal(0.0, noise, matrix.shape), 1)
    missing = rng.random(matrix.shape) < draw(st.sampled_from([0.0, 0.05, 0.3]))
    matrix[missing] = np.nan
    return matrix


@given(matrices())
def test_s_and_the_slopes_match_the_plain_loops(matrix: Values) -> None:
    assert float(seasonal._signs(matrix).sum()) == plain_s(matrix)
    assert pair_slopes(matrix).tolist() == plain_slopes(matrix)


@given(matrices(), st.sampled_from([0.01, 0.05, 0.2]))
def test_the_seasonal_trend_matches_the_plain_one(matrix: Values, level: float) -> None:
    assume(plain_pairs(matrix))
    trend = seasonal_trend(matrix, level)
    assert trend.slope == pytest.approx(plain_sen_slope(matrix))
    assert trend.pairs == len(plain_pairs(matrix))
    assert trend.low <= trend.slope <= trend.high
    s = plain_s(matrix)
    age = np.arange(len(matrix), dtype=np.float64)[:, None]
    detrended = np.round(matrix + trend.slope * age, 6)
    variance = plain_variance(matrix, detrended)
    assert kendall_variance(matrix, detrended) == pytest.approx(variance)
    z = (s - sign(s)) / math.sqrt(variance) if s and variance > 0 else 0.0
    assert trend.z == pytest.approx(z)
