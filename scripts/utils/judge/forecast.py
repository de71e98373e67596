"""When would MemAvailable run out? A trend forecast from the days since the last level shift.

The method, four steps, each against a way real memory series mislead a plain line:

1. Hourly medians. Samples are grouped into hours counted back from the last sample and each
   hour becomes its median. A burst shorter than half an hour does not move a median, and an
   hour weighs the same whether it holds one sample (a 1-hour interval) or 3,600 (1 second),
   so neither the result nor the cost depends on the sampling rate.
2. The last level shift (utils.judge.level_shift): a service started or stopped for good is
   a step, not a trend. Only the hours since the last step, up to the longest window asked
   for, are judged.
3. A line with a term for each hour of the day (utils.judge.seasonal): the daily cycle,
   whatever its shape (a nightly job's hour, a collector's 2-hour swing), is taken out by
   those terms, and an hour far off the line is clipped before the line is fitted again.
4. Its test: the slope over its Newey-West standard error (errors correlated over a day and
   a half: a wander carries over hours and from one day into the next), referred to
   Student's t with days - 2 degrees of freedom. The fall is significant when "no trend"
   would give a slope this steep less than once in 100 times (LEVEL). The bounds at the same
   level on each side give the range of the rate and of the days to zero.

The estimate and its range are always given; whether the fall is significant decides the
alert (`alert_days`), not whether the days to zero are said.

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

from utils.core.text import days_text, short_number, short_span, signed
from utils.core.units import DAY_S, HOUR_S
from utils.judge.level_shift import LevelShift, last_shift
from utils.judge.seasonal import SEASONS, SeasonalFit, seasonal_fit

Times = npt.NDArray[np.datetime64]
Values = npt.NDArray[np.float64]

# A trend cannot be told from the daily cycle until the same hour has been seen on two days.
MIN_DAYS = 1.0
# ... and that a few times over: 5 hours of the day seen on two days each, a day and 4 hours.
MIN_PAIRS = 5
# Under this many days of data a fall is never called significant: the test takes a degree
# of freedom for each 3 days (utils.judge.seasonal), and a perfectly clean day or two would
# otherwise be called certain.
MIN_SURE_DAYS = 3.0
# The fall is significant when a host with no trend would show one this steep at most once
# in 100 windows (one-sided). The range of the rate is the two-sided interval with this
# much on either side (98%), so that its fast end, which --alert-days reads, is passed by
# the true rate at most once in 100 too. docs/forecast.md has why 1% and the rates measured.
LEVEL = 0.01
# A fall that would take longer than this to reach zero is no forecast: a line fitted to days
# of data says nothing about decades.
HORIZON_DAYS = 3_650.0


class ForecastStatus(Enum):
    FALLING = "falling"  # a fall significant at LEVEL, reaching zero within HORIZON_DAYS
    NOT_FALLING = "not falling"  # anything else with enough data: see `Forecast.significant`
    TOO_LITTLE_DATA = "too little data"  # under a day of data in the window (see MIN_PAIRS)


@dataclass(frozen=True)
class Forecast:
    """A trend forecast of one memory field, in MiB, from the data since its last level
    shift, at most `window_days` (the longest window) before the last sample.

    `falls_mb_per_day` is positive when the field falls and negative when it rises, with its
    bounds `falls_low_mb_per_day` (the slowest fall, or fastest rise, the data allow) and
    `falls_high_mb_per_day` at the test's level. `level_mb` is the trend line at the last
    sample: the typical level through the day. `days_to_zero` counts from the last sample's
    time, from that level, at the estimated rate, whenever that rate falls, significant or
    not; `days_to_zero_low` at the fast bound and `days_to_zero_high` at the slow one (None
    where that bound does not fall). `significant`: the fall is significant at LEVEL
    (`p_value` is the test's one-sided p-value of "no trend" against "falling").
    `used_days` is the span from the first to the last sample judged, outages included;
    `samples` counts them. `step_at`/`step_mb`: the level shift the judged data starts
    after (None: no step in the longest window). `reaches_back`: there is data from the
    window's start or before it; when not, the data is younger than the window.
    """

    basis: str
    window_days: float
    status: ForecastStatus
    falls_mb_per_day: float | None  # None with too little data
    days_to_zero: float | None  # whenever the estimate falls
    zero_date: datetime.date | None  # UTC day, with days_to_zero
    used_days: float
    level_mb: float | None  # None with too little data
    samples: int
    reaches_back: bool = False
    falls_low_mb_per_day: float | None = None  # the rate's bounds (None: too little data)
    falls_high_mb_per_day: float | None = None
    days_to_zero_low: float | None = None  # at the fast bound, when it falls
    days_to_zero_high: float | None = None  # at the slow bound, when it falls
    p_value: float | None = None  # None with too little data
    significant: bool = False
    step_at: datetime.datetime | None = None  # UTC, naive
    step_mb: float | None = None


@dataclass(frozen=True)
class HourlySeries:
    """Hourly medians: index 0 is the hour ending at the last sample, 1 the hour before."""

    median_mb: Values  # NaN for an hour without samples
    age_days: Values  # mean age of the hour's samples (time before the last sample), in days


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


def day_pairs(hourly_mb: Values) -> int:
    """Pairs of hours with values a whole number of days apart."""
    season = np.arange(hourly_mb.size) % SEASONS
    counts = np.bincount(season[np.isfinite(hourly_mb)], minlength=SEASONS)
    return int(np.sum(counts * (counts - 1) // 2))


def forecast_available(
    times: Times, available_mb: Values, window_days: float, basis: str = "MemAvailable"
) -> Forecast:
    """Forecast when `available_mb` would reach zero, from the data since its last level
    shift within the last `window_days` days.

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
    hourly = hourly_medians(window.age_s, window.values_mb)
    shift = last_shift(hourly.median_mb)
    if shift is not None:
        window, hourly = _since(window, hourly, shift)
        if not window.values_mb.size:
            return _too_little(basis, window_days, 0.0, 0, window)
    used_days = float(window.age_s.max()) / DAY_S
    fit = None
    if used_days >= MIN_DAYS and day_pairs(hourly.median_mb) >= MIN_PAIRS:
        fit = seasonal_fit(hourly.median_mb, hourly.age_days, LEVEL)
    if fit is None:
        return _too_little(basis, window_days, used_days, len(window.values_mb), window)
    return _forecast(basis, window_days, window, fit, used_days)


def _forecast(
    basis: str, window_days: float, window: _Window, fit: SeasonalFit, used_days: float
) -> Forecast:
    """The forecast from a fitted line (see `Forecast`)."""
    falls, level = -fit.slope, fit.level
    significant = falls > 0 and fit.p_falling <= LEVEL and used_days >= MIN_SURE_DAYS
    days = _days_to_zero(level, falls)
    falling = significant and days is not None and days <= HORIZON_DAYS
    return Forecast(
        basis=basis,
        window_days=window_days,
        status=ForecastStatus.FALLING if falling else ForecastStatus.NOT_FALLING,
        falls_mb_per_day=falls,
        days_to_zero=days,
        zero_date=_zero_date(window.last_s, days),
        used_days=used_days,
        level_mb=level,
        samples=len(window.values_mb),
        reaches_back=window.reaches_back,
        falls_low_mb_per_day=-fit.high,
        falls_high_mb_per_day=-fit.low,
        days_to_zero_low=_days_to_zero(level, -fit.low),
        days_to_zero_high=_days_to_zero(level, -fit.high),
        p_value=fit.p_falling,
        significant=significant,
        step_at=window.step_at,
        step_mb=window.step_mb,
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
    step_at: datetime.datetime | None = None  # the window starts after this level shift
    step_mb: float | None = None


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


def _since(
    window: _Window, hourly: HourlySeries, shift: LevelShift
) -> tuple[_Window, HourlySeries]:
    """The window and its hours cut to the hours wholly after a level shift."""
    kept = window.age_s // HOUR_S < shift.hour
    step_s = window.last_s - (shift.hour + 1) * HOUR_S
    step_at = datetime.datetime.fromtimestamp(step_s, datetime.UTC).replace(tzinfo=None)
    cut = _Window(
        window.last_s, window.age_s[kept], window.values_mb[kept], True, step_at, shift.size_mb
    )
    hours = HourlySeries(hourly.median_mb[: shift.hour], hourly.age_days[: shift.hour])
    return cut, hours


def _zero_date(last_s: int, days: float | None) -> datetime.date | None:
    """The UTC day `days` after the epoch second `last_s`; None past HORIZON_DAYS."""
    if days is None or days > HORIZON_DAYS:
        return None
    zero = np.datetime64(last_s, "s") + np.timedelta64(round(days * DAY_S), "s")
    return datetime.date.fromisoformat(str(zero.astype("datetime64[D]")))


def _too_little(
    basis: str, window_days: float, used_days: float, samples: int, window: _Window | None = None
) -> Forecast:
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
        reaches_back=window is not None and window.reaches_back,
        step_at=None if window is None else window.step_at,
        step_mb=None if window is None else window.step_mb,
    )


# --- Reporting -------------------------------------------------------------------


def _span(forecast: Forecast) -> str:
    """What the trend was judged over: `the 9 days since the step on 2026-09-06 (-2,867
    MiB)`, `the last 7 days`, or, when the data is younger than the window (a collector
    started 3 days ago), `the 3 days of data`."""
    window, used = days_text(forecast.window_days), days_text(forecast.used_days)
    if forecast.step_at is not None:
        step = "" if forecast.step_mb is None else f" ({signed(forecast.step_mb)} MiB)"
        return f"the {used} since the step on {forecast.step_at.date().isoformat()}{step}"
    if forecast.reaches_back or used == window:
        return f"the last {window}"
    return f"the {used} of data"


def _where(forecast: Forecast) -> str:
    """Where too little data was found: ` in the last 7 days`, ` since the step on ...`;
    nothing when the data is younger than the window (an 8-second demo has no last 28 days
    to speak of)."""
    if forecast.step_at is not None:
        return f" since the step on {forecast.step_at.date().isoformat()}"
    if not forecast.reaches_back:
        return ""
    return f" in the last {days_text(forecast.window_days)}"


def describe(forecast: Forecast) -> str:
    """The forecast as one sentence: the console's last line, the report's first."""
    basis = forecast.basis
    if forecast.status is ForecastStatus.TOO_LITTLE_DATA:
        return f"{basis}: {_too_little_why(forecast)}; too little to judge a trend"
    falls = forecast.falls_mb_per_day
    assert falls is not None  # set unless there was too little data
    over = f"over {_span(forecast)}"
    if short_number(abs(falls)) == "0":
        bounds = rate_range(forecast)
        rate = "" if bounds[0] == bounds[1] else f" (a fall of {_pair(*bounds)} MiB/day)"
        return f"{basis} holds steady {over}{rate}"
    if falls < 0:
        rises = _in_brackets(_negated(forecast))
        return f"{basis} rises {short_number(-falls)} MiB/day{rises} {over}: no fall to forecast"
    rate = f"{short_number(falls)} MiB/day{_in_brackets(rate_range(forecast))}"
    return f"{basis} falls {rate} {over}{_when(forecast)}"


def _too_little_why(forecast: Forecast) -> str:
    if not forecast.samples:
        return f"no data{_where(forecast)}"
    if forecast.used_days < MIN_DAYS:
        span = short_span(forecast.used_days) if forecast.samples > 1 else "one snapshot"
        return f"under a day of data{_where(forecast)} ({span})"
    span = days_text(forecast.used_days)
    return f"{span} of data{_where(forecast)}, too few hours seen on two days"


def _when(forecast: Forecast) -> str:
    """`: zero in about 80 days (68-97), around 2027-02-20 UTC`, with what the test says
    when the fall is not significant, or too slow to matter."""
    days, zero_date = forecast.days_to_zero, forecast.zero_date
    assert days is not None  # the estimate falls
    if zero_date is None:
        when = f"zero in over {short_number(HORIZON_DAYS / 365)} years"
    elif days < 1:
        when = f"zero within a day (around {zero_date.isoformat()} UTC)"
    else:
        span = _in_brackets(days_range(forecast))
        when = f"zero in about {days_text(days)}{span}, around {zero_date} UTC"
    if forecast.significant:
        return f": {when}"
    sure = forecast.p_value is not None and forecast.p_value <= LEVEL
    if sure and forecast.used_days < MIN_SURE_DAYS:
        least = days_text(MIN_SURE_DAYS)
        return f", too few days to call significant ({least} at least): at that rate, {when}"
    return f", not significant at the {LEVEL:.0%} level: at that rate, {when}"


def _in_brackets(bounds: tuple[str, str]) -> str:
    """` (180-235)`; nothing where both bounds read alike (a clean line)."""
    return "" if bounds[0] == bounds[1] else f" ({_pair(*bounds)})"


def _pair(low: str, high: str) -> str:
    """`180-235`; `-30 to 450` where a hyphen would read as a minus; `70 or more`."""
    if high == "more":
        return f"{low} or more"
    return f"{low} to {high}" if low.startswith("-") or high.startswith("-") else f"{low}-{high}"


def rate_range(forecast: Forecast) -> tuple[str, str]:
    """The fall's bounds as the sentences give them (MiB/day)."""
    low, high = forecast.falls_low_mb_per_day, forecast.falls_high_mb_per_day
    assert low is not None and high is not None  # set unless there was too little data
    return short_number(low + 0.0), short_number(high + 0.0)


def _negated(forecast: Forecast) -> tuple[str, str]:
    """The rise's bounds (MiB/day): the fall's, negated and swapped."""
    low, high = forecast.falls_low_mb_per_day, forecast.falls_high_mb_per_day
    assert low is not None and high is not None
    return short_number(-high), short_number(-low)


def days_range(forecast: Forecast) -> tuple[str, str]:
    """The days to zero at the fast and the slow bound: `70`, `95` or `70`, `more`."""
    fast, slow = forecast.days_to_zero_low, forecast.days_to_zero_high
    assert fast is not None  # set when the estimate falls
    return short_number(fast), "more" if slow is None else short_number(slow)


def _rounded(value: float | None, digits: int = 1) -> float | None:
    # Adding 0.0 turns -0.0 into 0.0: "-0.0" in a JSON file reads as a bug. JSON has no
    # infinity: an unbounded side is null.
    if value is None or not math.isfinite(value):
        return None
    return round(value, digits) + 0.0


def _days(value: float) -> float | int | None:
    return int(value) if float(value).is_integer() else _rounded(value)


def to_json_dict(forecast: Forecast) -> dict[str, object]:
    """The forecast for forecast.json: MB (MiB) per day, days, ISO dates; None for null.
    `window_days` is the span judged (since the step, or the data there was, up to the
    longest window), `longest_window_days` what --trend-days asked for."""
    too_little = forecast.status is ForecastStatus.TOO_LITTLE_DATA
    step = forecast.step_at
    return {
        "basis": forecast.basis,
        "window_days": _days(min(forecast.window_days, _rounded(forecast.used_days) or 0.0)),
        "falls_MB_per_day": _rounded(forecast.falls_mb_per_day),
        "days_to_zero": _rounded(forecast.days_to_zero),
        "zero_date": None if forecast.zero_date is None else forecast.zero_date.isoformat(),
        "falls_MB_per_day_low": _rounded(forecast.falls_low_mb_per_day),
        "falls_MB_per_day_high": _rounded(forecast.falls_high_mb_per_day),
        "days_to_zero_low": _rounded(forecast.days_to_zero_low),
        "days_to_zero_high": _rounded(forecast.days_to_zero_high),
        "p_value": _rounded(forecast.p_value, 4),
        "level": LEVEL,
        "significant": None if too_little else forecast.significant,
        "longest_window_days": _days(forecast.window_days),
        "step_at": None if step is None else step.isoformat(timespec="minutes"),
        "step_MB": _rounded(forecast.step_mb),
    }
