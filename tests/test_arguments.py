"""The argument types with units: durations and rates of growth, and the flags that use them."""

from __future__ import annotations

import argparse
import contextlib
import io
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

import analyze_processes
from utils.console import DURATION_UNITS, RATE_UNITS, duration_arg, rate_arg

DAY_S = 86_400


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90), ("10m", 600), ("10min", 600), ("2h", 7200), ("2d", 2 * DAY_S), ("1.5d", 1.5 * DAY_S),
     ("1w", 7 * DAY_S), (" 30 S ", 30), ("0s", 0), ("1e2s", 100)],
)  # fmt: skip
def test_durations_with_units(text: str, seconds: float) -> None:
    assert duration_arg(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    "text", ["10", "", "m", "-5m", "10 years", "1.2.3h", "infm", "nanh", "2d4h"]
)
def test_a_duration_without_a_known_unit_is_refused(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="not a duration with a unit"):
        duration_arg(text)


@pytest.mark.parametrize(
    ("text", "mib_per_day"),
    [("10", 10.0), ("10MiB/d", 10.0), ("40MiB/h", 960.0), ("40MB/h", 960.0), ("1mib/min", 1440.0),
     ("1MiB/s", 86_400.0), ("10/d", 10.0), ("0.5", 0.5)],
)  # fmt: skip
def test_rates_with_units(text: str, mib_per_day: float) -> None:
    assert rate_arg(text) == pytest.approx(mib_per_day)


@pytest.mark.parametrize(
    "text", ["10d", "MiB/h", "-1", "10GiB/d", "10MiB/fortnight", "10MiB", "1e999"]
)
def test_a_rate_that_is_not_one_is_refused(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        rate_arg(text)


@given(
    value=st.floats(min_value=0, max_value=1e6, allow_nan=False),
    unit=st.sampled_from(sorted(DURATION_UNITS)),
)
def test_any_duration_reads_back_in_seconds(value: float, unit: str) -> None:
    assert math.isclose(duration_arg(f"{value!r}{unit}"), value * DURATION_UNITS[unit])


@given(
    value=st.floats(min_value=0, max_value=1e6, allow_nan=False),
    unit=st.sampled_from(sorted(RATE_UNITS)),
    size=st.sampled_from(["MiB", "MB", "mib", ""]),
)
def test_any_rate_reads_back_in_mib_per_day(value: float, unit: str, size: str) -> None:
    assert math.isclose(rate_arg(f"{value!r}{size}/{unit}"), value * RATE_UNITS[unit])


@given(text=st.text(max_size=20))
def test_any_text_is_a_duration_or_a_usage_error(text: str) -> None:
    try:
        seconds = duration_arg(text)
    except argparse.ArgumentTypeError:
        return
    assert math.isfinite(seconds) and seconds >= 0


@given(text=st.text(max_size=20))
def test_any_text_is_a_rate_or_a_usage_error(text: str) -> None:
    try:
        rate = rate_arg(text)
    except argparse.ArgumentTypeError:
        return
    assert math.isfinite(rate) and rate >= 0


def test_the_flags_reach_the_leak_finder() -> None:
    parser = analyze_processes.build_parser()
    args = parser.parse_args(["--min-span", "10m", "--min-growth", "40MiB/h", "--min-rise", "5"])
    assert (args.min_span, args.min_growth, args.min_rise) == (600, 960, 5)
    assert parser.parse_args(["--min-days", "0.5"]).min_span == DAY_S / 2
    defaults = parser.parse_args([])
    assert defaults.min_span is None
    assert defaults.min_growth == analyze_processes.LEAK_MIN_RATE_MB_PER_DAY


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--min-span", "10"], "not a duration with a unit"),
        (["--min-span", "1h", "--min-days", "2"], "not allowed with argument"),
        (["--min-growth", "fast"], "not a rate"),
    ],
)
def test_bad_leak_flags_are_usage_errors(flags: list[str], message: str) -> None:
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr), pytest.raises(SystemExit) as stopped:
        analyze_processes.main(flags)
    assert stopped.value.code == 2
    assert message in stderr.getvalue()
