"""Modelled hosts' MemAvailable for the forecast, falling or flat, and the sweep that measures
how often the forecast calls each kind falling (docs/forecast.md quotes its table).

A host of 48 GiB holds about half of it available, through a daily cycle of +-800 MiB whose
size changes by up to 20% from day to day, a JVM's garbage collector that takes up to 1.5
GiB and gives it back every 2 hours, a nightly job of 3 GiB for an hour, a wander of 150 MiB
over hours, and optionally a wander of the days' levels (each day's median off the line by
up to `day_wander_mb`). A falling host's services leak, so that MemAvailable falls steadily.
Variants add busy days (2 GiB less for two days), a step (a service started or stopped for
good), a one-off burst, and a day-long outage of the collector.

    .venv/bin/python tests/memavailable_hosts.py --hosts 400 [--days-per-freedom 3]

prints, for each kind of host, how many of `--hosts` seeded hosts the forecast calls falling.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

from utils.judge import seasonal
from utils.judge.forecast import Forecast, ForecastStatus, forecast_available

DAY_S = 86_400
HOUR_S = 3_600
END = np.datetime64("2026-09-15T00:00:00", "s")
TOTAL_MB = 48 * 1024.0
Series = tuple[npt.NDArray[np.datetime64], npt.NDArray[np.float64]]
Floats = npt.NDArray[np.float64]


class Shape(NamedTuple):
    """One kind of modelled host (see `host`)."""

    days: int = 7
    falls: float = 0.0
    falls_days: float | None = None  # the fall starts this many days before the end
    interval_s: int = 600
    cycles: tuple[str, ...] = ("daily", "gc", "nightly")
    busy: bool = False
    step_mb: float = 0.0
    step_days: float | None = None  # None: somewhere in the middle 80% of the span
    outage: bool = False
    burst: bool = False
    day_wander_mb: float = 0.0
    hour_wander_mb: float = 150.0
    end_mb: float = 0.5 * TOTAL_MB


# The host: two weeks at 10 minutes, a step of -2.8 GiB nine days before the end
# when a service starts, then four leaking services take 200 MiB a day; the days' medians
# wander by +-150 MiB, a nightly job takes 3 GiB for an hour, a JVM swings 1.5 GiB every 2
# hours. It ends with 16 GiB available: 80 days to zero.
MODELLED = Shape(
    days=14,
    falls=200.0,
    falls_days=9.0,
    cycles=("gc", "nightly"),
    step_mb=-2867.0,
    step_days=9.0,
    day_wander_mb=150.0,
    hour_wander_mb=0.0,
    end_mb=16_000.0,
)


def host(seed: int, shape: Shape | None = None) -> Series:
    """MemAvailable of one modelled host over `shape.days` days ending at END."""
    shape = Shape() if shape is None else shape
    # One generator per part, so that a part's draws do not depend on the others'.
    rng, wander_rng = (
        np.random.default_rng(child) for child in np.random.SeedSequence(seed).spawn(2)
    )
    days = shape.days
    age = np.arange(0, days * DAY_S + 1, shape.interval_s)[::-1].astype(np.float64)
    age_days = age / DAY_S
    falling_for = np.minimum(age_days, days if shape.falls_days is None else shape.falls_days)
    values = shape.end_mb + shape.falls * falling_for + _cycles(rng, age, shape)
    if shape.busy:
        first = rng.integers(0, days - 2)
        values -= 2048 * ((age_days >= first) & (age_days < first + 2))
    if shape.step_mb:  # before the step, MemAvailable stood step_mb higher
        at = rng.uniform(0.1, 0.9) * days if shape.step_days is None else shape.step_days
        values -= shape.step_mb * (age_days > at)
    if shape.burst:  # a one-off job: 3 GiB for an hour, once
        start = rng.uniform(0, days - 1 / 24) * DAY_S
        values -= 3072 * ((age >= start) & (age < start + HOUR_S))
    values += _wander(rng, age, shape.hour_wander_mb) + rng.normal(0, 50, age.size)
    values += day_wander(wander_rng, age_days, shape.day_wander_mb)
    times = END - age.astype("timedelta64[s]")
    if shape.outage:
        start = rng.uniform(1, days - 2) * DAY_S
        kept = (age < start) | (age > start + DAY_S)
        times, values = times[kept], values[kept]
    return times, values


def _cycles(rng: np.random.Generator, age: Floats, shape: Shape) -> Floats:
    """The daily cycle, the collector's 2-hour swing and the nightly job."""
    values = np.zeros(age.size)
    phase = rng.uniform(0, 1)
    if "daily" in shape.cycles:
        size = 1 + rng.uniform(-0.2, 0.2, shape.days + 2)[(age / DAY_S + phase).astype(int)]
        values += 800 * size * np.sin(2 * np.pi * (age / DAY_S + phase))
    if "gc" in shape.cycles:  # the collector frees what it took, every two hours
        period = 2 * HOUR_S
        values -= 1536 * ((age + rng.uniform(0, period)) % period) / period
    if "nightly" in shape.cycles:
        values -= 3072 * (((age / HOUR_S + rng.uniform(0, 24)) % 24) < 1)
    return values


def _wander(rng: np.random.Generator, age: Floats, size_mb: float) -> Floats:
    """An AR(1) wander of `size_mb` (its deviation) that forgets in 6 hours, drawn every
    10 minutes."""
    steps = int(age.max() // 600) + 2
    keep = float(np.exp(-600 / (6 * HOUR_S)))
    shocks = rng.normal(0, size_mb * np.sqrt(1 - keep * keep), steps)
    wander = np.empty(steps)
    wander[0] = rng.normal(0, size_mb)
    for k in range(1, steps):
        wander[k] = keep * wander[k - 1] + shocks[k]
    result: Floats = np.interp(age, np.arange(steps) * 600.0, wander)
    return result


def day_wander(rng: np.random.Generator, age_days: Floats, amplitude_mb: float) -> Floats:
    """Each day's level off the line by up to `amplitude_mb` either way, drawn at each
    day's middle and joined smoothly (a cosine between them)."""
    count = int(age_days.max()) + 3
    offsets = rng.uniform(-amplitude_mb, amplitude_mb, count)
    position = age_days + 0.5  # 0 at the middle of the latest day
    whole = np.floor(position).astype(int)
    blend = (1 - np.cos(np.pi * (position - whole))) / 2
    result: Floats = offsets[whole] * (1 - blend) + offsets[whole + 1] * blend
    return result


def true_rate(seed: int, shape: Shape, since_days: float) -> float:
    """The fall the data of `host(seed, shape)` hold over the last `since_days`: the planted
    rate plus the least-squares slope of that host's day wander there (the cycles are whole
    days and cancel; a line can do no better than this)."""
    age_days = np.arange(0, since_days * DAY_S + 1, shape.interval_s)[::-1] / DAY_S
    wander_rng = np.random.default_rng(np.random.SeedSequence(seed).spawn(2)[1])
    wander = day_wander(
        wander_rng,
        np.arange(0, shape.days * DAY_S + 1, shape.interval_s)[::-1] / DAY_S,
        shape.day_wander_mb,
    )
    wander = wander[-age_days.size :]
    slope = float(np.polyfit(-age_days, wander, 1)[0])
    return shape.falls - slope


def forecast(series: Series, window_days: float = 28.0) -> Forecast:
    return forecast_available(series[0], series[1], window_days)


FLAT_SHAPES: dict[str, Shape] = {
    "flat, every cycle": Shape(),
    "flat, every cycle, 1 minute": Shape(interval_s=60),
    "flat, no cycle": Shape(cycles=()),
    "flat, the 2-hour collector only": Shape(cycles=("gc",)),
    "flat, day wander +-150 MiB": Shape(day_wander_mb=150.0),
    "flat, two weeks, day wander +-300 MiB": Shape(days=14, day_wander_mb=300.0),
    "flat, two busy days (2 GiB less)": Shape(busy=True),
    "flat, a step down of 2 GiB": Shape(step_mb=-2048.0),
    "flat, a step up of 2 GiB": Shape(step_mb=2048.0),
    "flat, two weeks, the modelled step and wander": MODELLED._replace(falls=0.0),
    "flat, a one-off 3 GiB hour": Shape(burst=True),
    "flat, a day-long outage": Shape(outage=True),
}
FALLING_SHAPES: dict[str, Shape] = {
    "the modelled host (200 MiB/day since the step)": MODELLED,
    "falling 200 MiB/day, a week": Shape(falls=200.0),
    "falling 100 MiB/day, a week": Shape(falls=100.0),
    "falling 50 MiB/day, a week": Shape(falls=50.0),
    "falling 50 MiB/day, two weeks, day wander +-150": Shape(
        days=14, falls=50.0, day_wander_mb=150.0
    ),
}


def called_falling(shape: Shape, hosts: int, first_seed: int) -> int:
    """How many of `hosts` seeded hosts of a shape the forecast calls falling."""
    return sum(
        forecast(host(first_seed + seed, shape)).status is ForecastStatus.FALLING
        for seed in range(hosts)
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hosts", type=int, default=400, help="hosts of each kind")
    parser.add_argument("--first-seed", type=int, default=10_000)
    parser.add_argument(
        "--days-per-freedom",
        type=int,
        default=seasonal.DAYS_PER_FREEDOM,
        help="try another rule for the test's degrees of freedom (days / this)",
    )
    args = parser.parse_args(argv)
    seasonal.DAYS_PER_FREEDOM = args.days_per_freedom
    flat_total = flat_falling = 0
    print("| host | called falling |\n| --- | --- |")
    for name, shape in {**FLAT_SHAPES, **FALLING_SHAPES}.items():
        count = called_falling(shape, args.hosts, args.first_seed)
        print(f"| {name} | {count} of {args.hosts} |", flush=True)
        if name in FLAT_SHAPES:
            flat_total, flat_falling = flat_total + args.hosts, flat_falling + count
    print(f"| all flat hosts | {flat_falling} of {flat_total} ({flat_falling / flat_total:.1%}) |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
