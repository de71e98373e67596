"""The forecast on modelled hosts: MemAvailable under the cycles real hosts have, falling or flat.

The hosts come from tests/memavailable_hosts.py: a 48 GiB host through a daily cycle, a
JVM's 2-hour swing, a nightly job and a wander; falling hosts leak. Variants add busy days,
a step, a day-long outage; the issue's modelled host adds a step nine days before the end
and a wander of the days' levels. docs/forecast.md has the rates measured over more hosts.
"""

from __future__ import annotations

import json
from pathlib import Path

import memavailable_hosts as hosts
import numpy as np
import numpy.typing as npt
import pytest

import analyze_system
from conftest import run_main, write_sys
from utils.judge.forecast import (
    LEVEL,
    Forecast,
    ForecastStatus,
    describe,
    forecast_available,
    to_json_dict,
)

TOTAL_MB = hosts.TOTAL_MB
Series = tuple[npt.NDArray[np.datetime64], npt.NDArray[np.float64]]


def host(
    seed: int,
    falls: float = 0.0,
    interval_s: int = 600,
    cycles: tuple[str, ...] = ("daily", "gc", "nightly"),
    busy: bool = False,
    step_mb: float = 0.0,
    outage: bool = False,
    days: int = 7,
) -> Series:
    """MemAvailable of one modelled host over `days` days (tests/memavailable_hosts.py);
    `step_mb`: MemAvailable stood this much higher before a step somewhere in the span."""
    shape = hosts.Shape(
        days=days,
        falls=falls,
        interval_s=interval_s,
        cycles=cycles,
        busy=busy,
        step_mb=-step_mb,
        outage=outage,
    )
    return hosts.host(seed, shape)


def forecast(series: Series) -> Forecast:
    return forecast_available(series[0], series[1], 7)


def assert_within_bounds(result: Forecast, truth: float) -> None:
    low, high = result.falls_low_mb_per_day, result.falls_high_mb_per_day
    assert low is not None and high is not None
    assert low <= truth <= high, (low, result.falls_mb_per_day, high)


INTERVALS = [10, 60, 600]


@pytest.mark.parametrize("interval_s", INTERVALS)
@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize(
    "variant",
    [{}, {"cycles": ()}, {"cycles": ("gc",)}, {"outage": True}],
    ids=["all-cycles", "no-cycle", "gc-only", "outage"],
)
def test_a_host_that_leaks_200_mib_a_day_is_falling_within_its_bounds(
    interval_s: int, seed: int, variant: dict[str, object]
) -> None:
    result = forecast(host(seed, falls=200.0, interval_s=interval_s, **variant))  # type: ignore[arg-type]
    assert result.status is ForecastStatus.FALLING
    assert_within_bounds(result, 200.0)
    days, fast, slow = result.days_to_zero, result.days_to_zero_low, result.days_to_zero_high
    assert days is not None and fast is not None and slow is not None and fast <= days <= slow


@pytest.mark.parametrize("interval_s", INTERVALS)
@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize(
    "variant",
    [{}, {"cycles": ()}, {"cycles": ("gc",)}, {"outage": True}, {"busy": True},
     {"step_mb": 2048.0}, {"step_mb": -2048.0}],
    ids=["all-cycles", "no-cycle", "gc-only", "outage", "busy-days", "step-down", "step-up"],
)  # fmt: skip
def test_a_flat_host_has_no_downward_trend(
    interval_s: int, seed: int, variant: dict[str, object]
) -> None:
    result = forecast(host(seed, interval_s=interval_s, **variant))  # type: ignore[arg-type]
    assert result.status is not ForecastStatus.FALLING and not result.significant
    if result.status is ForecastStatus.NOT_FALLING:
        assert_within_bounds(result, 0.0)


@pytest.mark.slow
def test_flat_hosts_are_called_falling_no_more_often_than_the_level_promises() -> None:
    """200 flat hosts, 40 of each shape: at a 1% level about 2 say "falling" by chance;
    more than 5 (a chance of under 2% for a test that keeps its level) means it does not."""
    shapes: list[dict[str, object]] = [
        {},
        {"cycles": ("gc",)},
        {"busy": True},
        {"step_mb": 2048.0},
        {"outage": True},
    ]
    falling = sum(
        forecast(host(1000 + seed, **shapes[seed % 5])).status is ForecastStatus.FALLING  # type: ignore[arg-type]
        for seed in range(200)
    )
    assert LEVEL == 0.01
    assert falling <= 5


def test_the_98_percent_bounds_hold_the_true_rate_about_98_times_in_100() -> None:
    held = 0
    for seed in range(100):
        result = forecast(host(2000 + seed, falls=200.0))
        low, high = result.falls_low_mb_per_day, result.falls_high_mb_per_day
        held += low is not None and high is not None and low <= 200.0 <= high
    assert held >= 93


def write_host(dumps: Path, series: Series) -> Path:
    dumps.mkdir()
    for moment, available in zip(*series, strict=True):
        stamp = str(moment.astype("datetime64[s]")).replace("-", "").replace(":", "")
        write_sys(
            dumps, stamp.replace("T", "_"), MemTotal=TOTAL_MB, MemAvailable=available,
            MemFree=available - 4000, Buffers=200.0, Cached=3000.0, SReclaimable=800.0,
            SwapTotal=0.0, SwapFree=0.0, Shmem=100.0,
        )  # fmt: skip
    return dumps


@pytest.mark.slow
def test_the_leaking_host_alerts_within_150_days_and_the_flat_one_not_within_365(
    tmp_path: Path,
) -> None:
    leaking = write_host(tmp_path / "leaking", host(3, falls=200.0))
    ran = run_main(
        analyze_system.main,
        ["--dumps-dir", str(leaking), "--out-dir", str(tmp_path / "out1"), "--alert-days", "150"],
    )
    assert ran.status == 3, ran.stderr
    saved = json.loads((tmp_path / "out1" / "forecast.json").read_text())
    assert saved["days_to_zero"] < 150 and saved["falls_MB_per_day_low"] < 200
    line = next(text for text in ran.stdout.splitlines() if text.startswith("MemAvailable"))
    assert (
        line.startswith("MemAvailable falls ")
        and " over the 7 days of data: zero in about " in line
    )
    assert f"around {saved['zero_date']} UTC" in line
    assert ran.stderr.startswith(
        f"analyze_system: alert: MemAvailable reaches 0 in about {saved['days_to_zero']:,.1f} days"
    )
    flat = write_host(tmp_path / "flat", host(3))
    ran = run_main(
        analyze_system.main,
        ["--dumps-dir", str(flat), "--out-dir", str(tmp_path / "out2"), "--alert-days", "365"],
    )
    assert ran.status == 0 and ran.stderr == ""
    assert "zero in about" not in ran.stdout or "not significant at the 1% level" in ran.stdout


# --- The modelled host and the sweep (tests/memavailable_hosts.py) -------------------


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_modelled_host_falls_since_its_step_at_the_rate_its_data_hold(seed: int) -> None:

    result = hosts.forecast(hosts.host(seed, hosts.MODELLED))
    assert result.status is ForecastStatus.FALLING and result.significant
    assert result.step_at is not None and result.step_at.date().isoformat() == "2026-09-06"
    assert result.falls_mb_per_day == pytest.approx(
        hosts.true_rate(seed, hosts.MODELLED, 9.0), rel=0.05
    )
    assert result.days_to_zero is not None and 65 <= result.days_to_zero <= 95
    text = describe(result)
    assert " over the 9 days since the step on 2026-09-06 (" in text and "zero in about" in text


@pytest.mark.slow
def test_flat_hosts_of_every_shape_keep_the_level_in_the_sweep() -> None:

    falling = sum(hosts.called_falling(shape, 40, 50_000) for shape in hosts.FLAT_SHAPES.values())
    total = 40 * len(hosts.FLAT_SHAPES)
    assert falling <= 10, (falling, total)  # 480 hosts at 1%: about 5 by chance
    assert hosts.called_falling(hosts.MODELLED, 40, 50_000) == 40


def test_the_modelled_host_sampled_every_minute_says_the_same() -> None:
    ten_minutes = hosts.forecast(hosts.host(1, hosts.MODELLED))
    minute = hosts.forecast(hosts.host(1, hosts.MODELLED._replace(interval_s=60)))
    assert minute.status is ForecastStatus.FALLING and minute.step_at == ten_minutes.step_at
    assert minute.falls_mb_per_day == pytest.approx(ten_minutes.falls_mb_per_day, rel=0.05)


def test_the_modelled_host_in_forecast_json() -> None:
    saved = to_json_dict(hosts.forecast(hosts.host(2, hosts.MODELLED)))
    assert saved["significant"] is True and saved["window_days"] == 9
    assert saved["longest_window_days"] == 28 and saved["step_at"] == "2026-09-06T00:00"
    assert isinstance(saved["step_MB"], float) and -3200 < saved["step_MB"] < -2500
    assert isinstance(saved["days_to_zero"], float) and 65 < saved["days_to_zero"] < 95


@pytest.mark.slow
def test_the_modelled_host_alerts_within_150_days_from_its_dumps(tmp_path: Path) -> None:
    dumps = write_host(tmp_path / "modelled", hosts.host(3, hosts.MODELLED))
    out = tmp_path / "out"
    args = ["--dumps-dir", str(dumps), "--out-dir", str(out), "--no-plots"]
    ran = run_main(analyze_system.main, [*args, "--alert-days", "150"])
    assert ran.status == 3, ran.stderr
    saved = json.loads((out / "forecast.json").read_text())
    assert saved["significant"] is True and saved["window_days"] == 9
    assert any(
        text.startswith("MemAvailable falls ") and "since the step on 2026-09-06" in text
        for text in ran.stdout.splitlines()
    ), ran.stdout
