"""When would MemAvailable run out? A trend forecast from the last days of snapshots.

The method, three steps, each against a way real memory series mislead a plain line:

1. Hourly medians. Samples are grouped into hours counted back from the last sample and each
   hour becomes its median. A burst shorter than half an hour does not move a median, and an
   hour weighs the same whether it holds one sample (a 1-hour interval) or 3,600 (1 second),
   so neither the result nor the cost depends on the sampling rate.
2. A seasonal Theil-Sen slope (Hirsch, Slack and Smith 1982, the slope of the seasonal Kendall
   test, with the hour of the day as the season): the median of the slopes between pairs of
   hours a whole number of days apart. The daily cycle, whatever its shape (a nightly backup
   can swing MemAvailable by hundreds of MiB), is the same at both ends of such a pair and
   cancels. A least-squares line over raw samples (Prometheus' `predict_linear`) on a week
   with a cycle 5 times the daily fall was off by over 10% in 16 trials of 20, by up to 120%. An
   hour-long dip or bump spoils only the pairs it is part of, and the median ignores those.
   Outages need no special case: pairs that would touch the missing hours are not there.
3. The seasonal Kendall test of that slope (utils.judge.seasonal: Hirsch, Slack and Smith 1982, with
   the seasons' correlation estimated as Hirsch and Slack 1984 do): MemAvailable falls only
   when "no trend" would give a statistic this low less than once in 100 times (LEVEL), and
   fast enough to reach zero within 10 years. The slope's bounds at the same level give the
   range of the rate and of the days to zero. A cycle whose period divides a day cancels in
   every pair the test counts, so it is not taken for noise; more days of data make the test
   surer, as they should.

numpy only: the analyses hand in plain arrays.
"""

from __future__ import annotations

import datetime
import math
from dataclasses import dataclass
from enum import Enum
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from utils.core.text import days_text, short_number, short_span
from utils.core.units import DAY_S, HOUR_S
from utils.judge.seasonal import SeasonalTrend, by_day, seasonal_trend

Times = npt.NDArray[np.datetime64]
Values = npt.NDArray[np.float64]

HOURS_PER_DAY = DAY_S // HOUR_S
# A trend cannot be told from the daily cycle until the same hour has been seen on two days.
MIN_DAYS = 1.0
# An hour-long spike straddles two hours and so spoils two pairs of hours a day apart; the
# median of 5 pairs survives that. So a trend needs a day and 4 hours of data, not just a day.
MIN_PAIRS = 5
# "Falling" is called on a one-sided test at this level: a host with no trend is called
# falling at most once in 100 (docs/forecast.md has the rate measured on flat hosts). The
# bounds of the rate are the two-sided interval with this much on either side (98%).
LEVEL = 0.01
# A fall that would take longer than this to reach zero is no forecast: a line fitted to days
# of data says nothing about decades.
HORIZON_DAYS = 3_650.0
# Pairs of hours a day or more apart grow as the square of the window (a year: 1.6 million,
# 0.1 s). Past this many, only evenly spread day lags are used, to bound time and memory.
MAX_PAIRS = 4_000_000


class ForecastStatus(Enum):
    FALLING = "falling"
    NOT_FALLING = "not falling"  # no downward trend (flat or rising)
    TOO_LITTLE_DATA = "too little data"  # under a day of data in the window (see MIN_PAIRS)


@dataclass(frozen=True)
class Forecast:
    """A trend forecast of one memory field, in MiB, from the last `window_days` of data.

    The window ends at the last sample with a value, not at the current time, and holds the
    samples no older than `window_days` before it. `falls_mb_per_day` is positive when the
    field falls and negative when it rises, with its bounds `falls_low_mb_per_day` (the
    slowest fall, or fastest rise, the data allow) and `falls_high_mb_per_day` at the test's
    level. `level_mb` is the trend line at the last sample: the typical level through the
    day, so the daily lows reach zero somewhat sooner. `days_to_zero` counts from the last
    sample's time, from that level, at the fitted rate; `days_to_zero_low` at the fast bound
    and `days_to_zero_high` at the slow one (None when the slow bound never reaches zero).
    `p_value` is the test's one-sided p-value of "no trend" against "falling". `used_days`
    is the span from the first to the last sample in the window, outages inside it included;
    `samples` counts the samples with a value in the window. `reaches_back`: there is data
    from the window's start or before it (an outage may still leave the window's first hours
    empty); when not, the data is younger than the window, and the summary names the span.
    """

    basis: str
    window_days: float
    status: ForecastStatus
    falls_mb_per_day: float | None  # None with too little data
    days_to_zero: float | None  # only when FALLING
    zero_date: datetime.date | None  # UTC day, only when FALLING
    used_days: float
    level_mb: float | None  # None with too little data
    samples: int
    reaches_back: bool = False
    falls_low_mb_per_day: float | None = None  # the rate's bounds (None: too little data)
    falls_high_mb_per_day: float | None = None
    days_to_zero_low: float | None = None  # only when FALLING
    days_to_zero_high: float | None = None  # only when FALLING and the slow bound falls
    p_value: float | None = None  # None with too little data


@dataclass(frozen=True)
class HourlySeries:
    """Hourly medians: index 0 is the hour ending at the last sample, 1 the hour before."""

    median_mb: Values  # NaN for an hour without samples
    age_days: Values  # mean age of the hour's samples (time before the last sample), in days


@dataclass(frozen=True)
class TrendFit:
    slope_mb_per_day: float  # negative when falling


# --- The fit ---------------------------------------------------------------------


def hourly_medians(age_s: npt.NDArray[np.int64], values_mb: Values) -> HourlySeries:
    """Group samples by whole hours of age (seconds before the last sample); take medians.

    One sort by (hour, value) serves every hour at once: a Python loop over the hours, or
    over 172,800 one-second samples, would be far slower.
    """
    hour = age_s // HOUR_S
    order = np.lexsort((values_mb, hour))
    hour, values_mb, age_s = hour[order], values_mb[order], age_s[order]
    starts = np.flatnonzero(np.concatenate(([True], hour[1:] != hour[:-1])))
    counts = np.diff(np.append(starts, len(hour)))
    # The median of a sorted run is its middle value, or the mean of the middle two.
    medians = (values_mb[starts + (counts - 1) // 2] + values_mb[starts + counts // 2]) / 2
    size = int(hour[-1]) + 1
    median_mb = np.full(size, np.nan)
    age_days = np.full(size, np.nan)
    median_mb[hour[starts]] = medians
    age_days[hour[starts]] = np.add.reduceat(age_s, starts) / counts / DAY_S
    return HourlySeries(median_mb, age_days)


def day_lags(hours: int) -> npt.NDArray[np.int64]:
    """The lags in whole days between the hours of a window: all of them, unless too many."""
    most = (hours - 1) // HOURS_PER_DAY
    lags = np.arange(1, most + 1, dtype=np.int64)
    pairs = int(np.sum(hours - HOURS_PER_DAY * lags))
    if pairs > MAX_PAIRS:
        keep = max(1, len(lags) * MAX_PAIRS // pairs)
        lags = np.unique(np.linspace(1, most, keep).round().astype(np.int64))
    return lags


def seasonal_slope(hourly_mb: Values) -> TrendFit | None:
    """The seasonal Theil-Sen slope of hourly values (index 0 the latest), in MiB per day;
    None when fewer than `MIN_PAIRS` pairs of hours with values lie whole days apart."""
    rises: list[Values] = []
    lags: list[Values] = []
    for lag in day_lags(len(hourly_mb)):
        step = HOURS_PER_DAY * int(lag)
        # Hour i is later than hour i + step: the difference is how much the field rose.
        rise = hourly_mb[:-step] - hourly_mb[step:]
        rise = rise[np.isfinite(rise)]
        rises.append(rise)
        lags.append(np.full(len(rise), float(lag)))
    if sum(len(rise) for rise in rises) < MIN_PAIRS:
        return None
    rise, lag_days = np.concatenate(rises), np.concatenate(lags)
    return TrendFit(float(np.median(rise / lag_days)))


def is_downward(trend: SeasonalTrend, level_mb: float) -> bool:
    """The rule for a downward trend: a fall the test finds at LEVEL, fast enough to bring
    the level to zero within HORIZON_DAYS (a line fitted to days of data says nothing of
    decades; on a very quiet series a fall of a fraction of a MiB a day is significant)."""
    falls = -trend.slope
    return falls > 0 and trend.p_falling <= LEVEL and level_mb <= falls * HORIZON_DAYS


def forecast_available(
    times: Times, available_mb: Values, window_days: float, basis: str = "MemAvailable"
) -> Forecast:
    """Forecast when `available_mb` would reach zero, from the last `window_days` days of data.

    `times` are UTC datetime64 values; samples with a NaN value (a missing field) or a NaT time
    are ignored. See `Forecast` for what the window and each number mean.
    """
    if not 0 < window_days < math.inf:
        raise ValueError(f"window_days must be positive and finite, not {window_days}")
    if len(times) != len(available_mb):
        raise ValueError(f"{len(times)} times but {len(available_mb)} values")
    window = _window(times, available_mb, window_days)
    if window is None:
        return _too_little(basis, window_days, 0.0, 0)
    used_days = float(window.age_s.max()) / DAY_S
    hourly = hourly_medians(window.age_s, window.values_mb)
    fit = seasonal_slope(hourly.median_mb) if used_days >= MIN_DAYS else None
    if fit is None:
        return _too_little(basis, window_days, used_days, len(window.values_mb))
    # The trend line through every hour, carried to the last sample; the median keeps an
    # hour-long dip from pulling the level down.
    level = float(np.nanmedian(hourly.median_mb + fit.slope_mb_per_day * hourly.age_days))
    trend = seasonal_trend(by_day(hourly.median_mb), LEVEL, fit.slope_mb_per_day)
    downward = is_downward(trend, level)
    days = _days_to_zero(level, -trend.slope) if downward else None
    return Forecast(
        basis=basis,
        window_days=window_days,
        status=ForecastStatus.FALLING if downward else ForecastStatus.NOT_FALLING,
        falls_mb_per_day=-trend.slope,
        days_to_zero=days,
        zero_date=None if days is None else _zero_date(window.last_s, days),
        used_days=used_days,
        level_mb=level,
        samples=len(window.values_mb),
        reaches_back=window.reaches_back,
        falls_low_mb_per_day=-trend.high,
        falls_high_mb_per_day=-trend.low,
        days_to_zero_low=_days_to_zero(level, -trend.low) if downward else None,
        days_to_zero_high=_days_to_zero(level, -trend.high) if downward else None,
        p_value=trend.p_falling,
    )


def _days_to_zero(level_mb: float, falls_mb_per_day: float) -> float | None:
    """Days until level_mb is gone at this fall; None when it does not fall (or is infinite)."""
    if not 0 < falls_mb_per_day < math.inf:
        return None
    return max(0.0, level_mb / falls_mb_per_day)


class _Window(NamedTuple):
    """The samples with a value in the window, timed back from the last of them."""

    last_s: int  # epoch seconds of the last sample with a value
    age_s: npt.NDArray[np.int64]  # each sample's seconds before it
    values_mb: Values
    reaches_back: bool  # a sample at or before the window's start, kept in it or not


def _window(times: Times, available_mb: Values, window_days: float) -> _Window | None:
    """The samples with a value and a time, no older than `window_days` before the last of
    them; None when there is no such sample."""
    seconds = np.asarray(times, dtype="datetime64[s]")
    values = np.asarray(available_mb, dtype=np.float64)
    keep = np.isfinite(values) & ~np.isnat(seconds)
    stamps, values = seconds[keep].astype(np.int64), values[keep]
    if not len(stamps):
        return None
    last = int(stamps.max())
    age_s = last - stamps
    window_s = round(window_days * DAY_S)
    in_window = age_s <= window_s
    return _Window(last, age_s[in_window], values[in_window], bool((age_s >= window_s).any()))


def _zero_date(last_s: int, days: float) -> datetime.date:
    """The UTC day `days` after the epoch second `last_s`."""
    zero = np.datetime64(last_s, "s") + np.timedelta64(round(days * DAY_S), "s")
    return datetime.date.fromisoformat(str(zero.astype("datetime64[D]")))


def _too_little(basis: str, window_days: float, used_days: float, samples: int) -> Forecast:
    return Forecast(
        basis=basis,
        window_days=window_days,
        status=ForecastStatus.TOO_LITTLE_DATA,
        falls_mb_per_day=None,
        days_to_zero=None,
        zero_date=None,
        used_days=used_days,
        level_mb=None,
        samples=samples,
    )


# --- Reporting -------------------------------------------------------------------


def _span(forecast: Forecast) -> str:
    """What the trend was judged over: `the last 7 days`, or, when the data is younger than
    the window (a collector started 3 days ago), `the 3 days of data`."""
    window, used = days_text(forecast.window_days), days_text(forecast.used_days)
    if forecast.reaches_back or used == window:
        return f"the last {window}"
    return f"the {used} of data"


def describe(forecast: Forecast) -> str:
    """The forecast as one console line."""
    basis, window = forecast.basis, f"the last {days_text(forecast.window_days)}"
    if forecast.status is ForecastStatus.TOO_LITTLE_DATA:
        if not forecast.samples:
            return f"{basis}: no data; too little to judge a trend"
        if forecast.used_days < MIN_DAYS:
            span = short_span(forecast.used_days) if forecast.samples > 1 else "one snapshot"
            return f"{basis}: under a day of data in {window} ({span}); too little to judge a trend"
        span = days_text(forecast.used_days)
        return (
            f"{basis}: {span} of data in {window}, too few hours seen on two days;"
            " too little to judge a trend"
        )
    falls = forecast.falls_mb_per_day
    assert falls is not None  # set unless there was too little data
    if forecast.status is ForecastStatus.NOT_FALLING:
        return f"{basis} shows no downward trend over {_span(forecast)} ({_why_not(forecast)})"
    days, zero_date = forecast.days_to_zero, forecast.zero_date
    assert days is not None and zero_date is not None  # set when FALLING
    rate = f"{short_number(falls)} MiB/day{_in_brackets(rate_range(forecast))}"
    if days < 1:
        when = f"zero within a day (around {zero_date.isoformat()} UTC)"
    else:
        span = _in_brackets(days_range(forecast))
        when = f"zero in about {days_text(days)}{span}, around {zero_date} UTC"
    return f"{basis} falls {rate} over {_span(forecast)}: {when}"


def _in_brackets(bounds: tuple[str, str]) -> str:
    """` (180-235)`; nothing where both bounds read alike (a clean line)."""
    return "" if bounds[0] == bounds[1] else f" ({_pair(*bounds)})"


def _why_not(forecast: Forecast) -> str:
    falls = forecast.falls_mb_per_day
    assert falls is not None
    if short_number(abs(falls)) == "0":
        return "it holds steady"
    if falls < 0:
        return f"it rises {short_number(-falls)} MiB/day"
    if forecast.p_value is not None and forecast.p_value > LEVEL:
        bounded = all(
            value is not None and math.isfinite(value)
            for value in (forecast.falls_low_mb_per_day, forecast.falls_high_mb_per_day)
        )
        if not bounded:
            chance = f"{forecast.p_value:.1%}".replace(".0%", "%")
            return (
                f"it falls {short_number(falls)} MiB/day, but over {days_text(forecast.used_days)}"
                f" that is not sure: a flat host looks like this {chance} of the time"
            )
        return (
            f"it falls {short_number(falls)} MiB/day, as its ups and downs could by chance:"
            f" {_pair(*rate_range(forecast))}"
        )
    years = short_number(HORIZON_DAYS / 365)
    return f"it falls {short_number(falls)} MiB/day, too slowly to reach 0 within {years} years"


def _pair(low: str, high: str) -> str:
    """`180-235`; `-30 to 450` where a hyphen would read as a minus; `70 or more`."""
    if high == "more":
        return f"{low} or more"
    return f"{low} to {high}" if low.startswith("-") or high.startswith("-") else f"{low}-{high}"


def rate_range(forecast: Forecast) -> tuple[str, str]:
    """The fall's bounds as the sentences give them (MiB/day)."""
    low, high = forecast.falls_low_mb_per_day, forecast.falls_high_mb_per_day
    assert low is not None and high is not None  # set unless there was too little data
    return short_number(low), short_number(high)


def days_range(forecast: Forecast) -> tuple[str, str]:
    """The days to zero at the fast and the slow bound: `70`, `95` or `70`, `more`."""
    fast, slow = forecast.days_to_zero_low, forecast.days_to_zero_high
    assert fast is not None  # set when FALLING
    return short_number(fast), "more" if slow is None else short_number(slow)


def _rounded(value: float | None, digits: int = 1) -> float | None:
    # Adding 0.0 turns -0.0 into 0.0: "-0.0" in a JSON file reads as a bug. JSON has no
    # infinity: an unbounded side is null.
    if value is None or not math.isfinite(value):
        return None
    return round(value, digits) + 0.0


def to_json_dict(forecast: Forecast) -> dict[str, object]:
    """The forecast for forecast.json: MB (MiB) per day, days, an ISO date; None for null.
    The keys of old come first, then the bounds (the fall's at the test's level, the days
    to zero at the fast and the slow bound), the test's p-value and its level."""
    window = forecast.window_days
    return {
        "basis": forecast.basis,
        "window_days": int(window) if float(window).is_integer() else _rounded(window),
        "falls_MB_per_day": _rounded(forecast.falls_mb_per_day),
        "days_to_zero": _rounded(forecast.days_to_zero),
        "zero_date": None if forecast.zero_date is None else forecast.zero_date.isoformat(),
        "falls_MB_per_day_low": _rounded(forecast.falls_low_mb_per_day),
        "falls_MB_per_day_high": _rounded(forecast.falls_high_mb_per_day),
        "days_to_zero_low": _rounded(forecast.days_to_zero_low),
        "days_to_zero_high": _rounded(forecast.days_to_zero_high),
        "p_value": _rounded(forecast.p_value, 4),
        "level": LEVEL,
    }
