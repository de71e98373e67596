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
3. A rule for a downward trend (`is_downward`): the fitted fall over the data must exceed 3
   times the series' own noise, and be fast enough to reach zero within 10 years. Without it
   a flat noisy series gets a tiny slope and a forecast of "0 in about 40,000 days".

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

from utils.text import days_text, short_number, short_span
from utils.units import DAY_S, HOUR_S

Times = npt.NDArray[np.datetime64]
Values = npt.NDArray[np.float64]

HOURS_PER_DAY = DAY_S // HOUR_S
# A trend cannot be told from the daily cycle until the same hour has been seen on two days.
MIN_DAYS = 1.0
# An hour-long spike straddles two hours and so spoils two pairs of hours a day apart; the
# median of 5 pairs survives that. So a trend needs a day and 4 hours of data, not just a day.
MIN_PAIRS = 5
# The fall over the data must exceed this many times the noise to count. In trials on flat
# series spanning a day and a half, 5 to 8 in 100 passed for falling with 2, and 2 to 4 with
# 3; a week-long fall of 20 MiB/day under a 300 MiB daily cycle passed every time with 3.
NOISE_FACTOR = 3.0
# A fall that would take longer than this to reach zero is no forecast: a line fitted to days
# of data says nothing about decades.
HORIZON_DAYS = 3_650.0
# The median absolute deviation times this estimates the standard deviation of normal noise.
MAD_TO_SIGMA = 1.4826
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
    field falls and negative when it rises. `level_mb` is the trend line at the last sample:
    the typical level through the day, so the daily lows reach zero somewhat sooner.
    `days_to_zero` counts from the last sample's time, from that level. `used_days` is the
    span from the first to the last sample in the window, outages inside it included.
    `noise_mb` is what the rule for a downward trend compares the fall with (see
    `is_downward`); `samples` counts the samples with a value in the window.
    `reaches_back`: there is data from the window's start or before it (an outage may
    still leave the window's first hours empty); when not, the data is younger than the
    window, and the summary names the span it had.
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
    noise_mb: float | None  # None with too little data
    reaches_back: bool = False


@dataclass(frozen=True)
class HourlySeries:
    """Hourly medians: index 0 is the hour ending at the last sample, 1 the hour before."""

    median_mb: Values  # NaN for an hour without samples
    age_days: Values  # mean age of the hour's samples (time before the last sample), in days


@dataclass(frozen=True)
class TrendFit:
    slope_mb_per_day: float  # negative when falling
    noise_mb: float


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
    """The seasonal Theil-Sen slope of hourly values (index 0 the latest), in MiB per day.

    None when fewer than `MIN_PAIRS` pairs of hours with values lie whole days apart. The noise
    is the larger of two robust estimates of one hour's noise: the spread of those pairs'
    differences around the fitted slope (which sees day-to-day changes: a cycle that varies
    from day to day, a slow wander), and the hour-to-hour scatter (which still sees noise when
    only a few pairs exist).
    """
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
    slope = float(np.median(rise / lag_days))
    # A difference of two hours carries the noise of one hour sqrt(2) times.
    day_to_day = float(np.median(np.abs(rise - slope * lag_days))) / math.sqrt(2)
    # A second difference of three consecutive hours cancels a trend and nearly all of a
    # daily cycle, and carries the noise of one hour sqrt(6) times.
    bends = hourly_mb[:-2] - 2 * hourly_mb[1:-1] + hourly_mb[2:]
    bends = bends[np.isfinite(bends)]
    hour_to_hour = float(np.median(np.abs(bends))) / math.sqrt(6) if len(bends) else 0.0
    return TrendFit(slope, MAD_TO_SIGMA * max(day_to_day, hour_to_hour))


def is_downward(
    falls_mb_per_day: float, used_days: float, level_mb: float, noise_mb: float
) -> bool:
    """The rule for a downward trend: a fall that is beyond the noise and not negligibly slow.

    The fall over the data (rate times `used_days`) must exceed `NOISE_FACTOR` times the noise.
    A slope fitted to a flat series is a small fraction of its noise (under 1 times it over
    a week in trials), while a real fall adds up day after day. And the rate must bring the
    level to zero within `HORIZON_DAYS`: on a very quiet series the first test alone would
    pass a fall of a fraction of a MiB a day.
    """
    if falls_mb_per_day <= 0:
        return False
    if falls_mb_per_day * used_days <= NOISE_FACTOR * noise_mb:
        return False
    return level_mb <= falls_mb_per_day * HORIZON_DAYS


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
    falls = -fit.slope_mb_per_day
    downward = is_downward(falls, used_days, level, fit.noise_mb)
    days = max(0.0, level / falls) if downward else None
    return Forecast(
        basis=basis,
        window_days=window_days,
        status=ForecastStatus.FALLING if downward else ForecastStatus.NOT_FALLING,
        falls_mb_per_day=falls,
        days_to_zero=days,
        zero_date=None if days is None else _zero_date(window.last_s, days),
        used_days=used_days,
        level_mb=level,
        samples=len(window.values_mb),
        noise_mb=fit.noise_mb,
        reaches_back=window.reaches_back,
    )


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
        noise_mb=None,
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
    falls, noise = forecast.falls_mb_per_day, forecast.noise_mb
    assert falls is not None and noise is not None  # set unless there was too little data
    if forecast.status is ForecastStatus.NOT_FALLING:
        if short_number(abs(falls)) == "0":
            how = "it holds steady"
        elif falls < 0:
            how = f"it rises {short_number(-falls)} MiB/day"
        elif falls * forecast.used_days <= NOISE_FACTOR * noise:
            how = (
                f"it falls {short_number(falls)} MiB/day,"
                f" within its noise of {short_number(noise)} MiB"
            )
        else:
            years = short_number(HORIZON_DAYS / 365)
            how = (
                f"it falls {short_number(falls)} MiB/day,"
                f" too slowly to reach 0 within {years} years"
            )
        return f"{basis} shows no downward trend over {_span(forecast)} ({how})"
    days, zero_date = forecast.days_to_zero, forecast.zero_date
    assert days is not None and zero_date is not None  # set when FALLING
    when = "within a day" if days < 1 else f"in about {days_text(days)}"
    return (
        f"{basis} falls {short_number(falls)} MiB/day over {_span(forecast)}:"
        f" at that rate it reaches 0 {when} (around {zero_date.isoformat()} UTC)"
    )


def _rounded(value: float | None) -> float | None:
    # Adding 0.0 turns -0.0 into 0.0: "-0.0" in a JSON file reads as a bug.
    return None if value is None else round(value, 1) + 0.0


def to_json_dict(forecast: Forecast) -> dict[str, object]:
    """The forecast for forecast.json: MB (MiB) per day, days, an ISO date; None for null."""
    window = forecast.window_days
    return {
        "basis": forecast.basis,
        "window_days": int(window) if float(window).is_integer() else _rounded(window),
        "falls_MB_per_day": _rounded(forecast.falls_mb_per_day),
        "days_to_zero": _rounded(forecast.days_to_zero),
        "zero_date": None if forecast.zero_date is None else forecast.zero_date.isoformat(),
    }
