"""Fast checks of tests/bench, `make bench`'s tool: its formatting, its memory measurement,
the plain baseline it measures against, its entry points and its data cache. The benchmark
itself is `make bench`."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench import collector as collector_bench
from bench.baseline import main as baseline_main
from bench.baseline import plain_rss_spread, plain_system_metrics
from bench.compaction import (
    CompactionRun,
    DiskUsage,
    bundled_key,
    cached_compaction,
    disk_usage,
    ensure_bundled,
)
from bench.datasets import MONTH, SERVICES_MONTH, YEAR, DataSet, ensure_dataset, is_cached
from bench.one_hour import KeptSummaries, add_one_hour, last_hour
from bench.paths import REPO_ROOT
from bench.reference import Reference, ensure_reference
from bench.results import (
    MIB,
    Check,
    Measurement,
    Phases,
    RunResult,
    format_checks,
    format_comparison,
    format_verdict,
    parse_timings,
    peak_check,
    pss_check,
)
from bench.runs import NO_SUMMARIES, command_for, report_argv
from bench.sampler import (
    HAS_CHILDREN_FILES,
    BenchmarkError,
    descendants,
    measure,
    parse_pss,
    read_pss,
)
from bench.summaries import (
    ServiceLeaks,
    ensure_summaries,
    rerun_folder,
    rerun_groups,
    service_leaks,
    summaries_key,
)
from bench.targets import (
    MONTH_TARGETS,
    bundled_section,
    compaction_section,
    growth_checks,
    loose_section,
    ratio_checks,
    reference_section,
    report_section,
    rerun_section,
    services_section,
    targets_lines,
    year_section,
)
from synthetic import SERVICE_CMD, SERVICE_MAX_GROWTH, SERVICE_USER, generate_dumps
from utils.judge.spreads import SPREAD_COLUMNS
from utils.parser import PROCESS_PREFIX, SYS_PREFIX, find_dumps
from utils.process_analysis import compute_rss_spread, load_all_records
from utils.system_analysis import load_and_compute_metrics

SNAPSHOTS = 20
PROCESSES = 30
MONTHISH = DataSet("m", 100)
YEARISH = DataSet("y", 1_000)


def make(
    label: str,
    walls: list[float],
    peaks_mib: list[float],
    data: DataSet = MONTHISH,
    pss_mib: float | None = None,
    analysis: str = "processes",
) -> Measurement:
    runs = [
        RunResult(wall, int(peak * MIB), Phases(0.01, wall / 2, wall / 4, wall / 8))
        for wall, peak in zip(walls, peaks_mib, strict=True)
    ]
    pss = None if pss_mib is None else int(pss_mib * MIB)
    return Measurement(label, analysis, data, runs, pss)


# --- Formatting --------------------------------------------------------------------


def test_measurement_takes_median_time_and_largest_peak() -> None:
    measurement = make("ours", [3.0, 1.0, 2.0], [100.0, 300.0, 200.0])
    assert measurement.wall_s == 2.0
    assert measurement.peak_bytes == 300 * MIB
    assert measurement.phases == Phases(0.01, 1.0, 0.5, 0.25)


def test_comparison_table_has_both_rows_and_the_ratios() -> None:
    baseline = Measurement(
        "baseline",
        "processes",
        MONTHISH,
        [RunResult(10.0, 1000 * MIB, Phases(0.01, 5, 2.5, 0))],
        pss_bytes=800 * MIB,
    )
    ours = make("ours", [2.5], [250.0], pss_mib=200.0)
    lines = format_comparison("Process analysis", baseline, ours)
    assert lines[0] == "Process analysis"
    assert lines[1].split() == [
        "wall",
        "s",
        "RSS",
        "MiB",
        "PSS",
        "MiB",
        "discovery",
        "reading",
        "computing",
        "growth",
        "plotting",
    ]
    assert lines[2].split() == [
        "baseline", "10.00", "1,000", "800", "0.010", "5.000", "2.500", "0.000", "0.000"
    ]  # fmt: skip
    assert lines[3].split() == [
        "ours", "2.50", "250", "200", "0.010", "1.250", "0.625", "0.000", "0.312"
    ]  # fmt: skip
    assert lines[4].split() == [
        "ours/baseline", "0.25x", "0.25x", "0.25x", "1.00x", "0.25x", "0.25x", "-", "-"
    ]  # fmt: skip
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
    ours = make("ours", [3.5], [700.0])
    checks = ratio_checks(MONTH_TARGETS["processes"], baseline, ours)
    assert [check.what for check in checks] == [
        "processes time (ours/baseline)",
        "processes peak RSS (ours/baseline)",
    ]
    assert [check.met for check in checks] == [True, False]
    time_line, memory_line = format_checks(checks)
    assert time_line.index("target") == memory_line.index("target")
    assert "0.35x" in time_line and "<= 0.40x" in time_line and time_line.endswith("PASS")
    assert "0.70x" in memory_line and "<= 0.60x" in memory_line
    assert memory_line.endswith("MISSED")
    assert format_verdict(checks) == (
        "Verdict: MISSED 1 of 2 targets: processes peak RSS (ours/baseline)"
    )
    assert format_verdict(checks[:1]) == "Verdict: all 1 targets met"


def test_system_target_has_no_memory_check() -> None:
    checks = ratio_checks(MONTH_TARGETS["system"], make("b", [1.0], [1.0]), make("o", [0.5], [9.0]))
    assert [(check.what, check.met) for check in checks] == [("system time (ours/baseline)", False)]


def test_growth_is_linear_within_the_tolerance() -> None:
    month = make("ours", [2.0], [100.0], MONTHISH)
    year = make("ours", [24.0], [200.0], YEARISH)  # 10x the data, 12x the time
    lines, checks = growth_checks("processes", month, year)
    assert "data 10.00x; wall time 24.00 s / 2.00 s = 12.00x;" in lines[0]
    assert "reading+computing 18.00 s / 1.50 s = 12.00x" in lines[0]
    assert [check.value for check in checks] == [pytest.approx(1.2), pytest.approx(1.2)]
    assert all(check.met for check in checks)
    assert [line.split()[-1] for line in format_checks(checks)] == ["PASS", "PASS"]
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


def test_comparison_shows_a_dash_for_a_pss_not_measured() -> None:
    lines = format_comparison(
        "t", make("baseline", [4.0], [100.0]), make("o", [1.0], [50.0], pss_mib=40.0)
    )
    assert lines[2].split()[3] == "-"
    assert lines[3].split()[3] == "40"
    assert lines[4].split()[3] == "-"


def test_at_least_check_reads_target_at_least() -> None:
    checks = [
        Check("disk", 31.6, 20.0, "31.60x", "20.00x", at_least=True),
        Check("disk", 12.0, 20.0, "12.00x", "20.00x", at_least=True),
        Check("time", 0.2, 0.4, "0.20x", "0.40x"),
    ]
    assert [check.met for check in checks] == [True, False, True]
    lines = format_checks(checks)
    assert "target >= 20.00x" in lines[0] and lines[0].endswith("PASS")
    assert lines[1].endswith("MISSED")
    assert "target <= 0.40x" in lines[2]
    assert len({line.index("target") for line in lines}) == 1
    assert Check("x", 20.0, 20.0, "", "", at_least=True).met


def test_pss_check_in_mib_and_missed_when_not_measured() -> None:
    (line,) = format_checks([pss_check("processes peak PSS", 180 * MIB, 200 * MIB)])
    assert line == "  processes peak PSS  180 MiB  target <= 200 MiB  PASS"
    missing = pss_check("system peak PSS", None, 150 * MIB)
    assert not missing.met
    assert format_checks([missing])[0].split()[3:5] == ["not", "measured"]


def month_results(
    bundled_walls: tuple[float, float] = (1.0, 2.1),
) -> dict[tuple[str, str], Measurement]:
    """Fixed numbers for both analyses: baseline, ours on loose files, ours on bundles."""
    results: dict[tuple[str, str], Measurement] = {}
    for analysis, baseline_wall, ours_wall, bundled_wall, pss in (
        ("system", 5.0, 1.0, bundled_walls[0], 120.0),
        ("processes", 5.0, 2.0, bundled_walls[1], 210.0),
    ):
        results[("baseline", analysis)] = make(
            "baseline", [baseline_wall], [500.0], pss_mib=480.0, analysis=analysis
        )
        results[("ours", analysis)] = make(
            "ours", [ours_wall], [250.0], pss_mib=pss, analysis=analysis
        )
        results[("bundled", analysis)] = make(
            "bundled", [bundled_wall], [260.0], pss_mib=pss, analysis=analysis
        )
    return results


def test_loose_section_checks_ratios_and_pss() -> None:
    lines, checks = loose_section(month_results())
    assert lines[0] == "Month: loose files (100 snapshots x 500 processes, 200 files)"
    assert "System analysis" in lines and "Process analysis" in lines
    assert [(check.what, check.met) for check in checks] == [
        ("system time (ours/baseline)", True),  # 0.20x <= 0.40x
        ("processes time (ours/baseline)", True),  # 0.40x <= 0.40x
        ("processes peak RSS (ours/baseline)", True),  # 0.50x <= 0.60x
        ("system peak PSS", True),  # 120 MiB <= 150 MiB
        ("processes peak PSS", False),  # 210 MiB > 200 MiB
    ]


def test_bundled_section_compares_bundles_with_loose_files() -> None:
    lines, checks = bundled_section(month_results((1.05, 2.4)))
    rows = [line.split() for line in lines]
    assert rows[4][:4] == ["loose", "1.00", "250", "120"]
    assert rows[5][:4] == ["bundled", "1.05", "260", "120"]
    assert rows[6][:4] == ["bundled/loose", "1.05x", "1.04x", "1.00x"]
    assert not any("baseline draws no plots" in line for line in lines)
    assert [(check.what, round(check.value, 2), check.met) for check in checks] == [
        ("system time (bundled/loose)", 1.05, True),
        ("processes time (bundled/loose)", 1.2, False),
    ]


def test_compaction_section_shows_time_memory_and_sizes() -> None:
    run = CompactionRun(("python", "x"), 12.345, 28 * MIB, 25 * MIB, "2026-11-26 00:40 UTC")
    loose = DiskUsage(8640, 8640 * 6 * 4096, 170_000_000)
    bundled = DiskUsage(30, 6 * MIB, 6 * MIB - 1000)
    lines, (check,) = compaction_section(run, loose, bundled)
    assert "2026-11-26 00:40 UTC" in lines[0]
    assert lines[1] == (
        "  wall time 12.35 s, peak RSS 28 MiB; peak PSS 25 MiB (its memory run, on a second copy)"
    )
    assert lines[3].split()[:5] == ["loose", "8,640", "files", "202.5", "MiB"]
    assert lines[4].split()[:5] == ["bundled", "30", "files", "6.0", "MiB"]
    assert lines[5] == "    loose/bundled 33.75x"
    assert (check.what, check.shown, check.at_least, check.met) == (
        "month on disk (loose/bundled)", "33.75x", True, True
    )  # fmt: skip
    _, (small,) = compaction_section(run, loose, DiskUsage(30, 15 * MIB, 15 * MIB))
    assert not small.met  # 13.5x < 20x


def test_report_section_against_both_analyses() -> None:
    report = make("ours", [2.5], [300.0], pss_mib=250.0, analysis="report")
    report.runs[0] = RunResult(2.5, 300 * MIB, Phases(0, 0, 0, 0), output_bytes=1_234_567)
    system = make("ours", [1.0], [100.0], analysis="system")
    processes = make("ours", [2.0], [200.0])
    lines, (check,) = report_section(report, system, processes)
    assert lines[1].split()[1:] == [
        "wall", "2.50", "s,", "peak", "RSS", "300", "MiB,", "peak", "PSS", "250", "MiB;",
        "report.html", "1,234,567", "bytes",
    ]  # fmt: skip
    assert lines[2].endswith("system 1.00 s + processes 2.00 s = 3.00 s")
    assert lines[3] == "  report/(system + processes) 0.83x"
    assert check.met and check.shown == "0.83x" and check.limit_shown == "1.00x"
    slow = make("ours", [3.5], [300.0], analysis="report")
    assert not report_section(slow, system, processes)[1][0].met


def test_report_section_when_the_script_is_missing() -> None:
    system, processes = make("o", [1.0], [1.0]), make("o", [1.0], [1.0])
    lines, checks = report_section(None, system, processes)
    assert lines[0] == "Report: scripts/make_report.py is missing; skipped"
    assert checks == []


def test_targets_lines_end_with_the_verdict() -> None:
    checks = [Check("a", 1.0, 2.0, "1", "2"), Check("b", 3.0, 2.0, "3", "2")]
    lines = targets_lines(checks)
    assert lines[0] == "Targets:"
    assert lines[-1] == "Verdict: MISSED 1 of 2 targets: b"
    both = [Check("a (x/y)", 3.0, 2.0, "3", "2"), Check("b", 3.0, 2.0, "3", "2")]
    assert format_verdict(both) == "Verdict: MISSED 2 of 2 targets: a (x/y); b"


def test_year_section_checks_peak_rss_and_pss() -> None:
    month = {(m.label, m.analysis): m for m in (
        make("ours", [1.0], [100.0], MONTH, analysis="system"),
        make("ours", [2.0], [300.0], MONTH),
    )}  # fmt: skip
    year = {(m.label, m.analysis): m for m in (
        make("ours", [3.0], [200.0], YEAR, pss_mib=150.0, analysis="system"),
        make("ours", [20.0], [900.0], YEAR, pss_mib=520.0),
    )}  # fmt: skip
    lines, checks = year_section(month, year)
    assert any(line.split()[:2] == ["ours", "(month)"] for line in lines)
    assert [(check.what, check.met) for check in checks[-2:]] == [
        ("processes peak RSS (year)", True),
        ("processes peak PSS (year)", False),
    ]


def test_reference_section_checks_ours_is_no_slower() -> None:
    year = {(m.label, m.analysis): m for m in (
        make("reference", [3.0], [200.0], YEAR, analysis="system"),
        make("ours", [2.9], [150.0], YEAR, pss_mib=100.0, analysis="system"),
        make("reference", [20.0], [900.0], YEAR),
        make("ours", [21.0], [500.0], YEAR, pss_mib=400.0),
    )}  # fmt: skip
    reference = Reference("v1", "abc1234" + "0" * 33, Path("scripts"))
    lines, checks = reference_section(year, reference, YEAR)
    assert lines[0].startswith("Ours against abc1234 (v1), ")
    assert [line.split()[0] for line in lines if line.startswith("  abc")] == ["abc1234"] * 2
    assert any(line.split()[:2] == ["ours/abc1234", "1.05x"] for line in lines)
    assert [(check.what, round(check.value, 3), check.met) for check in checks] == [
        ("system time (ours/abc1234, year)", 0.967, True),
        ("processes time (ours/abc1234, year)", 1.05, False),
    ]


def test_reference_is_the_scripts_of_that_commit(tmp_path: Path) -> None:
    if not (REPO_ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    reference = ensure_reference("HEAD", tmp_path, say=lambda _: None)
    assert reference.scripts.name == "scripts"
    assert (reference.scripts / "analyze_processes.py").is_file()
    assert (reference.scripts / "utils").is_dir()
    argv = command_for("reference", "system", tmp_path, tmp_path / "out", reference)
    assert argv[1] == str(reference.scripts / "analyze_system.py")
    again = ensure_reference("HEAD", tmp_path, say=pytest.fail)  # cached: nothing said
    assert again == reference
    with pytest.raises(BenchmarkError, match="--reference no-such-rev: not a commit"):
        ensure_reference("no-such-rev", tmp_path)


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


SMAPS_ROLLUP = textwrap.dedent("""\
    55d0c0a00000-7ffd1c5f3000 ---p 00000000 00:00 0                          [rollup]
    Rss:              364200 kB
    Pss:              251012 kB
    Pss_Dirty:        180400 kB
    Pss_Anon:         180396 kB
    Pss_File:          70616 kB
    Pss_Shmem:             0 kB
    Shared_Clean:     150000 kB
    Private_Dirty:    180400 kB
    Swap:                  0 kB
    SwapPss:               0 kB
    """)


def test_parse_pss_of_smaps_rollup() -> None:
    assert parse_pss(SMAPS_ROLLUP) == 251012 * 1024


def test_parse_pss_adds_up_the_mappings_of_smaps() -> None:
    smaps = textwrap.dedent("""\
        00400000-00452000 r-xp 00000000 08:02 173521      /usr/bin/python3
        Size:                328 kB
        Rss:                 300 kB
        Pss:                 150 kB
        Pss_Anon:              0 kB
        7f0000000000-7f0000100000 rw-p 00000000 00:00 0
        Size:               1024 kB
        Rss:                1024 kB
        Pss:                1024 kB
        """)
    assert parse_pss(smaps) == (150 + 1024) * 1024
    assert parse_pss("Rss: 5 kB\nPss_Anon: 3 kB\n") is None


def test_read_pss_of_this_process_and_of_none() -> None:
    pss = read_pss(os.getpid())
    assert pss is not None and pss > MIB
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait(timeout=30)
    assert read_pss(child.pid) is None  # reaped: gone


def test_memory_run_samples_the_pss_of_a_command() -> None:
    code = "import time; b = bytearray(100*1024*1024); time.sleep(0.3)"
    execution = measure([sys.executable, "-c", code], interval_s=0.02, pss=True)
    assert execution.exit_code == 0
    assert execution.pss_bytes is not None
    assert execution.pss_bytes >= 100 * MIB
    assert execution.pss_bytes <= execution.peak_bytes + MIB  # a lone process: PSS <= RSS
    assert measure([sys.executable, "-c", "pass"]).pss_bytes is None  # timed runs: no PSS


def test_disk_usage_counts_allocated_blocks(tmp_path: Path) -> None:
    for name, size in (("a.csv", 1), ("b.csv", 500), ("c.csv", 10_000)):
        (tmp_path / name).write_bytes(b"x" * size)
    (tmp_path / ".compact_dumps.lock").write_bytes(b"")  # hidden: not counted
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "d.csv").write_bytes(b"x" * 100)  # not directly in the folder
    usage = disk_usage(tmp_path)
    blocks = sum(os.stat(tmp_path / name).st_blocks for name in ("a.csv", "b.csv", "c.csv"))
    assert usage == DiskUsage(3, blocks * 512, 10_501)
    assert usage.allocated_bytes >= usage.apparent_bytes  # small files waste blocks


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
    ours = load_and_compute_metrics(find_dumps(dumps, SYS_PREFIX), lambda path, why: None).metrics
    for column in ("RAM_Used_MB", "Swap_Used_MB", "RAM_Used_Pct"):
        np.testing.assert_allclose(metrics[column].to_numpy(), ours[column].to_numpy())


def test_baseline_mode_prints_its_timings(dumps: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert baseline_main(["processes", str(dumps)]) == 0
    captured = capsys.readouterr()
    assert "wrote 10 rows to top10_rss_spread.csv" in captured.out
    assert parse_timings(captured.err) is not None
    assert "baseline_processes: timings: discovery" in captured.err
    assert "plotting 0.000 s" in captured.err


def test_baseline_mode_fails_on_an_empty_dir(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert baseline_main(["system", str(tmp_path)]) == 1
    assert "baseline_system: error:" in capsys.readouterr().err


def test_the_benchmark_runs_the_baseline_as_a_script(dumps: Path, tmp_path: Path) -> None:
    """The baseline's command, as the benchmark measures it, runs from the repository."""
    argv = command_for("baseline", "system", dumps, tmp_path / "out")
    assert argv[1:3] == ["tests/bench/baseline.py", "system"]
    done = subprocess.run(
        argv, cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert f"baseline_system: {SNAPSHOTS} files, wrote {SNAPSHOTS} rows" in done.stdout
    assert parse_timings(done.stderr) is not None


def test_make_bench_s_command_line_starts_the_benchmark() -> None:
    done = subprocess.run(
        [sys.executable, "tests/bench", "--help"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: benchmark")
    assert "--year" in done.stdout and "--reference REV" in done.stdout


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


def test_compaction_run_survives_its_marker() -> None:
    run = CompactionRun(("python", "c.py"), 1.5, 20 * MIB, None, "2026-11-26 00:00 UTC")
    assert CompactionRun.from_json(run.to_json()) == run
    with pytest.raises(ValueError):
        CompactionRun.from_json("not json")


def test_bundled_month_is_compacted_once_then_cached(tmp_path: Path) -> None:
    tiny = DataSet("tiny", 6, processes=10)
    month_dir = ensure_dataset(tiny, tmp_path, lambda text: None)
    said: list[str] = []
    bundled, run = ensure_bundled(month_dir, tmp_path, said.append)
    assert said[0].startswith("compacting a copy of the month")
    assert bundled == tmp_path / "bench-month-bundled"
    assert sorted(path.name for path in bundled.iterdir() if not path.name.startswith(".")) == [
        "mem_20260101.tar.xz"
    ]
    assert len(list(month_dir.iterdir())) == 12  # the month itself is untouched
    assert run.wall_s > 0 and run.peak_bytes > 0
    assert "--older-than-days" in run.argv
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    assert cached_compaction(tmp_path, bundled_key()) == run
    said.clear()
    assert ensure_bundled(month_dir, tmp_path, said.append) == (bundled, run)
    assert said[0].startswith("using the cached bundled month")
    assert cached_compaction(tmp_path, bundled_key(DataSet("month", 1))) is None  # other key


def test_the_collector_bench_spawns_what_it_needs_and_leaves_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The host's count as 10 plus this process's children: the other test workers start and
    # end processes all the time, and the count of the whole host would race with them.
    children = Path(f"/proc/{os.getpid()}/task/{os.getpid()}/children")
    monkeypatch.setattr(
        collector_bench, "_process_count", lambda: 10 + len(children.read_text().split())
    )
    with collector_bench.enough_processes(35) as count:
        assert count == 35
        assert len(children.read_text().split()) == 25
    assert children.read_text().split() == []


def test_the_collector_bench_measures_each_of_the_three(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(collector_bench, "MIN_PROCESSES", 0)
    cost = collector_bench.measure(rounds=1)
    assert cost.processes > 0
    assert min(cost.ps_s, cost.before_s, cost.snapshot_s) > 0


# --- The services month ------------------------------------------------------------------


def rows_by_pid(dumps_dir: Path) -> dict[str, list[str]]:
    """Every process row of every snapshot, by PID (its first field), in snapshot order."""
    rows: dict[str, list[str]] = {}
    for path in sorted(dumps_dir.glob(f"{PROCESS_PREFIX}*.csv")):
        for line in path.read_text(encoding="utf-8").splitlines()[1:]:
            rows.setdefault(line.split(",", 1)[0], []).append(line)
    return rows


def test_services_random_walk_upwards_and_leave_the_other_processes_alone(
    tmp_path: Path,
) -> None:
    calm, walking = tmp_path / "calm", tmp_path / "walking"
    generate_dumps(calm, 40, 40, seed=5)
    generate_dumps(walking, 40, 40, seed=5, services=3)
    before, after = rows_by_pid(calm), rows_by_pid(walking)
    assert before.keys() == after.keys()  # the same PIDs, in the same snapshots
    services = {pid for pid, rows in after.items() if f",{SERVICE_USER}," in rows[0]}
    assert len(services) == 3
    changed = {pid for pid in before if before[pid] != after[pid]}
    assert services <= changed
    assert len(changed - services) <= 1  # the leaker's rate follows the host's size
    for pid in services:
        rss_mb = [float(row.split(",")[3]) for row in after[pid]]
        assert rss_mb[-1] > rss_mb[0] * 0.97  # the drift beats 40 steps of noise
        assert max(rss_mb) <= min(rss_mb) / 0.97 * SERVICE_MAX_GROWTH * 1.03
        assert SERVICE_CMD.split("{", 1)[0] in after[pid][0]


def test_services_need_room_among_the_daemons(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="services fit in this population"):
        generate_dumps(tmp_path / "a", 2, 20, services=15)
    with pytest.raises(ValueError, match="at least 0"):
        generate_dumps(tmp_path / "b", 2, 20, services=-1)


def test_a_data_set_with_services_is_another_data_set(tmp_path: Path) -> None:
    calm, walking = DataSet("tiny", 4, processes=40), DataSet("tiny", 4, processes=40, services=2)
    assert calm.marker_text() != walking.marker_text()
    assert walking.describe() == "4 snapshots x 40 processes, 2 random-walking services"
    path = ensure_dataset(walking, tmp_path, lambda text: None)
    assert not is_cached(calm, tmp_path)
    assert "/opt/services/" in next(path.glob(f"{PROCESS_PREFIX}*.csv")).read_text("utf-8")
    assert SERVICES_MONTH.snapshots == MONTH.snapshots and SERVICES_MONTH.services >= 20
    assert YEAR.start.year < MONTH.start.year  # the whole year is in the past


def test_service_leaks_count_the_services_flagged_and_plotted(tmp_path: Path) -> None:
    (tmp_path / "leaks.csv").write_text(
        "PID,first_seen,CMD\n"
        "7,2026-01-01 00:00:00,/opt/services/cart1/bin/cart1 --config=x\n"
        "8,2026-01-01 00:00:00,/opt/services/auth1/bin/auth1\n"
        "9,2026-01-01 00:00:00,/usr/bin/python3 leaker.py\n",
        encoding="utf-8",
    )
    for pid in (7, 9):
        (tmp_path / f"leak_{pid}_20260101_000000.png").write_bytes(b"")
    assert service_leaks(tmp_path, 5) == ServiceLeaks(5, 2, 1)


# --- The year re-run after one new hour ---------------------------------------------------


def test_one_new_hour_links_the_data_and_adds_its_last_hour_a_day_later(tmp_path: Path) -> None:
    source = tmp_path / "year"
    generate_dumps(source, SNAPSHOTS, 10)  # 00:00 to 03:10, every 10 minutes
    (source / ".summaries").mkdir()  # hidden: not part of the data
    before = sorted(path.name for path in source.iterdir())
    added = add_one_hour(source, tmp_path / "hour")
    assert sorted(path.name for path in source.iterdir()) == before  # never written
    stamps = [f"20260102_0{h}{m}000" for h, m in ((2, 2), (2, 3), (2, 4), (2, 5), (3, 0), (3, 1))]
    assert added == [
        name
        for stamp in stamps
        for name in (f"{SYS_PREFIX}{stamp}.csv", f"{PROCESS_PREFIX}{stamp}.csv")
    ]
    names = sorted(path.name for path in (tmp_path / "hour").iterdir())
    assert names == sorted([*(name for name in before if not name.startswith(".")), *added])
    old = f"{PROCESS_PREFIX}20260101_031000.csv"
    assert (tmp_path / "hour" / old).stat().st_ino == (source / old).stat().st_ino
    new = (tmp_path / "hour" / f"{PROCESS_PREFIX}20260102_031000.csv").read_bytes()
    assert new == (source / old).read_bytes()


def test_the_last_hour_is_the_hour_ending_with_the_last_snapshot() -> None:
    names = [f"{SYS_PREFIX}20260101_{hhmm}00.csv" for hhmm in ("0000", "0030", "0059", "0100")]
    assert last_hour(names) == ["20260101_003000", "20260101_005900", "20260101_010000"]
    with pytest.raises(ValueError, match="no loose sys_mem snapshot"):
        last_hour(["mem_20260101.tar.xz"])


def test_kept_summaries_are_copied_afresh_for_each_run(tmp_path: Path) -> None:
    kept = tmp_path / "kept"
    kept.mkdir()
    (kept / "sys_mem_day_20250101_x.npz").write_bytes(b"kept")
    summaries = KeptSummaries(kept, tmp_path / "used")
    summaries.reset()
    (tmp_path / "used" / "sys_mem_day_20250102_x.npz").write_bytes(b"the new hour's day")
    summaries.reset()
    assert [path.name for path in (tmp_path / "used").iterdir()] == ["sys_mem_day_20250101_x.npz"]
    assert [path.name for path in kept.iterdir()] == ["sys_mem_day_20250101_x.npz"]


def test_summaries_are_made_once_then_cached_outside_the_data(tmp_path: Path) -> None:
    tiny = DataSet("tiny", 6, processes=10, start=datetime(2025, 1, 1, tzinfo=UTC))
    dumps_dir = ensure_dataset(tiny, tmp_path, lambda text: None)
    said: list[str] = []
    kept = ensure_summaries(tiny, dumps_dir, tmp_path, said.append)
    assert said[0].startswith("making the day summaries of the tiny")
    assert kept == tmp_path / "bench-tiny-summaries"
    assert {path.name.split("_day_")[0] for path in kept.iterdir()} == {"sys_mem", "process_mem"}
    assert (tmp_path / "bench-tiny-summaries.done").read_text() == summaries_key(tiny) + "\n"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    assert [p.name for p in dumps_dir.iterdir() if p.name.startswith(".")] == []
    said.clear()
    assert ensure_summaries(tiny, dumps_dir, tmp_path, said.append) == kept
    assert said[0].startswith("using the cached day summaries")


def test_the_rerun_commands_use_a_fresh_copy_of_the_summaries(tmp_path: Path) -> None:
    source = tmp_path / "year"
    generate_dumps(source, 8, 10)
    with rerun_folder(source, tmp_path) as scratch:
        assert len(list((scratch / "data").iterdir())) == 2 * 8 + 2 * 6
        groups = rerun_groups(YEAR, scratch, tmp_path / "kept", tmp_path / "work")
    assert not scratch.exists()
    bare, plots = groups[1]
    assert (bare.label, plots.label) == ("rerun", "rerun-plots")
    assert bare.name == "ours processes (year + 1 hour, no plots)"
    assert "--no-plots" in bare.argv and "--no-plots" not in plots.argv
    assert "--no-summaries" not in bare.argv
    assert bare.summaries is not None
    assert bare.argv[bare.argv.index("--summary-dir") + 1] == str(bare.summaries.used)
    assert bare.summaries.kept == tmp_path / "kept"
    assert bare.summaries.used.parent == scratch


# --- Which runs use summaries, and the new sections -------------------------------------


def test_runs_of_ours_keep_no_summaries_unless_told(tmp_path: Path) -> None:
    argv = command_for("ours", "processes", tmp_path, tmp_path / "out")
    assert argv[-1] == "--no-summaries"
    assert NO_SUMMARIES[0] not in command_for("baseline", "processes", tmp_path, tmp_path)
    assert report_argv(tmp_path, tmp_path / "r.html")[-1] == "--no-summaries"
    told = command_for("ours", "system", tmp_path, tmp_path, options=("--no-plots",))
    assert told[-1] == "--no-plots" and "--no-summaries" not in told


def test_a_reference_gets_only_the_options_it_knows(tmp_path: Path) -> None:
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    (scripts / "analyze_system.py").write_text('parser.add_argument("--no-plots")\n')
    reference = Reference("old", "a" * 40, scripts)
    argv = command_for(
        "reference", "system", tmp_path, tmp_path, reference, ("--no-plots", "--no-summaries")
    )
    assert argv[-1] == "--no-plots" and "--no-summaries" not in argv


def services_results(
    first_s: float = 3.0, summaries_s: float = 1.0, pss_mib: float = 190.0
) -> dict[tuple[str, str], Measurement]:
    results: dict[tuple[str, str], Measurement] = {}
    for analysis in ("system", "processes"):
        for label, wall, pss in (
            ("baseline", 10.0, 500.0),
            ("ours", first_s, pss_mib),
            ("summaries", summaries_s, 90.0),
        ):
            results[(label, analysis)] = make(label, [wall], [pss], pss_mib=pss, analysis=analysis)
    return results


def test_services_section_checks_both_runs_memory_and_leaks() -> None:
    lines, checks = services_section(services_results(), ServiceLeaks(24, 22, 22))
    assert lines[0] == "Services month (100 snapshots x 500 processes, 200 files)"
    assert "Process analysis, summaries in place, no plots" in lines
    assert any("22 of its 24 services in leaks.csv, 22 of them plotted" in line for line in lines)
    assert [(check.what, check.met) for check in checks] == [
        ("system time, first run (ours/baseline, services month)", True),  # 0.30x <= 0.40x
        ("system time, summaries, no plots (ours/baseline, services month)", True),  # 0.10x
        ("processes time, first run (ours/baseline, services month)", True),
        ("processes time, summaries, no plots (ours/baseline, services month)", True),
        ("processes peak PSS, first run with plots (services month)", True),  # 190 <= 200
        ("services flagged and plotted (services month)", True),  # 22 >= 20
    ]
    _, worse = services_section(services_results(4.5, 3.0, 210.0), ServiceLeaks(24, 19, 18))
    assert not any(check.met for check in worse)
    last = format_checks(worse)[-1].split()
    assert last[-7:] == ["18", "of", "24", "target", ">=", "20", "MISSED"]


def test_rerun_section_checks_time_and_pss_without_plots() -> None:
    results = {
        ("rerun", analysis): make("rerun", [1.5], [160.0], pss_mib=120.0, analysis=analysis)
        for analysis in ("system", "processes")
    }
    results |= {
        ("rerun-plots", analysis): make("p", [4.0], [260.0], pss_mib=200.0, analysis=analysis)
        for analysis in ("system", "processes")
    }
    results[("rerun", "processes")] = make("rerun", [2.5], [170.0], pss_mib=160.0)
    lines, checks = rerun_section(results)
    assert "  the plots add +2.50 s of wall time and +80 MiB of peak PSS (no target)" in lines
    assert [(check.what, check.shown, check.met) for check in checks] == [
        ("system re-run, no plots: wall time (year + 1 hour)", "1.50 s", True),
        ("system re-run, no plots: peak PSS (year + 1 hour)", "120 MiB", True),
        ("processes re-run, no plots: wall time (year + 1 hour)", "2.50 s", False),
        ("processes re-run, no plots: peak PSS (year + 1 hour)", "160 MiB", False),
    ]
