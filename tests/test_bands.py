"""A long series is drawn as a band: per bucket of whole UTC hours its lowest, median and highest,
broken at outages; a short one keeps every point."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd
from hypothesis import given
from hypothesis import strategies as st
from matplotlib.collections import PolyCollection

from conftest import assert_real_png
from utils.outputs import plotting, system_plots
from utils.outputs.bands import (
    HOURS_WITHIN_A_DAY,
    MAX_HOUR_PX,
    Band,
    band_for,
    band_label,
    bucket_hours_for,
)

Times = npt.NDArray[np.datetime64]
START = np.datetime64("2026-01-01T00:00:00", "s")


def reference_band(
    times: Times, values: npt.NDArray[np.float64], width_px: float, threshold_s: float | None
) -> Band | None:
    """The band by a plain walk over the samples, one bucket at a time."""
    if len(times) <= width_px:
        return None
    span_hours = (times[-1] - times[0]) / np.timedelta64(1, "h")
    if span_hours * MAX_HOUR_PX < width_px:
        return None
    hours = bucket_hours_for(span_hours, width_px)
    rows: list[tuple[np.datetime64, float, float, float]] = []
    group: list[int] = []
    for index in range(len(times) + 1):
        if (
            index < len(times)
            and group
            and same_bucket(times, group[-1], index, hours, threshold_s)
        ):
            group.append(index)
            continue
        if group:
            known = sorted(float(values[i]) for i in group if not np.isnan(values[i]))
            first, last = times[group[0]], times[group[-1]]
            rows.append((first + (last - first) / 2, *summary(known)))
        if index < len(times) and group and outage(times, index, threshold_s):
            before, after = times[index - 1], times[index]
            rows.append((before + (after - before) / 2, np.nan, np.nan, np.nan))
        group = [index]
    moments, lowest, median, highest = zip(*rows, strict=True)
    return Band(
        np.array(moments),
        np.array(lowest, dtype=np.float64),
        np.array(median, dtype=np.float64),
        np.array(highest, dtype=np.float64),
        hours,
    )


def same_bucket(
    times: Times, previous: int, index: int, hours: int, threshold_s: float | None
) -> bool:
    def bucket(i: int) -> int:
        return int((times[i] - np.datetime64(0, "s")) // np.timedelta64(hours, "h"))

    return bucket(previous) == bucket(index) and not outage(times, index, threshold_s)


def outage(times: Times, index: int, threshold_s: float | None) -> bool:
    gap_s = (times[index] - times[index - 1]) / np.timedelta64(1, "s")
    return threshold_s is not None and gap_s > threshold_s


def summary(known: list[float]) -> tuple[float, float, float]:
    """Lowest, median, highest of sorted values; NaN for none."""
    if not known:
        return np.nan, np.nan, np.nan
    middle = len(known) // 2
    median = known[middle] if len(known) % 2 else (known[middle - 1] + known[middle]) / 2
    return known[0], median, known[-1]


steps_s = st.sampled_from([1, 59, 600, 3600, 5400, 7 * 3600, 3 * 86400])
series = st.lists(
    st.tuples(steps_s, st.one_of(st.floats(-1e6, 1e6), st.just(np.nan))), max_size=150
)


@given(
    series,
    st.integers(1, 40),
    st.sampled_from([None, 90.0, 4000.0]),
    st.sampled_from(["s", "ns"]),
)
def test_the_band_is_what_a_plain_walk_over_the_buckets_gives(
    rows: list[tuple[int, float]], width_px: int, threshold_s: float | None, unit: str
) -> None:
    offsets = np.cumsum([step for step, _ in rows], dtype=np.int64)
    times = (START + offsets.astype("timedelta64[s]")).astype(f"datetime64[{unit}]")
    values = np.array([value for _, value in rows], dtype=np.float64)
    got = band_for(times, values, width_px, threshold_s)
    want = reference_band(times, values, width_px, threshold_s)
    assert (got is None) == (want is None)
    if got is not None and want is not None:
        assert got.bucket_hours == want.bucket_hours
        np.testing.assert_array_equal(got.times, want.times)
        for mine, theirs in zip(got[1:4], want[1:4], strict=True):
            np.testing.assert_allclose(mine, theirs, rtol=1e-12, atol=0)


@given(st.floats(0, 24 * 365 * 20), st.integers(1, 2000))
def test_buckets_are_the_finest_that_fit_the_pixels(span_hours: float, width_px: int) -> None:
    hours = bucket_hours_for(span_hours, width_px)
    assert span_hours / hours < width_px
    finer = [h for h in (*HOURS_WITHIN_A_DAY, *range(24, hours, 24)) if h < hours]
    assert all(span_hours / h >= width_px for h in finer)
    assert hours in HOURS_WITHIN_A_DAY or hours % 24 == 0


def test_the_legend_names_the_bucket_used() -> None:
    assert band_label(1) == "hourly median; band: lowest to highest"
    assert band_label(6) == "6-hour median; band: lowest to highest"
    assert band_label(24) == "daily median; band: lowest to highest"
    assert band_label(72) == "3-day median; band: lowest to highest"


def every(step: str, count: int) -> Times:
    return START + np.arange(count) * np.timedelta64(int(pd.Timedelta(step).total_seconds()), "s")


def test_no_more_points_than_pixels_keeps_every_point() -> None:
    times = every("10min", 4320)  # a month
    values = np.arange(4320, dtype=np.float64)
    assert band_for(times, values, 4320, 900.0) is None
    assert band_for(times, values, 4319, 900.0) is not None
    # A month in the PNG: 4,320 points over 1,335 pixels.
    _figure, axes = plotting.new_figure()
    assert band_for(times[:1335], values[:1335], plotting.width_px(axes), 900.0) is None
    assert (
        plotting.plot_series(axes, plotting.Line(times[:1335], values[:1335], "x", "k"), 900.0)
        is None
    )
    (line,) = axes.get_lines()
    assert np.size(line.get_xdata()) == 1335 and not axes.collections


def test_a_short_span_keeps_every_point_however_many() -> None:
    # An hour at 1 s, a soak test: 3,600 points, but an hour band would be one dot.
    times = every("1s", 3600)
    assert band_for(times, np.zeros(3600), 1335, 1.5) is None
    # Six days at 1 min: hours more than 8 px wide still show their own shape; a week's do not.
    six_days, week = every("1min", 6 * 1440), every("1min", 7 * 1440)
    assert band_for(six_days, np.zeros(len(six_days)), 1335, 90.0) is None
    assert band_for(week, np.zeros(len(week)), 1335, 90.0) is not None


def test_outages_stay_breaks() -> None:
    # Every minute for 30 days, the collector down for 2 days, and for 20 minutes within an hour.
    times = every("1min", 30 * 1440)
    down = (
        (times >= START + np.timedelta64(10, "D")) & (times < START + np.timedelta64(12, "D"))
    ) | ((times >= np.datetime64("2026-01-20T05:20")) & (times < np.datetime64("2026-01-20T05:40")))
    times = times[~down]
    band = band_for(times, np.ones(len(times)), 1335, plotting.gap_threshold_s(times))
    assert band is not None and band.bucket_hours == 1
    breaks = band.times[np.isnan(band.median)]
    assert [str(moment) for moment in breaks] == ["2026-01-11T23:59:30", "2026-01-20T05:29:30"]
    assert np.isnan(band.lowest).sum() == np.isnan(band.highest).sum() == 2
    # The hour the short outage cuts in two is two buckets, one on each side.
    around = band.times[
        (band.times > np.datetime64("2026-01-20T05:00"))
        & (band.times < np.datetime64("2026-01-20T06:00"))
    ]
    assert [str(moment) for moment in around] == [
        "2026-01-20T05:09:30",
        "2026-01-20T05:29:30",
        "2026-01-20T05:49:30",
    ]


def noisy_month(tmp: Path) -> pd.DataFrame:
    """The system metrics of a month every 10 minutes, spiky, with a 2-day outage."""
    times = every("10min", 4320)
    times = times[
        (times < START + np.timedelta64(9, "D")) | (times >= START + np.timedelta64(11, "D"))
    ]
    rng = np.random.default_rng(7)
    used = 4000 + np.cumsum(rng.normal(0, 20, len(times))) + rng.exponential(150, len(times))
    return pd.DataFrame(
        {
            "RAM_Used_MB": used,
            "MemTotal_MB": 16384.0,
            "PSI_Some_Pct": rng.exponential(0.5, len(times)),
            "PSI_Full_Pct": rng.exponential(0.2, len(times)),
            "SwapIn_Pages_s": rng.exponential(5, len(times)),
            "SwapOut_Pages_s": rng.exponential(8, len(times)),
        },
        index=pd.DatetimeIndex(times),
    )


def test_a_long_span_is_drawn_as_a_band_in_a_real_png(tmp_path: Path) -> None:
    metrics = noisy_month(tmp_path)
    times = metrics.index.to_numpy()
    _figure, axes = plotting.new_figure()
    line = plotting.Line(times, metrics["RAM_Used_MB"].to_numpy(np.float64), "used", "#1f6fb4")
    band = plotting.plot_series(axes, line, plotting.gap_threshold_s(times))
    assert band is not None and band.bucket_hours == 1
    assert any(isinstance(artist, PolyCollection) for artist in axes.collections)
    labels = axes.get_legend_handles_labels()[1]
    assert labels == ["used", "hourly median; band: lowest to highest"]
    spec = system_plots.PLOT_SPECS[system_plots.PLOT_NAMES.index("ram_used_htop.png")]
    assert_real_png(system_plots.draw_plot(spec, metrics, tmp_path))
    assert_real_png(system_plots.draw_pressure(metrics, tmp_path))
