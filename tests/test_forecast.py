"""The MemAvailable forecast (scripts/utils/forecast.py) on generated series: planted rates
under a daily cycle and spikes, flat and rising series, too little data, outages, the window,
NaN values, one-second sampling, and the exact console line and JSON."""

from __future__ import annotations

import datetime
import json

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from utils.judge.forecast import (
    Forecast,
    ForecastStatus,
    describe,
    forecast_available,
    to_json_dict,
)

Times = npt.NDArray[np.datetime64]
Values = npt.NDArray[np.float64]
Series = tuple[Times, Values]

DAY_S = 86_400
HOUR_S = 3_600
# The last sample of every generated series.
END = np.datetime64("2026-03-08T00:00:00", "s")


def clean_line(
    days: float, falls_mb_per_day: float, last_mb: float, interval_s: int = 600
) -> Series:
    """A straight line ending at `last_mb` at END, one sample every `interval_s` seconds."""
    age_s = np.arange(0, round(days * DAY_S) + 1, interval_s)[::-1]
    times = END - age_s.astype("timedelta64[s]")
    return times, last_mb + falls_mb_per_day * age_s / DAY_S


def memory_series(
    seed: int,
    days: float,
    falls_mb_per_day: float,
    last_mb: float,
    cycle_mb: float,
    interval_s: int = 600,
    noise_mb: float = 15.0,
    spikes_per_day: float = 1.0,
    cycle_change: float = 0.2,
) -> Series:
    """MemAvailable as a host shows it: a trend ending at `last_mb` on the trend line at END,
    a daily cycle, noise, and hour-long dips (a burst of memory use) and bumps (freed cache).

    The cycle is a sine plus a 2-hour nightly trough (a backup), `cycle_mb` its scale, at a
    random time of day; each day's cycle is up to `cycle_change` (a fraction) bigger or smaller.
    """
    rng = np.random.default_rng(seed)
    age_s = np.arange(0, round(days * DAY_S) + 1, interval_s)[::-1]
    times = END - age_s.astype("timedelta64[s]")
    day_fraction = age_s / DAY_S + rng.uniform(0, 1)
    phase = day_fraction % 1
    size = (
        1
        + rng.uniform(-cycle_change, cycle_change, int(day_fraction.max()) + 1)[
            day_fraction.astype(int)
        ]
    )
    trough = np.where((phase > 0.05) & (phase < 0.13), -0.8, 0.0)
    cycle = cycle_mb * size * (0.6 * np.sin(2 * np.pi * phase) + trough)
    values = last_mb + falls_mb_per_day * age_s / DAY_S + cycle
    values += rng.normal(0, noise_mb, len(values))
    for _ in range(rng.poisson(spikes_per_day * days)):
        start = rng.uniform(0, days * DAY_S - HOUR_S)
        dip = rng.uniform() < 0.6
        jump = -rng.uniform(300, 3_000) if dip else rng.uniform(100, 800)
        values[(age_s >= start) & (age_s < start + HOUR_S)] += jump
    return times, values


def forecast(series: Series, window_days: float = 7) -> Forecast:
    return forecast_available(series[0], series[1], window_days)


def assert_rate(result: Forecast, planted: float, tolerance: float = 0.10) -> None:
    assert result.falls_mb_per_day is not None
    assert result.falls_mb_per_day == pytest.approx(planted, rel=tolerance)


# --- Planted rates ---------------------------------------------------------------

# (MiB/day, MemAvailable at the end, daily cycle scale): the cycle is 4 to 5 times the daily
# fall; 20 MiB/day is a slow leak on a 16 GiB host.
PLANTED = [(20.0, 10_000.0, 100.0), (120.0, 5_400.0, 500.0), (500.0, 12_000.0, 2_000.0)]
SEEDS = [1, 2, 3, 4, 5]


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize(("falls", "last_mb", "cycle_mb"), PLANTED)
def test_planted_fall_is_found_through_the_cycle_and_spikes(
    falls: float, last_mb: float, cycle_mb: float, seed: int
) -> None:
    result = forecast(memory_series(seed, 7, falls, last_mb, cycle_mb))
    assert result.status is ForecastStatus.FALLING
    assert_rate(result, falls)
    low, high = result.falls_low_mb_per_day, result.falls_high_mb_per_day
    assert low is not None and high is not None and low <= falls <= high
    assert result.level_mb == pytest.approx(last_mb, rel=0.05)
    assert result.days_to_zero == pytest.approx(last_mb / falls, rel=0.15)


@pytest.mark.parametrize("seed", SEEDS)
def test_hourly_sampling_finds_the_planted_fall(seed: int) -> None:
    result = forecast(memory_series(seed, 7, 120, 5_400, 500, interval_s=HOUR_S))
    assert result.status is ForecastStatus.FALLING
    assert_rate(result, 120)


def test_plain_least_squares_is_fooled_where_the_forecast_is_not() -> None:
    """Why not `predict_linear`: on the slow leak, a least-squares line over the raw samples
    misses by more than 10% (here the cycle and the dips tilt it), the forecast does not."""
    times, values = memory_series(2, 7, 20, 10_000, 100)
    days = (times - times[0]) / np.timedelta64(1, "D")
    least_squares = -float(np.polyfit(days, values, 1)[0])
    assert abs(least_squares / 20 - 1) > 0.10
    assert_rate(forecast((times, values)), 20)


# --- No downward trend -----------------------------------------------------------


@pytest.mark.parametrize("seed", SEEDS)
def test_flat_noisy_series_is_not_falling(seed: int) -> None:
    result = forecast(memory_series(seed, 7, 0, 8_000, 300, noise_mb=40))
    assert result.status is ForecastStatus.NOT_FALLING and not result.significant
    assert result.falls_mb_per_day is not None and abs(result.falls_mb_per_day) < 10
    low, high = result.falls_low_mb_per_day, result.falls_high_mb_per_day
    assert low is not None and high is not None and low < 0 < high


@pytest.mark.parametrize("seed", SEEDS)
def test_rising_series_is_not_falling_and_reports_the_rise(seed: int) -> None:
    result = forecast(memory_series(seed, 7, -50, 8_000, 300))
    assert result.status is ForecastStatus.NOT_FALLING
    assert_rate(result, -50, tolerance=0.2)
    assert result.days_to_zero is None
    assert describe(result).startswith("MemAvailable rises ")
    assert describe(result).endswith(" over the last 7 days: no fall to forecast")


def test_a_fall_too_slow_to_matter_is_not_a_trend() -> None:
    result = forecast(clean_line(7, 1, 16_000))
    assert result.status is ForecastStatus.NOT_FALLING
    assert result.falls_mb_per_day == pytest.approx(1)
    assert describe(result) == (
        "MemAvailable falls 1 MiB/day over the last 7 days: zero in over 10 years"
    )


def test_a_fall_within_the_noise_says_so() -> None:
    """A fall of 20 MiB/day is 140 MiB over the week, inside hours that scatter by 300."""
    result = forecast(memory_series(1, 7, 20, 8_000, 0, noise_mb=300, spikes_per_day=0))
    assert result.status is ForecastStatus.NOT_FALLING
    assert result.falls_mb_per_day is not None and result.falls_mb_per_day > 0
    assert result.p_value is not None and result.p_value > 0.01
    low, high = result.falls_low_mb_per_day, result.falls_high_mb_per_day
    assert low is not None and high is not None and low < 0 and high > 20
    assert result.days_to_zero is not None  # the estimate is always given
    assert ", not significant at the 1% level: at that rate, zero in about " in describe(result)


# --- Too little data -------------------------------------------------------------


@pytest.mark.parametrize("seed", SEEDS)
def test_under_a_day_is_too_little(seed: int) -> None:
    result = forecast(memory_series(seed, 23 / 24, 2_000, 5_000, 500))
    assert result.status is ForecastStatus.TOO_LITTLE_DATA
    assert result.falls_mb_per_day is None and result.level_mb is None
    assert result.used_days == pytest.approx(23 / 24)


def test_a_day_needs_a_few_hours_more_to_judge_and_days_more_to_be_sure() -> None:
    """Exactly a day compares one hour with one hour: a single spike could decide it. A few
    days tell a fall from chance, however clean it looks, as days are what a wander moves."""
    assert forecast(clean_line(1, 120, 5_000)).status is ForecastStatus.TOO_LITTLE_DATA
    short = forecast(clean_line(1 + 4 / 24, 120, 5_000))
    assert short.status is ForecastStatus.NOT_FALLING
    assert describe(short) == (
        "MemAvailable falls 120 MiB/day over the 1.2 days of data, too few days to call"
        " significant (3 days at least): at that rate, zero in about 42 days, around 2026-04-18"
        " UTC"
    )
    assert forecast(clean_line(2.9, 120, 5_000)).status is ForecastStatus.NOT_FALLING
    assert forecast(clean_line(3, 120, 5_000)).status is ForecastStatus.FALLING


def test_no_data_at_all() -> None:
    times = np.array(["2026-03-01T00:00:00"], dtype="datetime64[s]")
    result = forecast_available(times, np.array([np.nan]), 7)
    assert result.status is ForecastStatus.TOO_LITTLE_DATA
    assert result.samples == 0
    assert describe(result) == "MemAvailable: no data; too little to judge a trend"


# --- Outages, the window, NaN, sampling rates ------------------------------------


@pytest.mark.parametrize("seed", SEEDS)
def test_a_day_long_outage_inside_the_window(seed: int) -> None:
    times, values = memory_series(seed, 7, 120, 5_400, 500)
    outage = (times > END - np.timedelta64(4 * DAY_S, "s")) & (
        times < END - np.timedelta64(3 * DAY_S, "s")
    )
    result = forecast((times[~outage], values[~outage]))
    assert result.status is ForecastStatus.FALLING
    assert_rate(result, 120)
    assert result.used_days == pytest.approx(7)


def test_the_window_ends_at_the_last_sample_and_leaves_older_data_out() -> None:
    """Two weeks: a steep fall (2,000 MiB/day) in the first, flat in the last."""
    times, values = memory_series(4, 14, 0, 8_000, 300)
    age_days = (END - times) / np.timedelta64(1, "D")
    values += 2_000 * np.clip(age_days - 7, 0, None)
    last_week = forecast((times, values), window_days=7)
    assert last_week.status is ForecastStatus.NOT_FALLING
    assert last_week.used_days == pytest.approx(7)
    assert forecast((times, values), window_days=14).status is ForecastStatus.FALLING


def test_nan_values_are_ignored() -> None:
    times, values = memory_series(5, 7, 120, 5_400, 500)
    rng = np.random.default_rng(5)
    missing = rng.uniform(size=len(values)) < 0.1
    missing[-3:] = True  # the window still ends at the last sample with a value
    with_nan = values.copy()
    with_nan[missing] = np.nan
    assert forecast((times, with_nan)) == forecast((times[~missing], values[~missing]))
    assert forecast((times, with_nan)).status is ForecastStatus.FALLING


@pytest.mark.parametrize("seed", SEEDS)
def test_one_second_sampling_over_six_days(seed: int) -> None:
    """518,000 samples: each hour is one median, as one sample an hour would be."""
    series = memory_series(seed, 6, 120, 5_400, 300, interval_s=1, noise_mb=30, spikes_per_day=2)
    assert len(series[0]) == 6 * DAY_S + 1
    result = forecast(series)
    assert result.status is ForecastStatus.FALLING
    assert_rate(result, 120)


# --- The console line and the JSON -----------------------------------------------


def test_clean_fall_exactly() -> None:
    result = forecast(clean_line(7, 120, 5_400))
    assert result.status is ForecastStatus.FALLING
    assert result.falls_mb_per_day == pytest.approx(120)
    assert result.level_mb == pytest.approx(5_400)
    assert result.days_to_zero == pytest.approx(45)
    assert result.zero_date == datetime.date(2026, 4, 22)
    assert result.used_days == 7
    assert result.samples == 7 * 144 + 1
    # A clean line's bounds are the line: no range is shown.
    assert describe(result) == (
        "MemAvailable falls 120 MiB/day over the last 7 days: zero in about 45 days,"
        " around 2026-04-22 UTC"
    )
    assert to_json_dict(result) == {
        "basis": "MemAvailable",
        "window_days": 7,
        "falls_MB_per_day": 120.0,
        "days_to_zero": 45.0,
        "zero_date": "2026-04-22",
        "falls_MB_per_day_low": 120.0,
        "falls_MB_per_day_high": 120.0,
        "days_to_zero_low": 45.0,
        "days_to_zero_high": 45.0,
        "p_value": 0.0,
        "level": 0.01,
        "significant": True,
        "longest_window_days": 7,
        "step_at": None,
        "step_MB": None,
    }


def test_clean_rise_exactly() -> None:
    result = forecast_available(*clean_line(4, -12.34, 6_000), 7.0)
    assert describe(result) == (
        "MemAvailable rises 12 MiB/day over the 4 days of data: no fall to forecast"
    )
    assert to_json_dict(result) == {
        "basis": "MemAvailable",
        "window_days": 4,
        "falls_MB_per_day": -12.3,
        "days_to_zero": None,
        "zero_date": None,
        "falls_MB_per_day_low": -12.3,
        "falls_MB_per_day_high": -12.3,
        "days_to_zero_low": None,
        "days_to_zero_high": None,
        "p_value": 1.0,
        "level": 0.01,
        "significant": False,
        "longest_window_days": 7,
        "step_at": None,
        "step_MB": None,
    }


def test_clean_flat_exactly() -> None:
    result = forecast(clean_line(7, 0, 6_000))
    assert describe(result) == ("MemAvailable holds steady over the last 7 days")
    assert to_json_dict(result)["falls_MB_per_day"] == 0.0


def test_too_little_exactly() -> None:
    result = forecast(clean_line(5 / 24, 120, 5_400))
    assert describe(result) == (
        "MemAvailable: under a day of data (5 h); too little to judge a trend"
    )
    assert to_json_dict(result) == {
        "basis": "MemAvailable",
        "window_days": 0.2,
        "falls_MB_per_day": None,
        "days_to_zero": None,
        "zero_date": None,
        "falls_MB_per_day_low": None,
        "falls_MB_per_day_high": None,
        "days_to_zero_low": None,
        "days_to_zero_high": None,
        "p_value": None,
        "level": 0.01,
        "significant": None,
        "longest_window_days": 7,
        "step_at": None,
        "step_MB": None,
    }
    a_day = forecast(clean_line(1, 120, 5_400))
    assert describe(a_day) == (
        "MemAvailable: 1 day of data, too few hours seen on two days;"
        " too little to judge a trend"
    )


def test_less_data_than_the_window_names_the_span_it_has() -> None:
    short = forecast(clean_line(4.2, 120, 5_400))
    assert short.used_days == pytest.approx(4.2, abs=0.01)
    assert describe(short).startswith("MemAvailable falls 120 MiB/day over the 4.2 days of data:")
    # A full window less one interval is the window, as a person says it.
    assert describe(forecast(clean_line(7 - 1 / 144, 120, 5_400))).startswith(
        "MemAvailable falls 120 MiB/day over the last 7 days:"
    )


def test_an_outage_at_the_window_start_is_not_younger_data() -> None:
    """30 days of data with the window's first 5 hours lost: the window is still the last
    7 days, not "6.8 days of data" (which reads as a collector started then)."""
    times, values = clean_line(30, 120, 5_400)
    age_days = (times[-1] - times) / np.timedelta64(1, "D")
    kept = (age_days < 6.8) | (age_days > 7.0)
    result = forecast((times[kept], values[kept]))
    assert result.used_days == pytest.approx(6.8, abs=0.01)
    assert result.reaches_back
    assert describe(result).startswith("MemAvailable falls 120 MiB/day over the last 7 days:")


def test_within_a_day_thousands_and_fractional_windows() -> None:
    soon = forecast_available(*clean_line(5, 120, 50), 4.5, basis="RAM free")
    assert describe(soon) == (
        "RAM free falls 120 MiB/day over the last 4.5 days: zero within a day"
        " (around 2026-03-08 UTC)"
    )
    json = to_json_dict(soon)
    assert (json["window_days"], json["days_to_zero"], json["zero_date"]) == (
        4.5,
        0.4,
        "2026-03-08",
    )
    fast = forecast(clean_line(7, 1_500, 30_000))
    assert describe(fast) == (
        "MemAvailable falls 1,500 MiB/day over the last 7 days: zero in about 20 days,"
        " around 2026-03-28 UTC"
    )
    slow_minutes = forecast(clean_line(0.5 / 24, 120, 5_400, interval_s=60))
    assert "(30 min)" in describe(slow_minutes)
    first_run = forecast(clean_line(8 / 86400, 120, 5_400, interval_s=2))
    assert describe(first_run) == (
        "MemAvailable: under a day of data (8 s); too little to judge a trend"
    )
    assert "(1 min)" in describe(forecast(clean_line(59.7 / 86400, 1, 5_400, interval_s=1)))
    one = forecast(clean_line(0, 120, 5_400))
    assert describe(one) == (
        "MemAvailable: under a day of data (one snapshot);" " too little to judge a trend"
    )


@pytest.mark.parametrize("window_days", [0.0, -1.0, float("nan"), float("inf")])
def test_a_window_must_be_positive(window_days: float) -> None:
    with pytest.raises(ValueError, match="window_days"):
        forecast(clean_line(2, 120, 5_400), window_days=window_days)


@given(
    st.lists(
        st.tuples(
            st.integers(0, 40 * DAY_S),
            st.one_of(st.floats(-1e7, 1e7), st.just(float("nan"))),
        ),
        max_size=400,
    ),
    st.sampled_from([0.5, 7.0, 28.0]),
)
def test_any_series_gives_a_forecast_its_sentence_and_its_json(
    samples: list[tuple[int, float]], window_days: float
) -> None:
    """Times in any order, repeated, NaN values, a few or none: a forecast, never a
    traceback, and a sentence and a JSON that say the same."""
    age_s = np.array([age for age, _ in samples], dtype=np.int64)
    times = END - age_s.astype("timedelta64[s]")
    values = np.array([value for _, value in samples], dtype=np.float64)
    result = forecast_available(times, values, window_days)
    text = describe(result)
    saved = json.loads(json.dumps(to_json_dict(result)))
    assert text.startswith("MemAvailable")
    if result.status is ForecastStatus.FALLING:
        assert saved["significant"] is True and saved["zero_date"] is not None
    if saved["days_to_zero"] is not None and saved["zero_date"] is not None:
        assert "zero in about" in text or "zero within a day" in text


@pytest.mark.parametrize(
    ("span_s", "interval_s", "said"), [(8, 1, "8 s"), (180, 1, "3 min"), (6 * HOUR_S, 10, "6 h")]
)
def test_a_short_demo_is_too_little_and_says_its_span(
    span_s: int, interval_s: int, said: str
) -> None:
    """Seconds, minutes and hours of a fast leak: a daily cycle cannot be told from a trend
    in under a day, so the forecast names the span it had and judges nothing."""
    age_s = np.arange(0, span_s + 1, interval_s)[::-1]
    times = END - age_s.astype("timedelta64[s]")
    result = forecast_available(times, 5_000 + 500.0 * age_s / HOUR_S, 28.0)
    assert describe(result) == (
        f"MemAvailable: under a day of data ({said});" " too little to judge a trend"
    )
    saved = to_json_dict(result)
    assert saved["significant"] is None and saved["days_to_zero"] is None
    assert saved["longest_window_days"] == 28 and saved["window_days"] == round(span_s / DAY_S, 1)
