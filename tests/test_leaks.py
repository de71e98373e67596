"""The leak finder in the process analysis: process identity, the verdicts on a modelled
two-week host, leaks.csv, the plots, the flags and the exit statuses.

The verdict rules themselves are tested one scenario at a time in test_growth.py; here the
whole path runs: files -> instances -> 6-hour floors -> verdicts -> outputs.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import analyze_processes
from conftest import FullRow, ProcessRow, assert_real_png, bundle_day, run_main, write_proc
from utils.judge.gaps import usual_interval_s
from utils.judge.growth import GrowthParams
from utils.judge.leaks import Judged, find_leaks, judged_floors
from utils.outputs.process_tables import LEAK_COLUMNS
from utils.outputs.program_leak_outputs import PROGRAM_LEAK_COLUMNS
from utils.parser import PROCESS_PREFIX, TimeWindow, find_dumps, find_sources
from utils.process_analysis import ReadPlan, load_all_records
from utils.reduce.process_records import Floors, InstanceTable

START = datetime(2026, 3, 1)
STEP = timedelta(minutes=10)
PER_DAY = 144
DAYS = 14


# --- Process identity ------------------------------------------------------------------


def stamp(index: int) -> str:
    return f"{START + index * STEP:%Y%m%d_%H%M%S}"


def instances_of(dumps: Path) -> list[tuple[int, int, int]]:
    """(PID, first snapshot read, last) of each instance, by PID then time."""
    records = load_all_records(find_dumps(dumps, PROCESS_PREFIX), lambda p, why: None)
    table = records.instances()
    return sorted(
        zip(table.pid.tolist(), table.first_rank.tolist(), table.last_rank.tolist(), strict=True)
    )


def test_a_pid_absent_from_a_snapshot_is_a_new_instance_when_it_returns(tmp_path: Path) -> None:
    present = {7: [0, 1, 2, 5, 6], 8: [0, 1, 2, 3, 4, 5, 6], 9: [3]}
    for index in range(7):
        rows: list[ProcessRow] = [
            (pid, 1, "root", 10.0, 20.0, f"/bin/p{pid}")
            for pid, seen in present.items()
            if index in seen
        ]
        write_proc(tmp_path, stamp(index), rows)
    assert instances_of(tmp_path) == [(7, 0, 2), (7, 5, 6), (8, 0, 6), (9, 3, 3)]


def test_a_collector_outage_or_a_bad_file_does_not_split_an_instance(tmp_path: Path) -> None:
    for index in [0, 1, 2, 50, 51]:  # 8 hours without snapshots between 2 and 50
        write_proc(tmp_path, stamp(index), [(7, 1, "root", 10.0, 20.0, "/bin/p")])
    (tmp_path / f"{PROCESS_PREFIX}{stamp(51)}.csv").write_text("not a dump\n1\n")  # unreadable
    write_proc(tmp_path, stamp(52), [(7, 1, "root", 10.0, 20.0, "/bin/p")])
    assert instances_of(tmp_path) == [(7, 0, 4)]


def test_identity_is_the_same_whatever_the_batches(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    for index in range(60):
        pids = sorted({int(p) for p in rng.integers(1, 12, size=8)})
        write_proc(tmp_path, stamp(index), [(p, 1, "u", 1.0, 2.0, f"c{p}") for p in pids])
    files = find_dumps(tmp_path, PROCESS_PREFIX)
    described = []
    for batch_bytes in (1 << 20, 1):
        table = load_all_records(
            files, lambda p, why: None, how=ReadPlan(batch_bytes=batch_bytes)
        ).instances()
        columns = (table.pid, table.first_rank, table.last_rank, table.samples, table.min_milli)
        described.append(sorted(zip(*(column.tolist() for column in columns), strict=True)))
    assert described[0] == described[1]
    assert len(described[0]) > 60  # PIDs come and go: many instances


def started(minutes: int) -> str:
    """A STARTED value: minutes after midnight of the day before START."""
    return f"{START - timedelta(days=1) + timedelta(minutes=minutes):%Y-%m-%d %H:%M:%S}.00"


def test_with_started_an_absence_is_one_instance_and_a_reuse_is_two(tmp_path: Path) -> None:
    """A process missing from two snapshots is still itself; a PID the kernel reused
    between two snapshots (another start time) is another process."""
    for index in range(7):
        rows: list[FullRow] = []
        if index not in (3, 4):
            rows.append((7, 1, "root", 10.0, 20.0, "/bin/p7", 5.0, 0.0, started(1)))
        reused = index >= 3
        rows.append((8, 1, "root", 10.0, 20.0, "/bin/p8", 5.0, 0.0, started(2 + 600 * reused)))
        write_proc(tmp_path, stamp(index), rows)
    files = find_dumps(tmp_path, PROCESS_PREFIX)
    for batch_bytes in (1 << 20, 1):
        records = load_all_records(
            files, lambda p, why: None, how=ReadPlan(batch_bytes=batch_bytes)
        )
        table = records.instances()
        found = zip(
            table.pid.tolist(), table.first_rank.tolist(), table.last_rank.tolist(), strict=True
        )
        assert sorted(found) == [(7, 0, 6), (8, 0, 2), (8, 3, 6)]


@settings(max_examples=max(10, settings().max_examples // 5), deadline=None)
@given(
    st.lists(
        st.lists(st.tuples(st.integers(1, 4), st.integers(0, 2)), max_size=4),
        min_size=1,
        max_size=12,
    ),
    st.sampled_from([1, 1 << 20]),
)
def test_with_started_an_instance_is_exactly_a_pid_and_its_start(
    snapshots: list[list[tuple[int, int]]], batch_bytes: int
) -> None:
    """Any presence and reuse pattern, in any batches: one instance per (PID, STARTED), from
    its first snapshot to its last."""
    expected: dict[tuple[int, int], tuple[int, int]] = {}
    with tempfile.TemporaryDirectory() as folder:
        dumps = Path(folder)
        for index, listed in enumerate(snapshots):
            rows: dict[int, FullRow] = {}
            for pid, start in listed:  # one row per PID in a snapshot, as ps lists it
                rows[pid] = (pid, 1, "u", 1.0, 2.0, "c", 1.0, 0.0, started(start))
            for pid, row in rows.items():
                key = (pid, int(row[8][14:16]))
                first, _ = expected.get(key, (index, index))
                expected[key] = (first, index)
            write_proc(dumps, stamp(index), list(rows.values()))
        files = find_dumps(dumps, PROCESS_PREFIX)
        table = load_all_records(
            files, lambda p, why: None, how=ReadPlan(batch_bytes=batch_bytes)
        ).instances()
    read_ranks = sorted({index for index, listed in enumerate(snapshots) if listed})
    rank_of = {index: rank for rank, index in enumerate(read_ranks)}
    found = sorted(
        zip(table.pid.tolist(), table.first_rank.tolist(), table.last_rank.tolist(), strict=True)
    )
    assert found == sorted(
        (pid, rank_of[first], rank_of[last]) for (pid, _), (first, last) in expected.items()
    )


def test_old_and_new_dumps_read_as_one_series_loose_or_in_one_bundle(tmp_path: Path) -> None:
    """A collector upgraded mid-day: the first snapshots have six columns, the rest nine."""
    for index in range(6):
        old: ProcessRow = (7, 1, "root", 10.0 + index, 20.0, "/bin/p")
        new: FullRow = (*old, 8.0 + index, 0.0, started(1))
        write_proc(tmp_path, stamp(index), [old if index < 3 else new])
    assert instances_of(tmp_path) == [(7, 0, 5)]
    bundle_day(tmp_path, f"{START:%Y%m%d}")
    warnings: list[str] = []
    records = load_all_records(
        find_sources(tmp_path, PROCESS_PREFIX, TimeWindow()), lambda p, why: warnings.append(why)
    )
    assert warnings == []
    _, rss, foot, swap = records.pid_memory(7)
    assert rss.tolist() == [10.0, 11.0, 12.0, 13.0, 14.0, 15.0]
    assert np.isnan(foot[:3]).all() and foot[3:].tolist() == [11.0, 12.0, 13.0]
    assert np.isnan(swap[:3]).all() and swap[3:].tolist() == [0.0, 0.0, 0.0]
    table = records.instances()
    assert table.samples.tolist() == [6] and table.foot_samples.tolist() == [3]


# --- A modelled two-week host ----------------------------------------------------------


class Process(NamedTuple):
    pid: int
    cmd: str
    first: int  # snapshot index
    last: int
    rss_mb: Callable[[np.ndarray], np.ndarray]  # of days since the start of the dumps


def noisy(base: float, seed: int, share: float = 0.01) -> Callable[[np.ndarray], np.ndarray]:
    def rss(days: np.ndarray) -> np.ndarray:
        noise = np.random.default_rng(seed).normal(0.0, base * share, len(days))
        return base + noise

    return rss


def host() -> list[Process]:
    end = DAYS * PER_DAY - 1
    processes = [
        # flagged: a steady leak of 40 MiB/day under noise
        Process(
            100, "/usr/bin/leaky-service --port 8080", 0, end, lambda d: noisy(300, 1)(d) + 40 * d
        ),
        # flagged: flat for a week, then 60 MiB/day
        Process(
            200,
            "/opt/app/bin/worker --queue=mail",
            0,
            end,
            lambda d: noisy(500, 2)(d) + 60 * np.maximum(0, d - 7),
        ),
        # not flagged: a cache warming up for six hours, then flat
        Process(
            300,
            "/usr/sbin/cache-daemon",
            0,
            end,
            lambda d: noisy(3000, 3)(d) - 2800 * np.exp(-d * 24 / 2),
        ),
        # not flagged: a nightly job spiking by 3 GB for an hour
        Process(
            400,
            "/usr/local/bin/nightly-batch --all",
            0,
            end,
            lambda d: noisy(200, 4)(d) + 3000 * ((d % 1) < 1 / 24),
        ),
        # not flagged: big and flat
        Process(500, "/usr/bin/java -Xmx4g -jar big.jar", 0, end, noisy(2500, 5, 0.03)),
        # not flagged: a step up, then a plateau
        Process(
            600, "/usr/bin/python3 step.py", 0, end, lambda d: noisy(400, 6)(d) + 800 * (d > 5)
        ),
        # not flagged: a PID reused after an absence (a 5 MB bash, then a flat trainer)
        Process(700, "-bash", 0, 2 * PER_DAY, noisy(5, 7)),
        Process(700, "python3 train.py --epochs 90", 2 * PER_DAY + 3, end, noisy(2500, 8)),
        # not flagged: seen for an hour, growing fast
        Process(800, "make -j2", 100, 106, lambda d: 10 + 5000 * d),
    ]
    # flagged: a service leaking 50 MiB/day, restarted every 3.5 days with a new PID
    for number, first in enumerate(range(0, DAYS * PER_DAY, PER_DAY * 7 // 2)):
        last = min(first + PER_DAY * 7 // 2 - 2, end)
        begin = first / PER_DAY
        processes.append(
            Process(900 + number, "/usr/bin/restarted --leaky", first, last, leaking(begin, number))
        )
    return processes


def leaking(begin_days: float, seed: int) -> Callable[[np.ndarray], np.ndarray]:
    """150 MiB at its start, then 50 MiB/day."""

    def rss(days: np.ndarray) -> np.ndarray:
        return noisy(150, 20 + seed)(days) + 50 * (days - begin_days)

    return rss


def write_host(dumps: Path) -> None:
    dumps.mkdir(exist_ok=True)
    table = {p: p.rss_mb(np.arange(DAYS * PER_DAY) / PER_DAY) for p in host()}
    for index in range(DAYS * PER_DAY):
        rows: list[ProcessRow] = [(1, 0, "root", 12.0, 20.0, "/sbin/init")]
        for process, rss in table.items():
            if process.first <= index <= process.last:
                rows.append(
                    (process.pid, 1, "app", round(float(rss[index]), 3), 9000.0, process.cmd)
                )
        write_proc(dumps, stamp(index), rows)


@pytest.fixture(scope="module")
def dumps(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("host") / "dumps"
    write_host(folder)
    return folder


class Run(NamedTuple):
    status: int
    stdout: str
    stderr: str
    out: Path


def run(dumps: Path, out: Path, *extra: str) -> Run:
    argv = ["--dumps-dir", str(dumps), "--out-dir", str(out), "--top", "2", *extra]
    return Run(*run_main(analyze_processes.main, argv), out)


@pytest.fixture(scope="module")
def analysed(dumps: Path, tmp_path_factory: pytest.TempPathFactory) -> Run:
    return run(dumps, tmp_path_factory.mktemp("out"), "--fail-on-leak")


@pytest.mark.slow
def test_the_leaks_and_only_the_leaks_are_flagged(analysed: Run) -> None:
    leaks = pd.read_csv(analysed.out / "leaks.csv")
    assert sorted(leaks["PID"]) == [100, 200, 900, 901, 902, 903]
    by_pid = leaks.set_index("PID")
    assert by_pid.loc[100, "growth_MB_per_day"] == pytest.approx(40, rel=0.15)
    assert by_pid.loc[200, "growth_MB_per_day"] == pytest.approx(60, rel=0.15)
    for pid in [900, 901, 902, 903]:
        assert by_pid.loc[pid, "growth_MB_per_day"] == pytest.approx(50, rel=0.15)
    assert leaks["growth_MB_per_day"].is_monotonic_decreasing
    assert all(0 <= c <= 1 for c in leaks["confidence"])


@pytest.mark.slow
def test_a_program_leaking_in_each_life_is_one_verdict_across_restarts(analysed: Run) -> None:
    programs = pd.read_csv(analysed.out / "program_leaks.csv")
    assert list(programs.columns) == list(PROGRAM_LEAK_COLUMNS)
    assert programs["program"].tolist() == ["restarted"]  # the other leakers live once
    row = programs.iloc[0]
    assert (row["leaking_lives"], row["lives"], row["PIDs"]) == (4, 4, "900 901 902 903")
    assert row["min_MB_per_day"] <= row["growth_MB_per_day"] <= row["max_MB_per_day"]
    assert row["growth_MB_per_day"] == pytest.approx(50, rel=0.15)
    assert row["restart_every_s"] == 3.5 * 86_400
    lines = analysed.stdout.splitlines()
    heading = lines.index("Leaks across restarts:")
    sentence = lines[heading + 1]
    assert sentence.startswith("  restarted leaks ")
    assert " MiB/day in each of its 4 lives (" in sentence
    assert sentence.endswith("; restarted every 3.5 days")


@pytest.mark.slow
def test_the_start_of_a_late_leak_is_found_within_a_day(analysed: Run) -> None:
    leaks = pd.read_csv(analysed.out / "leaks.csv").set_index("PID")
    since = datetime.strptime(str(leaks.loc[200, "since"]), "%Y-%m-%d %H:%M:%S")
    assert abs(since - (START + timedelta(days=7))) <= timedelta(days=1)
    assert leaks.loc[200, "growth_MB"] == pytest.approx(60 * 7, rel=0.15)


@pytest.mark.slow
def test_leaks_csv_has_exactly_its_columns_and_formats(analysed: Run) -> None:
    lines = (analysed.out / "leaks.csv").read_text(encoding="utf-8").splitlines()
    assert lines[0] == ",".join(LEAK_COLUMNS)
    first = lines[1].split(",")
    assert first[1] == f"{START:%Y-%m-%d %H:%M:%S}"  # first_seen
    for number in first[4:7]:
        assert len(number.split(".")[1]) == 3  # 3 decimals
    # Fastest first (60 MiB/day); judged on RSS: these dumps have no anon + swap.
    assert lines[1].endswith(",/opt/app/bin/worker --queue=mail,RSS")


@pytest.mark.slow
def test_leak_plots_are_real_and_named_by_pid_and_first_seen(analysed: Run) -> None:
    plots = sorted(p.name for p in analysed.out.glob("leak_*.png"))
    assert "leak_200_20260301_000000.png" in plots
    assert "leak_901_20260304_120000.png" in plots
    assert len(plots) == 6
    for name in plots:
        assert_real_png(analysed.out / name)


@pytest.mark.slow
def test_console_shows_the_leak_table_and_fail_on_leak_exits_3(analysed: Run) -> None:
    assert analysed.status == 3
    assert analysed.stderr == "analyze_processes: 6 process instances leak; exit status 3\n"
    lines = analysed.stdout.splitlines()
    heading = next(i for i, line in enumerate(lines) if line.startswith("Sustained growth"))
    assert lines[heading] == (
        "Sustained growth (leaks) in 6 of the 13 process instances judged (of 14: those"
        " watched at least 2 days in 13 d 23 h 50 min), fastest first"
    )
    assert lines[heading + 2].split()[:3] == ["PID", "since", "(UTC)"]
    assert lines[heading + 3].split()[0] == "200"


@pytest.mark.slow
def test_without_the_flag_a_leak_is_exit_0(dumps: Path, tmp_path: Path) -> None:
    result = run(dumps, tmp_path, "--until", "2026-03-02 23:59")
    assert result.status == 0, result.stderr
    assert result.stderr == ""


@pytest.mark.slow
def test_a_higher_minimum_rate_hides_the_slower_leaks(dumps: Path, tmp_path: Path) -> None:
    result = run(dumps, tmp_path, "--min-growth", "55", "--fail-on-leak")
    assert result.status == 3
    assert pd.read_csv(tmp_path / "leaks.csv")["PID"].tolist() == [200]
    result = run(dumps, tmp_path, "--min-growth", "1000", "--fail-on-leak")
    assert result.status == 0
    assert (
        "No process shows sustained growth (13 of 14 process instances judged: those watched"
        " at least 2 days in 13 d 23 h 50 min)" in result.stdout
    )
    assert not list(tmp_path.glob("leak_*.png"))  # the earlier run's are removed


@pytest.mark.slow
def test_a_longer_minimum_span_hides_the_restarted_instances(dumps: Path, tmp_path: Path) -> None:
    run(dumps, tmp_path, "--min-days", "4")
    assert sorted(pd.read_csv(tmp_path / "leaks.csv")["PID"]) == [100, 200]


@pytest.mark.slow
def test_match_and_the_window_apply_to_the_leak_finder(dumps: Path, tmp_path: Path) -> None:
    run(dumps, tmp_path, "--match", "restarted")
    assert sorted(pd.read_csv(tmp_path / "leaks.csv")["PID"]) == [900, 901, 902, 903]
    run(dumps, tmp_path, "--until", "2026-03-06")  # before PID 200 starts to leak
    assert 200 not in pd.read_csv(tmp_path / "leaks.csv")["PID"].tolist()


@pytest.mark.parametrize(
    "flags", [["--min-growth", "-1"], ["--min-days", "x"], ["--min-growth", "inf"]]
)
def test_bad_thresholds_are_usage_errors(
    flags: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        analyze_processes.main(["--dumps-dir", str(tmp_path), *flags])
    assert exit_info.value.code == 2
    assert "error: argument" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.parametrize("min_span_s", [None, 3600.0, 4 * 86400.0])
def test_the_floors_of_instances_never_judged_are_left_out_and_change_nothing(
    dumps: Path, min_span_s: float | None
) -> None:
    """Judged.of given the finder's interval and parameters takes only the floors of the
    instances the finder judges: the same leaks, fits and counts as with every floor."""
    records = load_all_records(find_dumps(dumps, PROCESS_PREFIX), lambda path, why: None)
    table = records.instances()
    params = GrowthParams(min_span_s=min_span_s)
    interval = usual_interval_s(records.times)
    every = Judged.of(records, table)
    judged_only = Judged.of(records, table, interval, params)
    assert 0 < len(judged_only.floors.instance) < len(every.floors.instance)
    assert find_leaks(records, judged_only, interval, params) == find_leaks(
        records, every, interval, params
    )


class _FloorStore:
    """What judged_floors asks of the records: each kind's floors of the instances asked for."""

    def __init__(self, rss: Floors, foot: Floors) -> None:
        self.instance_count = 40
        self.kinds = (rss, foot)

    def _of(self, kind: int, wanted: np.ndarray) -> Floors:
        floors = self.kinds[kind]
        return Floors(*(column[wanted[floors.instance]] for column in floors))

    def floors(self, wanted: np.ndarray) -> Floors:
        return self._of(0, wanted)

    def foot_floors(self, wanted: np.ndarray) -> Floors:
        return self._of(1, wanted)


@given(seed=st.integers(0, 2**32 - 1))
def test_judged_floors_merge_the_kinds_as_one_sort_would(seed: int) -> None:
    """Each instance's RSS floors or its footprint floors, by instance then bucket: the
    column-by-column merge against concatenating everything and sorting it."""
    rng = np.random.default_rng(seed)

    def kind() -> Floors:
        pairs = sorted({(int(i), int(b)) for i, b in rng.integers(0, [40, 30], (60, 2))})
        instance, bucket = (np.array(column, np.int64) for column in zip(*pairs, strict=True))
        return Floors(
            instance, bucket, rng.integers(0, 9999, len(pairs)), rng.integers(1, 9, len(pairs))
        )

    rss, foot = kind(), kind()
    number = np.flatnonzero(rng.random(40) < 0.9)
    zeros = np.zeros(len(number), np.int64)
    table = InstanceTable(number, *([zeros] * 9))
    footed, judged = rng.random(len(number)) < 0.5, rng.random(len(number)) < 0.7
    got = judged_floors(_FloorStore(rss, foot), table, footed, judged)  # type: ignore[arg-type]
    use_foot = np.isin(foot.instance, number[footed & judged])
    use_rss = np.isin(rss.instance, number[~footed & judged])
    parts = [np.concatenate([a[use_rss], b[use_foot]]) for a, b in zip(rss, foot, strict=True)]
    order = np.lexsort((parts[1], parts[0]))
    assert [column.tolist() for column in got] == [part[order].tolist() for part in parts]
