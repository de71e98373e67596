"""The last level shift in hourly values (utils.judge.level_shift): a step is found at its
hour through the daily cycle, a nightly job, a collector's swing and a wander; a trend, a
cycle or a burst alone is no step, at the ends of the series too; any series is judged
without a traceback."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from utils.judge.level_shift import MIN_HOURS, last_shift
from utils.judge.seasonal import SEASONS

Values = npt.NDArray[np.float64]


def hourly(days: int, seed: int, falls: float = 0.0, wander: float = 100.0) -> Values:
    """Hourly medians, index 0 the latest: a daily sine of 800 MiB, a nightly hour 3 GiB
    lower, a 2-hour swing of 700 MiB, a wander (AR(1) over 6 hours) and a fall per day."""
    rng = np.random.default_rng(seed)
    index = np.arange(days * SEASONS, dtype=np.float64)
    values = 20_000 + falls * index / SEASONS + 800 * np.sin(2 * np.pi * index / SEASONS)
    values -= 3072 * (index % SEASONS == 5) + 700 * (index % 2 == 0)
    keep = float(np.exp(-1 / 6))
    noise = rng.normal(0, wander * np.sqrt(1 - keep * keep), index.size)
    for k in range(1, index.size):
        noise[k] += keep * noise[k - 1]
    result: Values = values + noise
    return result


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("hours_ago", [10, 40, 100, 200])
@pytest.mark.parametrize("size", [-2867.0, 2048.0])
def test_a_step_is_found_at_its_hour(seed: int, hours_ago: int, size: float) -> None:
    values = hourly(14, seed, falls=200.0)
    values[:hours_ago] += size  # the later hours stand `size` higher
    shift = last_shift(values)
    assert shift is not None
    assert hours_ago - 2 <= shift.hour <= hours_ago
    assert shift.size_mb == pytest.approx(size, abs=400)


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("falls", [0.0, 200.0, 1500.0])
def test_cycles_a_wander_and_a_trend_are_no_step(seed: int, falls: float) -> None:
    assert last_shift(hourly(14, seed, falls=falls)) is None


def test_a_clean_line_is_no_step_even_where_the_later_side_is_short() -> None:
    index = np.arange(3 * SEASONS, dtype=np.float64)
    assert last_shift(5000 + 1500 * index / SEASONS) is None
    assert last_shift(np.full(3 * SEASONS, 5000.0)) is None


def test_of_two_steps_the_later_is_found() -> None:
    values = hourly(14, 7)
    values[:150] -= 2048  # busy from 150 hours ago ...
    values[:60] += 2048  # ... until 60 hours ago
    shift = last_shift(values)
    assert shift is not None and 58 <= shift.hour <= 60 and shift.size_mb > 1500


def test_too_few_hours_are_never_a_step() -> None:
    values = np.full(MIN_HOURS - 1, 5000.0)
    values[:10] -= 4000
    assert last_shift(values) is None


@given(
    st.lists(st.one_of(st.floats(-1e6, 1e6), st.just(float("nan"))), min_size=0, max_size=24 * 12)
)
def test_any_series_is_judged_without_a_traceback(values: list[float]) -> None:
    array = np.array(values, dtype=np.float64)
    shift = last_shift(array)
    assert shift is None or 0 <= shift.hour < array.size
