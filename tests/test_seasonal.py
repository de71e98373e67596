"""The line with hour-of-day terms and its Newey-West standard error (utils.judge.seasonal)
against numpy's least squares with a dummy per hour, and against the formula written out
lag by lag. Fixed cases with answers known by hand first.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from utils.judge.seasonal import (
    BANDWIDTH_H,
    SEASONS,
    newey_west,
    seasonal_fit,
    student_t_cdf,
    student_t_quantile,
)

Values = npt.NDArray[np.float64]


def hours(days: float) -> tuple[Values, Values]:
    """Index 0 the latest hour; each hour's age in days."""
    count = round(days * SEASONS)
    index = np.arange(count, dtype=np.float64)
    return index, index / SEASONS


def test_a_clean_line_is_found_exactly_and_surely() -> None:
    _, age = hours(7)
    fit = seasonal_fit(5000 + 120 * age, age, 0.01)
    assert fit is not None
    assert fit.slope == pytest.approx(-120)
    assert fit.level == pytest.approx(5000)
    assert fit.p_falling == pytest.approx(0.0)


def test_a_daily_cycle_of_any_shape_cancels_exactly() -> None:
    index, age = hours(7)
    cycle = np.where(index % SEASONS == 3, -3000.0, 0.0) + 400 * np.sin(index / 4)
    cycle -= np.array([cycle[index % SEASONS == h].mean() for h in range(SEASONS)])[
        (index % SEASONS).astype(int)
    ]
    cycle = np.where(index % SEASONS == 3, -3000.0, 0.0) + 700 * ((index % 2) == 0)
    fit = seasonal_fit(5000 + 50 * age + cycle, age, 0.01)
    assert fit is not None and fit.slope == pytest.approx(-50)


def test_a_single_day_leaves_the_slope_undefined() -> None:
    _, age = hours(1)
    assert seasonal_fit(5000 + 120 * age, age, 0.01) is None


def test_student_t_against_its_closed_forms() -> None:
    assert student_t_cdf(0.0, 7) == 0.5
    assert student_t_cdf(1.0, 1) == pytest.approx(0.75)  # Cauchy: 1/2 + atan(1)/pi
    for t in (-3.0, -0.5, 0.2, 1.0, 4.0):
        assert student_t_cdf(t, 2) == pytest.approx(0.5 + t / (2 * math.sqrt(2 + t * t)))
    assert student_t_quantile(0.975, 1) == pytest.approx(math.tan(math.pi * 0.475))
    assert student_t_quantile(0.95, 10) == pytest.approx(1.812461, abs=1e-6)
    assert student_t_cdf(-math.inf, 3) == 0.0 and student_t_cdf(math.inf, 3) == 1.0


def plain_newey_west(scores: Values, bandwidth: int) -> float:
    n = scores.size
    total = 0.0
    for i in range(n):
        for j in range(n):
            lag = abs(i - j)
            if lag <= bandwidth:
                total += (1 - lag / (bandwidth + 1)) * scores[i] * scores[j]
    return total


@given(st.integers(0, 2**32 - 1), st.integers(2, 60))
def test_newey_west_matches_the_double_sum(seed: int, size: int) -> None:
    scores = np.random.default_rng(seed).normal(0, 1, size)
    assert newey_west(scores, BANDWIDTH_H) == pytest.approx(
        max(0.0, plain_newey_west(scores, BANDWIDTH_H)), rel=1e-9, abs=1e-9
    )


@given(st.integers(0, 2**32 - 1), st.integers(2, 9), st.sampled_from([0.0, 0.05, 0.3]))
def test_the_slope_matches_least_squares_with_a_dummy_per_hour(
    seed: int, days: int, missing: float
) -> None:
    """Without outliers (Gaussian noise, no hour past the clip), the slope is the one of
    least squares on [x, one dummy per hour of the day]."""
    rng = np.random.default_rng(seed)
    index, age = hours(days)
    values = 3000 - 40 * age + 100 * np.sin(index) + rng.normal(0, 5, index.size)
    values[rng.random(index.size) < missing] = np.nan
    fit = seasonal_fit(values, age, 0.01)
    present = np.isfinite(values)
    dummies = np.eye(SEASONS)[(index % SEASONS).astype(int)][present]
    design = np.column_stack([-age[present], dummies[:, dummies.any(axis=0)]])
    if fit is None or np.linalg.matrix_rank(design) < design.shape[1]:
        return
    error = values[present] - design @ np.linalg.lstsq(design, values[present], rcond=None)[0]
    sigma = 1.4826 * float(np.median(np.abs(error)))
    if np.any(np.abs(error) > 3.5 * sigma):  # near the clip, the fits may differ
        return
    expected = np.linalg.lstsq(design, values[present], rcond=None)[0][0]
    assert fit.slope == pytest.approx(expected, abs=1e-6)
