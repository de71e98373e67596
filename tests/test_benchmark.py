"""Fast checks of tests/benchmark.py: its formatting, its memory measurement, the plain
baseline it measures against, and its data cache. The benchmark itself is `make bench`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from benchmark import (
    HAS_CHILDREN_FILES,
    MIB,
    MONTH_TARGETS,
    Check,
    DataSet,
    Measurement,
    Phases,
    RunResult,
    descendants,
    ensure_dataset,
    format_checks,
    format_comparison,
    format_verdict,
    growth_checks,
    is_cached,
    main,
    measure,
    parse_timings,
    peak_check,
    plain_rss_spread,
    plain_system_metrics,
    ratio_checks,
)
from synthetic import generate_dumps
from utils.parser import PROCESS_PREFIX, SYS_PREFIX, find_dumps
from utils.process_analysis import SPREAD_COLUMNS, compute_rss_spread, load_all_records
from utils.system_analysis import load_and_compute_metrics

SNAPSHOTS = 20
PROCESSES = 30
MONTHISH = DataSet("m", 100)
YEARISH = DataSet("y", 1_000)


def make(
    label: str, walls: list[float], peaks_mib: list[float], data: DataSet = MONTHISH
) -> Measurement:
    runs = [
        RunResult(wall, int(peak * MIB), Phases(0.01, wall / 2, wall / 4, wall / 8))
        for wall, peak in zip(walls, peaks_mib, strict=True)
    ]
    return Measurement(label, "processes", data, runs)


# --- Formatting --------------------------------------------------------------------


def test_measurement_takes_median_time_and_largest_peak() -> None:
    measurement = make("ours", [3.0, 1.0, 2.0], [100.0, 300.0, 200.0])
    assert measurement.wall_s == 2.0
    assert measurement.peak_bytes == 300 * MIB
    assert measurement.phases == Phases(0.01, 1.0, 0.5, 0.25)


def test_comparison_table_has_both_rows_and_the_ratios() -> None:
    baseline = Measurement(
        "baseline", "processes", MONTHISH, [RunResult(10.0, 1000 * MIB, Phases(0.01, 5, 2.5, 0))]
    )
    ours = make("ours", [2.5], [250.0])
    lines = format_comparison("Process analysis", baseline, ours)
    assert lines[0] == "Process analysis"
    assert lines[1].split() == [
        "wall",
        "s",
        "peak",
        "MiB",
        "discovery",
        "reading",
        "computing",
        "growth",
        "plotting",
    ]
    assert lines[2].split() == [
        "baseline", "10.00", "1,000", "0.010", "5.000", "2.500", "0.000", "0.000"
    ]  # fmt: skip
    assert lines[3].split() == ["ours", "2.50", "250", "0.010", "1.250", "0.625", "0.000", "0.312"]
    assert lines[4].split() == [
        "ours/baseline",
        "0.25x",
        "0.25x",
        "1.00x",
        "0.25x",
        "0.25x",
        "-",
        "-",
    ]
    # Every cell ends in the same column, whatever its width.
    assert len({len(line) for line in lines[1:5]}) == 1
    assert lines[5] == (
        "  (the baseline draws no plots; ours without its plotting phase: 2.19 s, 0.22x)"
    )


def test_comparison_without_baseline_has_no_ratio_row() -> None:
    lines = format_comparison("Year", None, make("ours", [2.0], [100.0]))
    assert len(lines) == 3
    assert lines[2].split()[0] == "ours"


def test_phase_ratio_is_a_dash_when_the_baseline_phase_is_zero() -> None:
    baseline = Measurement(
        "baseline", "system", MONTHISH, [RunResult(4.0, MIB, Phases(0, 3, 1, 0))]
    )
    ours = make("ours", [1.0], [1.0])
    lines = format_comparison("t", baseline, ours)
    ratios = lines[4].split()
    assert ratios[0] == "ours/baseline"
    assert ratios[3] == "-"  # discovery
    assert ratios[-1] == "-"  # plotting


def test_targets_are_met_or_missed_clearly() -> None:
    baseline = make("baseline", [10.0], [1000.0])
    ours = make("ours", [4.0], [700.0])
    checks = ratio_checks(MONTH_TARGETS["processes"], baseline, ours)
    assert [check.what for check in checks] == ["processes time", "processes memory"]
    assert [check.met for check in checks] == [True, False]
    time_line, memory_line = format_checks(checks)
    assert time_line.index("target") == memory_line.index("target")
    assert "0.40x" in time_line and "<= 0.50x" in time_line and time_line.endswith("met")
    assert "0.70x" in memory_line and "<= 0.60x" in memory_line
    assert memory_line.endswith("MISSED")
    assert format_verdict(checks) == "Verdict: MISSED 1 of 2 targets: processes memory"
    assert format_verdict(checks[:1]) == "Verdict: all 1 targets met"


def test_system_target_has_no_memory_check() -> None:
    checks = ratio_checks(MONTH_TARGETS["system"], make("b", [1.0], [1.0]), make("o", [0.5], [9.0]))
    assert [(check.what, check.met) for check in checks] == [("system time", False)]


def test_growth_is_linear_within_the_tolerance() -> None:
    month = make("ours", [2.0], [100.0], MONTHISH)
    year = make("ours", [24.0], [200.0], YEARISH)  # 10x the data, 12x the time
    lines, checks = growth_checks("processes", month, year)
    assert "data 10.00x; wall time 24.00 s / 2.00 s = 12.00x;" in lines[0]
    assert "reading+computing 18.00 s / 1.50 s = 12.00x" in lines[0]
    assert [check.value for check in checks] == [pytest.approx(1.2), pytest.approx(1.2)]
    assert all(check.met for check in checks)
    assert [line.split()[-1] for line in format_checks(checks)] == ["met", "met"]
    _, worse = growth_checks("processes", month, make("ours", [30.0], [200.0], YEARISH))
    assert not any(check.met for check in worse)


def test_growth_check_sees_through_fixed_costs() -> None:
    # The month is mostly start-up (phases of 1 s in 4 s), the year's reading is 20x
    # for 10x the data: the wall time looks linear, the reading does not.
    month = Measurement("ours", "processes", MONTHISH, [RunResult(4.0, MIB, Phases(0, 1, 0, 0))])
    year = Measurement("ours", "processes", YEARISH, [RunResult(23.0, MIB, Phases(0, 20, 0, 0))])
    _, (wall, work) = growth_checks("processes", month, year)
    assert wall.met
    assert not work.met


def test_peak_check_shows_mib_and_the_limit_in_gb() -> None:
    check = peak_check("processes peak memory (year)", 1600 * MIB, 1_500_000_000)
    (line,) = format_checks([check])
    assert "1,600 MiB" in line and "1,431 MiB (1.5 GB)" in line and line.endswith("MISSED")
    assert peak_check("x", 1000 * MIB, 1_500_000_000).met


def test_check_at_the_limit_is_met() -> None:
    assert Check("x", 0.5, 0.5, "0.50x", "0.50x").met


def test_parse_timings_takes_the_last_line() -> None:
    stderr = (
        "analyze_processes: warning: something\n"
        "analyze_processes: timings: discovery 0.067 s, reading 1.760 s,"
        " computing 0.054 s, plotting 0.857 s\n"
    )
    assert parse_timings(stderr) == Phases(0.067, 1.760, 0.054, 0.857)
    with_growth = stderr.replace("plotting", "growth 0.021 s, plotting")
    assert parse_timings(with_growth) == Phases(0.067, 1.760, 0.054, 0.857, growth=0.021)
    assert parse_timings("no timings here\n") is None


# --- Measuring -----------------------------------------------------------------------


def test_peak_memory_of_a_command_that_allocates_100_mib() -> None:
    execution = measure([sys.executable, "-c", "b = bytearray(100*1024*1024)"])
    assert execution.exit_code == 0
    assert execution.peak_bytes >= 100 * MIB
    assert execution.wall_s > 0


def test_peak_memory_is_not_the_measuring_process_s() -> None:
    # ru_maxrss of a child started directly by a big parent would report the parent's size.
    ballast = bytearray(300 * MIB)
    execution = measure([sys.executable, "-c", "pass"])
    assert execution.peak_bytes < 100 * MIB
    del ballast


def test_exit_status_and_output_are_kept() -> None:
    execution = measure([sys.executable, "-c", "import sys; print('out'); sys.exit('bad')"])
    assert execution.exit_code == 1
    assert execution.stdout == "out\n"
    assert "bad" in execution.stderr


@pytest.mark.parametrize("use_children_files", [True, False])
def test_descendants_finds_a_child(use_children_files: bool) -> None:
    if use_children_files and not HAS_CHILDREN_FILES:
        pytest.skip("this kernel has no /proc/<pid>/task/<tid>/children")
    child = subprocess.Popen(["sleep", "5"])
    try:
        assert child.pid in descendants(os.getpid(), use_children_files)
    finally:
        child.kill()
        child.wait(timeout=10)


# --- The plain approach ----------------------------------------------------------------


@pytest.fixture(scope="module")
def dumps(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dumps")
    generate_dumps(out, SNAPSHOTS, PROCESSES, seed=3)
    return out


def test_plain_rss_spread_columns_and_order(dumps: Path) -> None:
    table = plain_rss_spread(dumps)
    assert list(table.columns) == ["PID", "min_RSS", "max_RSS", "spread", "CMD"]
    assert len(table) == 10
    assert (table["spread"] == (table["max_RSS"] - table["min_RSS"]).round(3)).all()
    order = table.sort_values(["spread", "PID"], ascending=[False, True]).index
    assert list(order) == list(range(10))
    assert len(plain_rss_spread(dumps, top=3)) == 3


def test_plain_rss_spread_agrees_with_ours(dumps: Path) -> None:
    """Both sides of the benchmark compute the same table."""
    records = load_all_records(find_dumps(dumps, PROCESS_PREFIX), lambda path, why: None)
    ours = compute_rss_spread(records).head(10).reset_index(drop=True)
    plain = plain_rss_spread(dumps)
    assert tuple(plain.columns) == SPREAD_COLUMNS
    pd.testing.assert_frame_equal(plain, ours, check_dtype=False)


def test_plain_system_metrics_columns(dumps: Path) -> None:
    metrics = plain_system_metrics(dumps)
    assert len(metrics) == SNAPSHOTS
    assert list(metrics.columns[-4:]) == [
        "timestamp",
        "RAM_Used_MB",
        "Swap_Used_MB",
        "RAM_Used_Pct",
    ]
    assert metrics["timestamp"].is_monotonic_increasing
    assert str(metrics["timestamp"].dt.tz) == "UTC"
    ours = load_and_compute_metrics(find_dumps(dumps, SYS_PREFIX), lambda path, why: None)
    for column in ("RAM_Used_MB", "Swap_Used_MB", "RAM_Used_Pct"):
        np.testing.assert_allclose(metrics[column].to_numpy(), ours[column].to_numpy())


def test_baseline_mode_prints_its_timings(dumps: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--baseline", "processes", str(dumps)]) == 0
    captured = capsys.readouterr()
    assert "wrote 10 rows to top10_rss_spread.csv" in captured.out
    assert parse_timings(captured.err) is not None
    assert "baseline_processes: timings: discovery" in captured.err
    assert "plotting 0.000 s" in captured.err


def test_baseline_mode_fails_on_an_empty_dir(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--baseline", "system", str(tmp_path)]) == 1
    assert "baseline_system: error:" in capsys.readouterr().err


# --- The data cache ----------------------------------------------------------------------


def test_data_set_is_generated_once_then_cached(tmp_path: Path) -> None:
    tiny = DataSet("tiny", 5, processes=10)
    said: list[str] = []
    path = ensure_dataset(tiny, tmp_path, said.append)
    assert path == tmp_path / "bench-tiny"
    assert len(list(path.glob(f"{SYS_PREFIX}*.csv"))) == 5
    assert said[0].startswith("generating a synthetic tiny: 5 snapshots x 10 processes")
    assert is_cached(tiny, tmp_path)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []

    said.clear()
    ensure_dataset(tiny, tmp_path, said.append)
    assert said[0].startswith("using the cached synthetic tiny")

    other = DataSet("tiny", 6, processes=10)  # other parameters: regenerate
    assert not is_cached(other, tmp_path)
    said.clear()
    ensure_dataset(other, tmp_path, said.append)
    assert said[0].startswith("generating")
    assert len(list(path.glob(f"{SYS_PREFIX}*.csv"))) == 6


def test_interrupted_generation_is_not_taken_for_complete(tmp_path: Path) -> None:
    tiny = DataSet("tiny", 4, processes=10)
    ensure_dataset(tiny, tmp_path, lambda text: None)
    tiny.marker(tmp_path).unlink()  # as if killed before the marker was written
    stale = tmp_path / ".bench-tiny.tmp-999999999"  # no such process
    stale.mkdir()
    assert not is_cached(tiny, tmp_path)
    said: list[str] = []
    ensure_dataset(tiny, tmp_path, said.append)
    assert said[0].startswith("generating")
    assert not stale.exists()
    assert is_cached(tiny, tmp_path)
