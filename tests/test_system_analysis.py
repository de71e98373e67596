"""System analysis: metrics known by hand, the CSV, the summary, bad input and the PNGs."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from promtext import parse as parse_textfile

import analyze_system
from conftest import Ran, assert_real_png, run_main, run_script, script_path, write_sys
from utils.console import Diagnostics, Session, run_analysis
from utils.core.text import format_duration
from utils.judge.system_metrics import compute_metrics, summarize
from utils.outputs import plotting, system_tables
from utils.outputs.system_console import format_summary
from utils.outputs.system_plots import PLOT_NAMES, PLOT_SPECS, drawn_lines
from utils.outputs.system_tables import metrics_csv_text, write_metrics_csv
from utils.parser import SYS_PREFIX, find_dumps
from utils.system_analysis import load_and_compute_metrics

NAME = "analyze_system.py"
SCRIPT = script_path(NAME)

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
    ).metrics
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
            "MemTotal_MB": [2048.0, 2048.0],
            "MemFree_MB": [512.0, 512.0],
            "Buffers_MB": [10.0, 10.0],
            "Cached_MB": [200.0, 200.0],
            "SReclaimable_MB": [20.0, 20.0],
            "SwapTotal_MB": [1024.0, 1024.0],
            "SwapFree_MB": [1000.5, 1000.5],
            "MemAvailable_MB": [700.25, np.nan],  # the second: a kernel before 3.14
            "Shmem_MB": [64.5, np.nan],
        }
    )
    metrics = compute_metrics(raw)
    row = metrics.iloc[0]
    assert row["RAM_Used_MB"] == 2048 - 512 - 10 - 200 - 20 == 1306
    assert row["Swap_Used_MB"] == 23.5
    assert row["RAM_Used_Pct"] == pytest.approx(1306 / 2048 * 100)
    assert row["RAM_Used_Available_MB"] == 2048 - 700.25
    assert row["RAM_Used_Shmem_MB"] == 1306 + 64.5
    assert metrics.iloc[1][["RAM_Used_Available_MB", "RAM_Used_Shmem_MB"]].isna().all()
    assert metrics.iloc[1]["RAM_Used_MB"] == 1306
    assert list(metrics.columns[:5]) == [
        "RAM_Used_MB",
        "Swap_Used_MB",
        "RAM_Used_Pct",
        "RAM_Used_Available_MB",
        "RAM_Used_Shmem_MB",
    ]


def test_metrics_csv_exact(tmp_path: Path) -> None:
    metrics, _ = load(make_dumps(tmp_path / "dumps"))
    path = write_metrics_csv(metrics, tmp_path / "system_metrics.csv")
    lines = path.read_text().splitlines()
    assert lines[0] == (
        "timestamp,RAM_Used_MB,Swap_Used_MB,RAM_Used_Pct,RAM_Used_Available_MB,"
        "RAM_Used_Shmem_MB,MemTotal_MB,MemFree_MB,Buffers_MB,Cached_MB,SReclaimable_MB,"
        "SwapTotal_MB,SwapFree_MB,MemAvailable_MB,Shmem_MB,"
        "PSI_Some_Pct,PSI_Full_Pct,SwapIn_Pages_s,SwapOut_Pages_s,MajorFaults_s"
    )
    # These dumps, of an older collector, have no counters: the rates are empty.
    assert lines[1] == (
        "2026-03-01 10:00:00,600.000,100.000,60.000,700.000,600.000,1000.000,100.000,50.000,"
        "200.000,50.000,500.000,400.000,300.000,0.000,,,,,"
    )
    assert lines[4].startswith("2026-03-01 14:00:00,250.500,0.000,25.050,")
    assert len(lines) == 6


# Any float a metric can hold: NaN (a missing field), infinities, -0.0, halves that round
# either way, the largest and the subnormal.
_ANY_FLOAT = st.one_of(
    st.just(float("nan")),
    st.floats(allow_nan=True, allow_infinity=True, width=64),
    st.sampled_from([0.0005, 0.0015, 2.5e-4, -0.0, 1e300, 5e-324, 16384.0]),
)


@given(
    values=hnp.arrays(
        np.float64, hnp.array_shapes(min_dims=2, max_dims=2, max_side=6), elements=_ANY_FLOAT
    ),
    seconds=st.lists(st.integers(0, 4_102_444_800), min_size=6, max_size=6),
)
def test_metrics_csv_text_is_what_pandas_writes(values: np.ndarray, seconds: list[int]) -> None:
    """The fast writer against pandas' own to_csv, value for value."""
    rows, columns = values.shape
    index = pd.DatetimeIndex(np.array(seconds[:rows], dtype="datetime64[s]"))
    metrics = pd.DataFrame(values, index=index, columns=[f"C{i}_MB" for i in range(columns)])
    table = metrics.copy()
    table.insert(0, "timestamp", index.strftime("%Y-%m-%d %H:%M:%S"))
    expected = table.to_csv(index=False, float_format="%.3f", lineterminator="\n")
    assert metrics_csv_text(metrics) == expected


def test_metrics_csv_in_pieces_is_the_whole_text(monkeypatch: pytest.MonkeyPatch) -> None:
    """Rows formatted a few at a time, missing values in the first, a middle and the last
    piece: the same bytes as pandas writes, and as the file written."""
    values = np.arange(7 * 3, dtype=np.float64).reshape(7, 3) / 7
    values[[0, 3, 6], [1, 0, 2]] = np.nan
    index = pd.DatetimeIndex(np.arange(7, dtype=np.int64) * 600, dtype="datetime64[s]")
    metrics = pd.DataFrame(values, index=index, columns=["A_MB", "B_MB", "C_MB"])
    table = metrics.copy()
    table.insert(0, "timestamp", index.strftime("%Y-%m-%d %H:%M:%S"))
    expected = table.to_csv(index=False, float_format="%.3f", lineterminator="\n")
    monkeypatch.setattr(system_tables, "CSV_ROWS_AT_ONCE", 3)
    assert len(list(system_tables.metrics_csv_parts(metrics))) == 1 + 3
    assert metrics_csv_text(metrics) == expected


def test_summary_reports_span_gap_and_stats(tmp_path: Path) -> None:
    metrics, _ = load(make_dumps(tmp_path))
    lines = format_summary(summarize(metrics, 7.0))
    assert lines[:5] == [
        "System memory: 5 snapshots (times in UTC)",
        "  first     2026-03-01 10:00:00",
        "  last      2026-03-01 14:10:00",
        "  duration  4 h 10 min",
        "  gaps      1 longer than 15 min; longest 3 h 40 min after 2026-03-01 10:20:00",
    ]
    assert [line.rsplit(maxsplit=3) for line in lines[-7:-2]] == [
        ["  RAM used (htop), MiB", "250.5", "552.1", "700.0"],
        ["  RAM used (htop + Shmem), MiB", "250.5", "552.1", "700.0"],
        ["  RAM used (MemTotal - MemAvailable), MiB", "700.0", "700.0", "700.0"],
        ["  RAM used (htop), %", "25.1", "55.2", "70.0"],
        ["  Swap used, MiB", "0.0", "70.0", "150.0"],
    ]
    assert lines[-1] == ("MemAvailable: under a day of data (4.2 h); too little to judge a trend")


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


@pytest.mark.slow
def test_end_to_end_with_a_corrupt_file(tmp_path: Path) -> None:
    dumps = make_dumps(tmp_path / "dumps")
    corrupt = dumps / "sys_mem_20260301_101500.csv"
    corrupt.write_bytes(b"MemTotal_MB,MemFree_MB\n\x00\x00\x00\n")
    cut = dumps / "sys_mem_20260301_100500.csv"
    cut.write_text("MemTotal_MB,MemFree_MB,Buffers_MB")
    out = tmp_path / "out"
    result = run_script(NAME, "--dumps-dir", str(dumps), "--out-dir", str(out))
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


@pytest.mark.slow
def test_window_selects_snapshots(tmp_path: Path) -> None:
    dumps = make_dumps(tmp_path / "dumps")
    out = tmp_path / "out"
    result = run_script(
        NAME,
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


@pytest.mark.slow
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
    result = run_script(NAME, "--dumps-dir", str(dumps), "--out-dir", str(tmp_path / "out"), *args)
    assert result.returncode == 1
    assert result.stderr == "analyze_system: " + message.format(dumps=dumps, tmp=tmp_path) + "\n"
    assert result.stdout == ""


@pytest.mark.slow
def test_nothing_readable_is_one_line_and_exit_1(tmp_path: Path) -> None:
    (tmp_path / "sys_mem_20260301_100000.csv").write_text("garbage\n1\n")
    result = run_script(NAME, "--dumps-dir", str(tmp_path), "--out-dir", str(tmp_path / "out"))
    assert result.returncode == 1
    assert result.stderr.splitlines()[-1] == (
        "analyze_system: none of the 1 sys_mem_*.csv files could be used"
    )
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_bad_time_is_a_usage_error(tmp_path: Path) -> None:
    result = run_script(NAME, "--since", "last tuesday")
    assert result.returncode == 2
    assert "not a UTC time as YYYY-MM-DD[ HH:MM[:SS]]: 'last tuesday'" in result.stderr
    result = run_script(NAME, "--since", "2026-03-02", "--until", "2026-03-01")
    assert result.returncode == 2
    assert "--since 2026-03-02 00:00:00 is after --until 2026-03-01 23:59:59" in result.stderr


@pytest.mark.slow
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
    diagnostics = Diagnostics("x", quiet)
    diagnostics.progress("reading", 5, 10)
    assert quiet.getvalue() == ""
    shown = io.StringIO()
    diagnostics = Diagnostics("x", shown, progress=True)
    diagnostics.progress("reading", 10, 10)
    diagnostics.end_progress()
    assert "reading 10/10 files (100%)" in shown.getvalue()


def test_run_analysis_turns_user_errors_into_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    def interrupted(session: Session) -> None:
        raise KeyboardInterrupt

    def disk_full(session: Session) -> None:
        raise OSError(28, "No space left on device", "/out/system_metrics.csv")

    def killed(session: Session) -> None:
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


@pytest.mark.slow
def test_unwritable_out_dir_is_one_line(tmp_path: Path) -> None:
    dumps = make_dumps(tmp_path / "dumps")
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = run_script(NAME, "--dumps-dir", str(dumps), "--out-dir", str(blocker / "out"))
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


# --- "Used", three ways, and when memory runs out ---------------------------------------


def old_kernel_dumps(dumps: Path) -> Path:
    """Snapshots of a kernel without MemAvailable (before 3.14); the last two lack Shmem too."""
    dumps.mkdir(exist_ok=True)
    for index, (stamp, mem_free, swap_free) in enumerate(SNAPSHOTS):
        path = write_sys(
            dumps, stamp, MemTotal=1000.0, MemFree=mem_free, Buffers=50.0, Cached=200.0,
            SReclaimable=50.0, SwapTotal=500.0, SwapFree=swap_free, Shmem=10.0,
        )  # fmt: skip
        header, row = path.read_text().splitlines()
        fields = dict(zip(header.split(","), row.split(","), strict=True))
        fields["MemAvailable_MB"] = ""
        if index >= 3:
            fields["Shmem_MB"] = ""
        path.write_text(f"{header}\n{','.join(fields.values())}\n")
    return dumps


@pytest.mark.slow
def test_a_field_the_kernel_lacks_is_an_empty_column_one_warning_and_no_line(
    tmp_path: Path,
) -> None:
    dumps = old_kernel_dumps(tmp_path / "dumps")
    out = tmp_path / "out"
    result = run_script(NAME, "--dumps-dir", str(dumps), "--out-dir", str(out))
    assert result.returncode == 0, result.stderr
    # One line for both fields, as psutil warns once for all it lacks.
    assert result.stderr.splitlines() == [
        "analyze_system: warning: fields missing from snapshots (of 5): Shmem from 2 (Linux"
        " before 2.6.32), MemAvailable from 5 (Linux before 3.14); RAM_Used_Shmem_MB and"
        " RAM_Used_Available_MB are empty there",
    ]
    table = pd.read_csv(out / "system_metrics.csv", keep_default_na=False)
    assert table["RAM_Used_Available_MB"].tolist() == [""] * 5
    assert table["RAM_Used_Shmem_MB"].tolist() == ["610.000", "620.000", "710.000", "", ""]
    row = next(line for line in result.stdout.splitlines() if "MemTotal - MemAvailable" in line)
    assert row.split()[-3:] == ["n/a", "n/a", "n/a"]
    assert "MemAvailable is in none of these snapshots (Linux before 3.14): no forecast" in (
        result.stdout
    )
    assert json.loads((out / "forecast.json").read_text()) == {
        "basis": "MemAvailable",
        "window_days": 0,
        "falls_MB_per_day": None,
        "days_to_zero": None,
        "zero_date": None,
        "falls_MB_per_day_low": None,
        "falls_MB_per_day_high": None,
        "days_to_zero_low": None,
        "days_to_zero_high": None,
        "p_value": None,
        "level": 0.01,
        "significant": None,
        "longest_window_days": 28,
        "step_at": None,
        "step_MB": None,
    }
    metrics, _ = load(dumps)
    spec = PLOT_SPECS[PLOT_NAMES.index("ram_used_definitions.png")]
    assert [line.label for line in drawn_lines(spec, metrics)] == ["htop", "htop + Shmem"]
    assert_real_png(out / "ram_used_definitions.png")


def falling_host(dumps: Path, days: int = 8, falls_mb_per_day: float = 100.0) -> Path:
    """Every 10 minutes for `days` days: MemAvailable falls steadily under a daily cycle and
    a wander of a few dozen MiB."""
    dumps.mkdir(exist_ok=True)
    start = pd.Timestamp("2026-03-01")
    wander = np.cumsum(np.random.default_rng(8).normal(0.0, 4.0, days * 144))
    for index in range(days * 144):
        moment = start + pd.Timedelta(minutes=10 * index)
        age_days = index / 144
        cycle = 300.0 * np.sin(2 * np.pi * age_days)
        available = 12_000.0 - falls_mb_per_day * age_days + cycle + wander[index] % 60
        write_sys(
            dumps, f"{moment:%Y%m%d_%H%M%S}", MemTotal=16_000.0, MemAvailable=available,
            MemFree=available - 1000, Buffers=100.0, Cached=900.0, SReclaimable=100.0,
            SwapTotal=0.0, SwapFree=0.0, Shmem=50.0,
        )  # fmt: skip
    return dumps


@pytest.fixture(scope="module")
def falling(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return falling_host(tmp_path_factory.mktemp("falling") / "dumps")


def run_system(dumps: Path, out: Path, *extra: str) -> Ran:
    return run_main(analyze_system.main, ["--dumps-dir", str(dumps), "--out-dir", str(out), *extra])


@pytest.mark.slow
def test_the_forecast_on_the_console_and_in_forecast_json(falling: Path, tmp_path: Path) -> None:
    status, stdout, stderr = run_system(falling, tmp_path)
    assert status == 0 and stderr == ""
    forecast = json.loads((tmp_path / "forecast.json").read_text())
    assert list(forecast) == [
        "basis",
        "window_days",
        "falls_MB_per_day",
        "days_to_zero",
        "zero_date",
        "falls_MB_per_day_low",
        "falls_MB_per_day_high",
        "days_to_zero_low",
        "days_to_zero_high",
        "p_value",
        "level",
        "significant",
        "longest_window_days",
        "step_at",
        "step_MB",
    ]
    assert forecast["basis"] == "MemAvailable" and forecast["window_days"] == 8
    assert forecast["significant"] is True and forecast["longest_window_days"] == 28
    assert forecast["falls_MB_per_day"] == pytest.approx(100, rel=0.1)
    # At the end MemAvailable is about 12,000 - 800 = 11,200 MiB: 112 days at 100 MiB/day.
    assert forecast["days_to_zero"] == pytest.approx(112, rel=0.1)
    zero = pd.Timestamp("2026-03-08 23:50") + pd.Timedelta(days=forecast["days_to_zero"])
    assert abs(pd.Timestamp(forecast["zero_date"]) - zero.normalize()) <= pd.Timedelta(days=1)
    last_line = next(line for line in stdout.splitlines() if line.startswith("MemAvailable"))
    assert last_line.startswith("MemAvailable falls 10")  # 100 MiB/day, give or take
    # The console says the JSON's numbers: the rate and its bounds, the days and theirs.
    low, high = forecast["falls_MB_per_day_low"], forecast["falls_MB_per_day_high"]
    assert low < forecast["falls_MB_per_day"] < high and low < 100 < high
    assert f"MiB/day ({low:.0f}-{high:.0f}) over the 8 days of data" in last_line
    fast, slow = forecast["days_to_zero_low"], forecast["days_to_zero_high"]
    assert f"zero in about {forecast['days_to_zero']:.0f} days ({fast:.0f}-{slow:.0f})" in last_line
    assert last_line.endswith(f", around {forecast['zero_date']} UTC")
    status, stdout, _ = run_system(falling, tmp_path, "--trend-days", "0.5")
    assert "MemAvailable: under a day of data in the last 0.5 days (12 h)" in stdout
    status, stdout, _ = run_system(falling, tmp_path, "--trend-days", "7")
    assert json.loads((tmp_path / "forecast.json").read_text())["window_days"] == 7
    assert "over the last 7 days: zero in about " in stdout


@pytest.mark.slow
@pytest.mark.parametrize(
    ("flags", "status", "alert"),
    [
        ([], 0, None),
        (["--alert-pct", "99"], 0, None),
        (["--alert-pct", "25"], 3, "RAM used (htop) is"),
        (["--alert-days", "30"], 0, None),
        (["--alert-days", "200"], 3, "MemAvailable reaches 0 in about 1"),
        (["--alert-pct", "25", "--alert-days", "200"], 3, "RAM used (htop) is"),
    ],
)
def test_alerts_exit_3_after_everything_is_written(
    falling: Path, tmp_path: Path, flags: list[str], status: int, alert: str | None
) -> None:
    result, _, stderr = run_system(falling, tmp_path, *flags)
    assert result == status
    assert (tmp_path / "forecast.json").exists() and (tmp_path / "system_metrics.csv").exists()
    lines = stderr.splitlines()
    if alert is None:
        assert lines == []
    else:
        assert lines[0].startswith(f"analyze_system: alert: {alert}")
        assert len(lines) == len([f for f in flags if f.startswith("--alert")])


# What a textfile says of the run itself rather than of the snapshots.
RUN_METRICS = ("pmi_analysis_duration_seconds", "pmi_analysis_timestamp_seconds")


@pytest.mark.slow
def test_no_plots_gives_the_same_answers_and_touches_no_png(tmp_path: Path) -> None:
    dumps = make_dumps(tmp_path / "dumps")
    answers = ["system_metrics.csv", "memory_breakdown.csv", "forecast.json", "pmi.prom"]
    runs: dict[str, Ran] = {}
    for name, extra in (("plots", []), ("no-plots", ["--no-plots"])):
        out = tmp_path / name
        out.mkdir()
        (out / "ram_used_htop.png").write_bytes(b"an older run's plot")
        flags = ["--alert-pct", "50", "--prometheus-textfile", str(out / "pmi.prom"), *extra]
        runs[name] = run_system(dumps, out, *flags)
    with_plots, without = tmp_path / "plots", tmp_path / "no-plots"
    assert runs["plots"].status == runs["no-plots"].status == 3  # 60 % used, at or above 50
    assert runs["plots"].stderr == runs["no-plots"].stderr
    for name in PLOT_NAMES:
        assert_real_png(with_plots / name)
    assert [p.name for p in without.glob("*.png")] == ["ram_used_htop.png"]
    assert (without / "ram_used_htop.png").read_bytes() == b"an older run's plot"
    for name in answers[:-1]:
        assert (without / name).read_bytes() == (with_plots / name).read_bytes(), name
    textfiles = [parse_textfile((out / "pmi.prom").read_text()) for out in (with_plots, without)]
    for samples in textfiles:
        for key in [key for key in samples if key[0] in RUN_METRICS]:
            del samples[key]
    assert textfiles[0] == textfiles[1] and textfiles[0]
    plots_line = f"Wrote {len(PLOT_NAMES)} plots: "
    stdout = [runs[name].stdout.replace(str(tmp_path / name), "<out>") for name in runs]
    assert [line for line in stdout[0].splitlines() if not line.startswith(plots_line)] == (
        stdout[1].splitlines()
    )


@pytest.mark.slow
def test_the_percent_alert_says_what_and_when(falling: Path, tmp_path: Path) -> None:
    _, _, stderr = run_system(falling, tmp_path, "--alert-pct", "25")
    metrics, _ = load(falling)
    latest = metrics["RAM_Used_Pct"].iloc[-1]
    assert stderr == (
        f"analyze_system: alert: RAM used (htop) is {latest:.2f}% of MemTotal at the last"
        " snapshot (2026-03-08 23:50:00 UTC), at or above --alert-pct 25\n"
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    "flags", [["--alert-pct", "0"], ["--alert-days", "-3"], ["--trend-days", "x"]]
)
def test_bad_alert_values_are_usage_errors(flags: list[str]) -> None:
    result = run_script(NAME, *flags)
    assert result.returncode == 2
    assert "error: argument" in result.stderr


@pytest.mark.slow
def test_a_size_no_kernel_reports_is_one_bad_file_and_no_stray_warning(tmp_path: Path) -> None:
    """MemTotal_MB=1e308 once overflowed in the plots (numpy's RuntimeWarning on stderr)."""
    dumps = make_dumps(tmp_path / "dumps")
    huge = write_sys(dumps, "20260301_100500", MemTotal=1e308, MemFree=1.0, MemAvailable=1.0)
    ran = run_system(dumps, tmp_path / "out")
    assert ran.status == 0
    (line,) = ran.stderr.splitlines()
    assert line.startswith(f"analyze_system: warning: {huge}: MemTotal_MB on line 2 is '1000")
    assert line.endswith("'…, out of range; skipped")
