"""The alert rules: what each flag holds on, the report's bounds derived from the same rule,
and the lines the system analysis prints for the alerts that hold."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from utils.judge.alerts import (
    DAYS_ALERT,
    PCT_ALERT,
    Threshold,
    check_alerts,
    leak_alert_holds,
    oom_alert_holds,
)
from utils.judge.forecast import ForecastStatus
from utils.judge.system_metrics import SystemOptions, SystemSummary, compute_metrics, summarize
from utils.reduce.counters import OomInterval


def bound_of(threshold: Threshold, value: float) -> float:
    text = threshold.holds_for(value)
    sign = "≤" if threshold.at_least else "≥"
    prefix = f"{threshold.metavar} {sign} "
    assert text.startswith(prefix)
    return float(text.removeprefix(prefix))


@pytest.mark.parametrize(
    ("threshold", "value", "text"),
    [
        (PCT_ALERT, 87.456, "P ≤ 87.45"),
        (PCT_ALERT, 0.29, "P ≤ 0.29"),  # 0.29 * 100 is 28.999...: floored, one step short
        (PCT_ALERT, 100.0, "P ≤ 100.00"),
        (DAYS_ALERT, 12.31, "D ≥ 12.4"),
        (DAYS_ALERT, 12.3, "D ≥ 12.3"),
        (DAYS_ALERT, 0.0, "D ≥ 0.0"),
    ],
)
def test_the_reports_bound_by_hand(threshold: Threshold, value: float, text: str) -> None:
    assert threshold.holds_for(value) == text


@given(
    st.sampled_from([PCT_ALERT, DAYS_ALERT]),
    st.floats(min_value=0, max_value=10_000, allow_nan=False)
    | st.integers(0, 1_000_000).map(lambda n: n / 100),
)
def test_the_reports_bound_is_the_last_number_the_rule_holds_for(
    threshold: Threshold, value: float
) -> None:
    bound = bound_of(threshold, value)
    step = 10.0**-threshold.decimals
    outward = bound + step if threshold.at_least else bound - step
    assert threshold.holds(value, bound)
    assert not threshold.holds(value, round(outward, threshold.decimals))


def test_the_rules() -> None:
    assert PCT_ALERT.holds(90.0, 90.0) and not PCT_ALERT.holds(89.99, 90.0)
    assert DAYS_ALERT.holds(14.0, 14.0) and not DAYS_ALERT.holds(14.01, 14.0)
    assert not DAYS_ALERT.holds(None, 1e9)  # MemAvailable does not fall: never
    assert oom_alert_holds(1) and not oom_alert_holds(0)
    assert leak_alert_holds(1) and not leak_alert_holds(0)


def small_summary() -> SystemSummary:
    """Three snapshots ten minutes apart, 60 % used at the last."""
    times = pd.DatetimeIndex(["2026-03-01 10:00", "2026-03-01 10:10", "2026-03-01 10:20"])
    raw = pd.DataFrame(
        {
            "MemTotal_MB": 1000.0,
            "MemFree_MB": [300.0, 200.0, 100.0],
            "Buffers_MB": 50.0,
            "Cached_MB": 200.0,
            "SReclaimable_MB": 50.0,
            "SwapTotal_MB": 0.0,
            "SwapFree_MB": 0.0,
            "MemAvailable_MB": [500.0, 400.0, 300.0],
        },
        index=times,
    )
    return summarize(compute_metrics(raw), trend_days=7)


def test_only_the_alerts_asked_for_and_holding_are_raised() -> None:
    summary = small_summary()
    falling = replace(
        summary.forecast,
        days_to_zero=12.34,
        days_to_zero_low=10.0,
        days_to_zero_high=None,
        zero_date=date(2026, 3, 13),
        status=ForecastStatus.FALLING,
        significant=True,
    )
    summary = replace(summary, forecast=falling)
    kill = OomInterval(
        np.datetime64("2026-03-01T10:00:00"), np.datetime64("2026-03-01T10:10:00"), 2, [], False
    )
    summary = replace(summary, ooms=[kill])
    assert check_alerts(summary, 60.0, SystemOptions(7)) == []
    # --alert-days reads the fast end of the range (10.0 days), only while the fall is
    # significant.
    nothing = SystemOptions(7, alert_pct=60.01, alert_days=9.9, fail_on_oom=False)
    assert check_alerts(summary, 60.0, nothing) == []
    unsure = replace(falling, status=ForecastStatus.NOT_FALLING, significant=False)
    asked = SystemOptions(7, alert_days=100)
    assert check_alerts(replace(summary, forecast=unsure), 60.0, asked) == []
    everything = SystemOptions(7, alert_pct=60, alert_days=10, fail_on_oom=True)
    assert check_alerts(summary, 60.0, everything) == [
        "RAM used (htop) is 60.00% of MemTotal at the last snapshot (2026-03-01 10:20:00 UTC),"
        " at or above --alert-pct 60",
        "MemAvailable reaches 0 in about 12.3 days (10.0 to more), around 2026-03-13 UTC,"
        " within --alert-days 10",
        "2 OOM kills in the window, the last between 2026-03-01 10:00:00 and"
        " 2026-03-01 10:10:00 UTC",
    ]
    assert check_alerts(replace(summary, ooms=[]), 60.0, everything)[2:] == []
