"""System analysis: metrics known by hand, the CSV, the summary, bad input and the PNGs."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dumpfiles import assert_real_png, write_sys
from utils import plotting
from utils.console import Console, PhaseTimer, Reporter, run_analysis
from utils.parser import SYS_PREFIX, find_dumps
from utils.system_analysis import (
    PLOT_NAMES,
    compute_metrics,
    format_duration,
    format_summary,
    load_and_compute_metrics,
    summarize,
    write_metrics_csv,
)

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "analyze_system.py"

# Five snapshots 10 minutes apart, except a collector outage from 10:20 to 14:00.
# RAM used = MemTotal - MemFree - Buffers - Cached - SReclaimable, by hand:
#   1000 - 100 - 50 - 200 - 50 = 600 (60 %), then 610, 700, 250.5, 600.
# Swap used = SwapTotal - SwapFree: 100, 100, 150, 0, 0.
SNAPSHOTS = [
    ("20260301_100000", 100.0, 400.0),
    ("20260301_101000", 90.0, 400.0),
    ("20260301_102000", 0.0, 350.0),
    ("20260301_140000", 449.5, 500.0),
    ("20260301_141000", 100.0, 500.0),
]


def make_dumps(dumps: Path) -> Path:
    dumps.mkdir(exist_ok=True)
    for stamp, mem_free, swap_free in SNAPSHOTS:
        write_sys(
            dumps,
            stamp,
            MemTotal=1000.0,
            MemFree=mem_free,
            MemAvailable=300.0,
            Buffers=50.0,
            Cached=200.0,
            SReclaimable=50.0 if mem_free else 100.0 - 50.0,
            SwapTotal=500.0,
            SwapFree=swap_free,
        )
    return dumps


def load(dumps: Path) -> tuple[pd.DataFrame, list[str]]:
    warnings: list[str] = []
    metrics = load_and_compute_metrics(
        find_dumps(dumps, SYS_PREFIX), lambda path, why: warnings.append(f"{path.name}: {why}")
    )
    return metrics, warnings


def test_metrics_known_by_hand(tmp_path: Path) -> None:
    metrics, warnings = load(make_dumps(tmp_path))
    assert warnings == []
    assert metrics["RAM_Used_MB"].round(3).tolist() == [600.0, 610.0, 700.0, 250.5, 600.0]
    assert metrics["Swap_Used_MB"].round(3).tolist() == [100.0, 100.0, 150.0, 0.0, 0.0]
    assert metrics["RAM_Used_Pct"].round(3).tolist() == [60.0, 61.0, 70.0, 25.05, 60.0]
    assert str(metrics.index[3]) == "2026-03-01 14:00:00"


def test_compute_metrics_formulas() -> None:
    raw = pd.DataFrame(
        {
            "MemTotal_MB": [2048.0],
            "MemFree_MB": [512.0],
            "Buffers_MB": [10.0],
            "Cached_MB": [200.0],
            "SReclaimable_MB": [20.0],
            "SwapTotal_MB": [1024.0],
            "SwapFree_MB": [1000.5],
        }
    )
    row = compute_metrics(raw).iloc[0]
    assert row["RAM_Used_MB"] == 2048 - 512 - 10 - 200 - 20
    assert row["Swap_Used_MB"] == 23.5
    assert row["RAM_Used_Pct"] == pytest.approx(1306 / 2048 * 100)


def test_metrics_csv_exact(tmp_path: Path) -> None:
    metrics, _ = load(make_dumps(tmp_path / "dumps"))
    path = write_metrics_csv(metrics, tmp_path / "system_metrics.csv")
    lines = path.read_text().splitlines()
    assert lines[0] == (
        "timestamp,RAM_Used_MB,Swap_Used_MB,RAM_Used_Pct,MemTotal_MB,MemFree_MB,"
        "Buffers_MB,Cached_MB,SReclaimable_MB,SwapTotal_MB,SwapFree_MB"
    )
    assert lines[1] == (
        "2026-03-01 10:00:00,600.000,100.000,60.000,1000.000,100.000,50.000,200.000,50.000,"
        "500.000,400.000"
    )
    assert lines[4].startswith("2026-03-01 14:00:00,250.500,0.000,25.050,")
    assert len(lines) == 6


def test_summary_reports_span_gap_and_stats(tmp_path: Path) -> None:
    metrics, _ = load(make_dumps(tmp_path))
    lines = format_summary(summarize(metrics))
    assert lines[:5] == [
        "System memory: 5 snapshots (times in UTC)",
        "  first     2026-03-01 10:00:00",
        "  last      2026-03-01 14:10:00",
        "  duration  4 h 10 min",
        "  gaps      1 longer than 15 min; longest 3 h 40 min after 2026-03-01 10:20:00",
    ]
    assert lines[-3].split() == ["RAM", "used", "(htop),", "MiB", "250.5", "552.1", "700.0"]
    assert lines[-2].split() == ["Swap", "used,", "MiB", "0.0", "70.0", "150.0"]
    assert lines[-1].split() == ["RAM", "used,", "%", "25.1", "55.2", "70.0"]


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0 s"), (45, "45 s"), (600, "10 min"), (7500, "2 h 5 min"), (86400 * 29 + 85800, "29 d 23 h 50 min"), (86400, "1 d")],
)  # fmt: skip
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


def test_line_breaks_across_the_outage() -> None:
    times = np.array(
        ["2026-03-01T10:00", "2026-03-01T10:10", "2026-03-01T10:20", "2026-03-01T14:00"],
        dtype="datetime64[s]",
    )
    threshold = plotting.gap_threshold_s(times)
    assert threshold == 900.0  # 1.5 x the usual 10 minutes
    x, y = plotting.break_at_gaps(times, np.array([1.0, 2.0, 3.0, 4.0]), threshold)
    assert len(x) == 5
    assert np.isnan(y[3]) and y[4] == 4.0
    assert str(x[3]) == "2026-03-01T12:10:00"


def run_script(*args: str, stdin_pipe: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_end_to_end_with_a_corrupt_file(tmp_path: Path) -> None:
    dumps = make_dumps(tmp_path / "dumps")
    corrupt = dumps / "sys_mem_20260301_101500.csv"
    corrupt.write_bytes(b"MemTotal_MB,MemFree_MB\n\x00\x00\x00\n")
    cut = dumps / "sys_mem_20260301_100500.csv"
    cut.write_text("MemTotal_MB,MemFree_MB,Buffers_MB")
    out = tmp_path / "out"
    result = run_script("--dumps-dir", str(dumps), "--out-dir", str(out))
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == [
        f"analyze_system: warning: {cut}: no complete line (cut off?); skipped",
        f"analyze_system: warning: {corrupt}: no Buffers_MB, Cached_MB, SReclaimable_MB,"
        " SwapTotal_MB, SwapFree_MB column; skipped",
    ]
    assert "System memory: 5 snapshots (times in UTC)" in result.stdout
    assert f"Wrote {out / 'system_metrics.csv'}" in result.stdout
    table = pd.read_csv(out / "system_metrics.csv")
    assert table["RAM_Used_MB"].tolist() == [600.0, 610.0, 700.0, 250.5, 600.0]
    for name in PLOT_NAMES:
        assert_real_png(out / name)


def test_window_selects_snapshots(tmp_path: Path) -> None:
    dumps = make_dumps(tmp_path / "dumps")
    out = tmp_path / "out"
    result = run_script(
        "--dumps-dir", str(dumps), "--out-dir", str(out), "--since", "2026-03-01 10:10",
        "--until", "2026-03-01 14:00",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    table = pd.read_csv(out / "system_metrics.csv")
    assert table["timestamp"].tolist() == [
        "2026-03-01 10:10:00",
        "2026-03-01 10:20:00",
        "2026-03-01 14:00:00",
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--since", "2026-04-01"], "no sys_mem_*.csv files in {dumps} between 2026-04-01 00:00:00 and the end UTC"),
        (["--dumps-dir", "{tmp}/missing"], "no dumps dir {tmp}/missing"),
        (["--dumps-dir", "{tmp}"], "no sys_mem_*.csv files in {tmp}"),
    ],
)  # fmt: skip
def test_no_data_is_one_line_and_exit_1(tmp_path: Path, args: list[str], message: str) -> None:
    dumps = make_dumps(tmp_path / "dumps")
    args = [a.format(tmp=tmp_path) for a in args]
    result = run_script("--dumps-dir", str(dumps), "--out-dir", str(tmp_path / "out"), *args)
    assert result.returncode == 1
    assert result.stderr == "analyze_system: " + message.format(dumps=dumps, tmp=tmp_path) + "\n"
    assert result.stdout == ""


def test_nothing_readable_is_one_line_and_exit_1(tmp_path: Path) -> None:
    (tmp_path / "sys_mem_20260301_100000.csv").write_text("garbage\n1\n")
    result = run_script("--dumps-dir", str(tmp_path), "--out-dir", str(tmp_path / "out"))
    assert result.returncode == 1
    assert result.stderr.splitlines()[-1] == (
        "analyze_system: none of the 1 sys_mem_*.csv files could be used"
    )
    assert "Traceback" not in result.stderr


def test_bad_time_is_a_usage_error(tmp_path: Path) -> None:
    result = run_script("--since", "last tuesday")
    assert result.returncode == 2
    assert "not a UTC time as YYYY-MM-DD[ HH:MM[:SS]]: 'last tuesday'" in result.stderr
    result = run_script("--since", "2026-03-02", "--until", "2026-03-01")
    assert result.returncode == 2
    assert "--since 2026-03-02 00:00:00 is after --until 2026-03-01 23:59:59" in result.stderr


def test_output_piped_into_head_ends_quietly(tmp_path: Path) -> None:
    dumps = make_dumps(tmp_path / "dumps")
    out = tmp_path / "out"
    command = f"'{sys.executable}' '{SCRIPT}' --dumps-dir '{dumps}' --out-dir '{out}' | head -1"
    result = subprocess.run(
        ["bash", "-o", "pipefail", "-c", command],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.stdout == "System memory: 5 snapshots (times in UTC)\n"
    assert result.stderr == ""
    assert result.returncode == 0
    assert (out / "system_metrics.csv").exists()


def test_progress_only_on_a_terminal() -> None:
    quiet = io.StringIO()
    reporter = Reporter("x", quiet)
    reporter.progress("reading", 5, 10)
    assert quiet.getvalue() == ""
    shown = io.StringIO()
    reporter = Reporter("x", shown, progress=True)
    reporter.progress("reading", 10, 10)
    reporter.end_progress()
    assert "reading 10/10 files (100%)" in shown.getvalue()


def test_run_analysis_turns_user_errors_into_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    def interrupted(reporter: Reporter, console: Console, timer: PhaseTimer) -> None:
        raise KeyboardInterrupt

    def disk_full(reporter: Reporter, console: Console, timer: PhaseTimer) -> None:
        raise OSError(28, "No space left on device", "/out/system_metrics.csv")

    def killed(reporter: Reporter, console: Console, timer: PhaseTimer) -> None:
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)  # the handler raises before this ends

    before = signal.getsignal(signal.SIGTERM)
    assert run_analysis("prog", killed, Path("/out"), timings=False) == 143
    assert signal.getsignal(signal.SIGTERM) is before
    assert run_analysis("prog", interrupted, Path("/out"), timings=False) == 130
    assert run_analysis("prog", disk_full, Path("/out"), timings=True) == 1
    assert capsys.readouterr().err.splitlines() == [
        "prog: stopped by SIGTERM",
        "prog: interrupted",
        "prog: cannot write /out/system_metrics.csv: No space left on device",
        "prog: timings: discovery 0.000 s, reading 0.000 s, computing 0.000 s, plotting 0.000 s",
    ]


def test_unwritable_out_dir_is_one_line(tmp_path: Path) -> None:
    dumps = make_dumps(tmp_path / "dumps")
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = run_script("--dumps-dir", str(dumps), "--out-dir", str(blocker / "out"))
    assert result.returncode == 1
    assert result.stderr == f"analyze_system: cannot write {blocker / 'out'}: Not a directory\n"


def test_extra_rows_and_a_zero_memtotal_are_bad_files(tmp_path: Path) -> None:
    dumps = make_dumps(tmp_path)
    doubled = dumps / "sys_mem_20260301_101000.csv"
    lines = doubled.read_text().splitlines()
    doubled.write_text("\n".join([*lines, lines[1].replace("1000.000", "9000.000", 1)]) + "\n")
    zero = write_sys(dumps, "20260301_100500", MemTotal=0.0)
    metrics, warnings = load(dumps)
    assert warnings == [
        f"{zero.name}: MemTotal_MB on line 2 is '0.000', not above 0; skipped",
        f"{doubled.name}: 2 data rows where 1 is expected; skipped",
    ]
    assert metrics["RAM_Used_MB"].round(3).tolist() == [600.0, 700.0, 250.5, 600.0]
