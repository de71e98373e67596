"""The breakdown of MemTotal and what changed: exact parts from meminfo rows, the default
periods, --compare and its usage errors, and a modelled week whose used memory rises for
reasons no process table names (tmpfs, a slab leak, a driver)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

import analyze_system
from conftest import run_main, write_sys
from utils.core.text import signed
from utils.judge import breakdown
from utils.judge.breakdown import (
    BREAKDOWN_COLUMNS,
    Period,
    compare,
    compute_breakdown,
    default_periods,
    format_comparison,
    parse_period,
)

# One meminfo snapshot, MiB, as proc.rst names the fields.
ROW = {
    "MemTotal_MB": 16000.0,
    "MemFree_MB": 5000.0,
    "Buffers_MB": 100.0,
    "Cached_MB": 6000.0,
    "SwapCached_MB": 50.0,
    "Shmem_MB": 1000.0,
    "AnonPages_MB": 2500.0,
    "SReclaimable_MB": 400.0,
    "SUnreclaim_MB": 300.0,
    "KernelStack_MB": 20.0,
    "PageTables_MB": 30.0,
}


def frame(*rows: dict[str, float]) -> pd.DataFrame:
    index = pd.date_range("2026-03-01", periods=len(rows), freq="10min")
    return pd.DataFrame(list(rows), index=index)


def test_the_parts_are_the_kernels_fields_and_sum_to_memtotal() -> None:
    parts = compute_breakdown(frame(ROW))
    assert list(parts.columns) == list(BREAKDOWN_COLUMNS)
    assert parts.iloc[0].to_dict() == {
        "Free_MB": 5000.0,
        "PageCache_MB": 100.0 + 6000.0 + 50.0 - 1000.0,
        "Shmem_MB": 1000.0,
        "Anon_MB": 2500.0,
        "SlabReclaimable_MB": 400.0,
        "SlabUnreclaimable_MB": 300.0,
        "KernelStack_MB": 20.0,
        "PageTables_MB": 30.0,
        "Unaccounted_MB": 16000.0 - 5000.0 - 5150.0 - 1000.0 - 2500.0 - 400.0 - 300.0 - 50.0,
    }
    assert parts.iloc[0]["Unaccounted_MB"] == 1600.0
    assert parts.sum(axis=1).tolist() == [16000.0]


def test_a_field_the_kernel_lacks_folds_into_unaccounted() -> None:
    old = {key: value for key, value in ROW.items() if key not in ("SUnreclaim_MB", "Shmem_MB")}
    parts = compute_breakdown(frame(old)).iloc[0]
    assert parts["SlabUnreclaimable_MB"] == 0.0 and parts["Shmem_MB"] == 0.0
    assert parts["PageCache_MB"] == 6150.0  # Cached holds Shmem: it stays page cache
    assert parts["Unaccounted_MB"] == 1600.0 + 300.0
    assert breakdown.missing_fields(frame(old)) == ["SUnreclaim"]  # Shmem folds nowhere


@given(
    st.lists(
        st.fixed_dictionaries(
            {name: st.floats(0, 2**30) for name in ROW},
        ),
        min_size=1,
        max_size=5,
    )
)
def test_every_row_sums_to_memtotal(rows: list[dict[str, float]]) -> None:
    parts = compute_breakdown(frame(*rows))
    totals = np.array([row["MemTotal_MB"] for row in rows])
    assert np.allclose(parts.sum(axis=1).to_numpy(), totals, rtol=0, atol=1e-6 * 2**30)


def test_the_default_is_the_first_whole_day_against_the_last() -> None:
    times = pd.date_range("2026-03-01 09:30", "2026-03-05 23:50", freq="10min")
    first, last = default_periods(pd.DatetimeIndex(times)) or (None, None)
    assert first is not None and last is not None
    assert (first.name, last.name) == ("2026-03-02", "2026-03-05")
    assert (first.start, last.end) == (
        datetime(2026, 3, 2),
        datetime(2026, 3, 6) - timedelta(microseconds=1),
    )


def test_a_whole_day_lost_to_an_outage_is_skipped() -> None:
    times = pd.date_range("2026-03-01 00:00", "2026-03-05 23:50", freq="10min")
    lost = {datetime(2026, 3, 1).date(), datetime(2026, 3, 5).date()}  # the outages
    kept = pd.DatetimeIndex([t for t in times if t.date() not in lost])
    first, last = default_periods(pd.DatetimeIndex(kept)) or (None, None)
    assert first is not None and last is not None
    assert (first.name, last.name) == ("2026-03-02", "2026-03-04")


def test_a_soak_test_compares_its_first_quarter_with_its_last() -> None:
    times = pd.date_range("2026-03-01 10:00", "2026-03-01 10:20", freq="1s")
    first, last = default_periods(pd.DatetimeIndex(times)) or (None, None)
    assert first is not None and last is not None
    assert first.name == "2026-03-01 10:00:00 to 10:05:00"
    assert last.name == "2026-03-01 10:15:00 to 10:20:00"
    assert default_periods(pd.DatetimeIndex(times[:1])) is None


def test_periods_parse_as_days_minutes_and_ranges() -> None:
    day = parse_period("2026-03-02")
    assert (day.start, day.name) == (datetime(2026, 3, 2), "2026-03-02")
    span = parse_period("2026-03-02 10:00..2026-03-02 12:00")
    assert (span.start, span.end) == (datetime(2026, 3, 2, 10), datetime(2026, 3, 2, 12, 0, 59))
    for bad in ("monday", "2026-03-02..2026-03-01", "2026-02-30", "..", "2026-03-02.."):
        with pytest.raises(ValueError):
            parse_period(bad)


@given(st.text(max_size=40))
def test_a_period_is_parsed_or_refused_with_a_value_error(text: str) -> None:
    try:
        period = parse_period(text)
    except ValueError:
        return
    assert period.start <= period.end


# --- A modelled week ------------------------------------------------------------------

ROW_TEXT = re.compile(r"  (.+?) +([+-][0-9,]+) MiB(?:  (-?[0-9]+)% of the rise)?")
START = datetime(2026, 3, 2)
STEP = timedelta(minutes=10)
SNAPSHOTS = 7 * 144


def write_week(dumps: Path, gap: range = range(0)) -> Path:
    """32 GiB; over the week a tmpfs fills (+1,300 MiB), a slab leaks (+400 MiB), a driver
    takes 800 MiB that no field shows, and processes hold steady with a daily cycle."""
    dumps.mkdir()
    for index in range(SNAPSHOTS):
        if index in gap:
            continue
        moment = START + index * STEP
        share = index / (SNAPSHOTS - 1)
        cycle = 300 * np.sin(2 * np.pi * index / 144)
        anon = 8000 + cycle
        shmem, slab, driver = 200 + 1300 * share, 300 + 400 * share, 800 * share
        cached = 9000 + shmem
        used = anon + shmem + slab + driver + 500 + 100 + 60  # + reclaimable slab, stacks, tables
        free = 32768 - used - (cached - shmem) - 50
        write_sys(
            dumps,
            f"{moment:%Y%m%d_%H%M%S}",
            MemTotal=32768.0,
            MemFree=free,
            MemAvailable=free + cached - shmem + 500,
            Buffers=50.0,
            Cached=cached,
            Shmem=shmem,
            AnonPages=anon,
            SReclaimable=500.0,
            SUnreclaim=slab,
            KernelStack=100.0,
            PageTables=60.0,
        )
    return dumps


def test_the_week_names_tmpfs_the_driver_and_the_slab_largest_first(tmp_path: Path) -> None:
    dumps = write_week(tmp_path / "dumps")
    out = tmp_path / "out"
    ran = run_main(analyze_system.main, ["--dumps-dir", str(dumps), "--out-dir", str(out)])
    assert ran.status == 0, ran.stderr
    section = ran.stdout.split("What changed: ")[1].split("\n\n")[0].splitlines()
    assert section[0] == "2026-03-02 against 2026-03-08 (medians)"
    rows = [ROW_TEXT.fullmatch(line) for line in section[1:]]
    assert all(rows), section
    found = {m[1]: (m[2], m[3]) for m in rows if m is not None}
    assert [m[1] for m in rows if m is not None][1:4] == [
        "Shmem (tmpfs, shared memory)",
        "unaccounted (drivers, GPU, ZFS ARC, ...)",
        "slab, unreclaimable",
    ]
    # Six days apart: the medians of two whole days lie 6 * 144 snapshots apart.
    apart = 6 * 144 / (SNAPSHOTS - 1)
    assert found["RAM used (MemTotal - MemAvailable)"] == (f"{2500 * apart:+,.0f}", None)
    assert found["Shmem (tmpfs, shared memory)"] == (f"{1300 * apart:+,.0f}", "52")
    assert found["unaccounted (drivers, GPU, ZFS ARC, ...)"] == (f"{800 * apart:+,.0f}", "32")
    assert found["slab, unreclaimable"] == (f"{400 * apart:+,.0f}", "16")
    assert found["page cache (files)"] == ("+0", "0")
    table = pd.read_csv(out / "memory_breakdown.csv")
    assert list(table.columns) == ["timestamp", *BREAKDOWN_COLUMNS]
    assert np.allclose(table[list(BREAKDOWN_COLUMNS)].sum(axis=1), 32768.0, atol=0.01)
    assert (out / "memory_breakdown.png").stat().st_size > 10_000


@pytest.mark.slow
@pytest.mark.parametrize(
    ("periods", "why"),
    [
        (
            ["2026-03-04 01:00..2026-03-04 02:00", "2026-03-08"],
            "2026-03-04 01:00:00 to 02:00:59 (in a gap in collection from 2026-03-04 00:50:00"
            " to 2026-03-04 03:10:00) holds no snapshot",
        ),
        (["2026-02-01", "2026-04-01"], "2026-02-01; 2026-04-01 hold no snapshot"),
    ],
    ids=["in-an-outage", "outside-the-data"],
)
def test_a_compare_period_without_data_is_one_usage_line(
    tmp_path: Path, periods: list[str], why: str
) -> None:
    dumps = write_week(tmp_path / "dumps", gap=range(2 * 144 + 6, 2 * 144 + 19))
    out = tmp_path / "out"
    argv = ["--dumps-dir", str(dumps), "--out-dir", str(out), "--compare", *periods]
    ran = run_main(analyze_system.main, argv)
    assert ran.status == 2
    assert ran.stderr == (
        f"analyze_system: error: --compare: {why}; the snapshots are on 2026-03-02 to 2026-03-08\n"
    )
    assert not out.exists() or not any(out.iterdir())  # nothing written on a usage error


def test_a_kernel_without_sunreclaim_gives_one_warning_and_folds_it(tmp_path: Path) -> None:
    dumps = tmp_path / "dumps"
    dumps.mkdir()
    for minute in range(3):
        path = write_sys(dumps, f"20260301_10{minute:02d}00", MemTotal=1000.0, MemFree=600.0)
        header, row = path.read_text(encoding="utf-8").splitlines()
        cells = row.split(",")
        cells[header.split(",").index("SUnreclaim_MB")] = ""  # Linux before 2.6.19
        path.write_text(f"{header}\n{','.join(cells)}\n", encoding="utf-8")
    out = tmp_path / "out"
    ran = run_main(analyze_system.main, ["--dumps-dir", str(dumps), "--out-dir", str(out)])
    assert ran.status == 0, ran.stderr
    folded = [line for line in ran.stderr.splitlines() if "breakdown" in line]
    assert folded == [
        "analyze_system: warning: the breakdown of MemTotal counts as 0, and so as"
        " unaccounted, what some snapshots lack: SUnreclaim"
    ]
    table = pd.read_csv(out / "memory_breakdown.csv")
    assert table["SlabUnreclaimable_MB"].tolist() == [0.0] * 3
    assert table["Unaccounted_MB"].tolist() == [400.0] * 3


def test_a_share_is_shown_only_where_the_rise_stands_above_its_noise() -> None:
    """Used memory that moves by 20 MiB inside each period: a rise of 3 MiB gets its parts'
    MiB alone; a rise of 300 MiB gets their shares."""
    times = pd.date_range("2026-03-01 10:00", periods=8, freq="1s")
    first = Period(times[0].to_pydatetime(), times[3].to_pydatetime(), "first")
    last = Period(times[4].to_pydatetime(), times[7].to_pydatetime(), "last")
    wobble = np.array([0.0, 20.0, 0.0, 20.0])
    for rise, shared in ((3.0, False), (300.0, True)):
        values = np.r_[1000 + wobble, 1000 + rise + wobble]
        used = pd.Series(values, index=times, dtype=np.float64)
        parts = pd.DataFrame({column: np.zeros(8) for column in BREAKDOWN_COLUMNS}, index=times)
        parts["PageCache_MB"] = values - 500
        found = compare(parts, used, first, last)
        assert found.rise_mb == pytest.approx(rise)
        assert found.noise_mb == pytest.approx(20.0)  # the interquartile range of 0, 0, 20, 20
        cached = next(change for change in found.changes if change.column == "PageCache_MB")
        assert cached.share_pct == (pytest.approx(100.0) if shared else None)
        lines = format_comparison(found)
        line = next(line for line in lines if "page cache" in line)
        assert line.endswith("100% of the rise") == shared, line
        said = next(line for line in lines if "RAM used" in line)
        assert said.endswith("within its noise (20 MiB): no shares") != shared, said


def test_a_change_that_rounds_to_zero_is_never_minus_zero() -> None:
    first = Period(datetime(2026, 1, 1), datetime(2026, 1, 1, 1), "first")
    last = Period(datetime(2026, 1, 2), datetime(2026, 1, 2, 1), "last")
    changes = [
        breakdown.Change("SlabReclaimable_MB", 400.0, 399.7, -0.2),
        breakdown.Change("Anon_MB", 2500.0, 2540.0, 100.2),
    ]
    lines = format_comparison(breakdown.Comparison(first, last, -0.4, changes))
    assert lines[1].split()[-2:] == ["+0", "MiB"]  # RAM used, -0.4 MiB
    assert lines[2].split()[-6:] == ["+0", "MiB", "0%", "of", "the", "rise"]
    assert not any("-0" in line for line in lines)


@given(
    st.floats(allow_nan=False, allow_infinity=False, min_value=-1e12, max_value=1e12),
    st.integers(min_value=0, max_value=3),
)
def test_a_signed_change_says_minus_only_when_its_shown_value_is_below_zero(
    value: float, decimals: int
) -> None:
    text = signed(value, decimals)
    assert text[0] in "+-"
    shown = float(text.replace(",", ""))
    assert (text[0] == "-") == (shown < 0)
    assert shown == pytest.approx(value, abs=10.0**-decimals)
