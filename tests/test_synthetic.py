"""Tests for the synthetic dump generator that the analysis tests and benchmark rely on.

If these dumps drifted from what collect_memory.py writes, every test built on them
would be testing the wrong format, so the checks below compare bytes with the
collector's own formatting functions, not just field counts.
"""

from __future__ import annotations

import csv
import io
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from collect_memory import ProcessRow, process_rows, sys_row
from synthetic import SYNTHETIC_PROCESS_HEADER, GeneratedSummary, generate_dumps, main
from utils.collect.procfs import BootClock, ProcessMemory
from utils.collect.snapshot_format import (
    COUNTER_FIELDS,
    MEMINFO_FIELDS,
    PAGE_COUNT_FIELDS,
    SYS_HEADER,
    TIMESTAMP_FORMAT,
    csv_text,
    snapshot_names,
)

SNAPSHOTS = 30
PROCESSES = 40
START = datetime(2026, 1, 1, tzinfo=UTC)
INTERVAL_S = 600
MB_TEXT = re.compile(r"\d+\.\d{3}")


@dataclass(frozen=True)
class Snapshot:
    stamp: datetime
    sys_values: dict[str, float]  # MiB, or pages for HugePages_*
    processes: list[list[str]]  # parsed rows, header excluded


@dataclass(frozen=True)
class Run:
    out_dir: Path
    summary: GeneratedSummary
    snapshots: list[Snapshot]


def read_rows(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.reader(handle))


def load(out_dir: Path) -> list[Snapshot]:
    """Every snapshot pair in out_dir, oldest first."""
    snapshots = []
    for sys_path in sorted(out_dir.glob(snapshot_names("*")[0])):
        stamp_text = sys_path.stem.removeprefix("sys_mem_")
        sys_name, process_name = snapshot_names(stamp_text)
        assert sys_path.name == sys_name
        sys_rows = read_rows(sys_path)
        assert sys_rows[0] == list(SYS_HEADER)
        assert len(sys_rows) == 2
        meminfo, extra = sys_rows[1][: len(MEMINFO_FIELDS)], sys_rows[1][len(MEMINFO_FIELDS) :]
        values = dict(zip(MEMINFO_FIELDS, map(float, meminfo), strict=True))
        assert str(uuid.UUID(extra[0])) == extra[0]  # the boot_id
        values |= {
            name: float(text) for name, text in zip(COUNTER_FIELDS, extra[1:-1], strict=True)
        }
        assert extra[-1] == ""  # no OOM victims on this host
        rows = read_rows(out_dir / process_name)
        assert rows[0] == list(SYNTHETIC_PROCESS_HEADER)
        stamp = datetime.strptime(stamp_text, TIMESTAMP_FORMAT).replace(tzinfo=UTC)
        snapshots.append(Snapshot(stamp, values, rows[1:]))
    return snapshots


def mb_to_kb(text: str) -> int:
    """Undo kb/1024 to 3 decimals; exact for whole 4 kB pages (0.001 MiB < 4 kB)."""
    return round(float(text) * 1024 / 4) * 4


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    out_dir = tmp_path_factory.mktemp("dumps")
    summary = generate_dumps(out_dir, SNAPSHOTS, PROCESSES, seed=7)
    return Run(out_dir, summary, load(out_dir))


def all_rows(run: Run) -> Iterator[list[str]]:
    for snapshot in run.snapshots:
        yield from snapshot.processes


def file_bytes(out_dir: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(out_dir.iterdir())}


def test_same_seed_gives_identical_bytes(tmp_path: Path) -> None:
    first = generate_dumps(tmp_path / "a", 12, PROCESSES, seed=3)
    second = generate_dumps(tmp_path / "b", 12, PROCESSES, seed=3)
    other = generate_dumps(tmp_path / "c", 12, PROCESSES, seed=4)
    assert first == second
    assert file_bytes(tmp_path / "a") == file_bytes(tmp_path / "b")
    assert file_bytes(tmp_path / "a") != file_bytes(tmp_path / "c")
    assert other.snapshots == 12


def test_summary_and_file_names(run: Run) -> None:
    summary = run.summary
    assert summary.snapshots == SNAPSHOTS == len(run.snapshots)
    assert summary.first == START
    assert summary.last == START + timedelta(seconds=(SNAPSHOTS - 1) * INTERVAL_S)
    stamps = [snapshot.stamp for snapshot in run.snapshots]
    assert stamps == [START + timedelta(seconds=i * INTERVAL_S) for i in range(SNAPSHOTS)]
    names = sorted(path.name for path in run.out_dir.iterdir())
    expected = sorted(
        name for stamp in stamps for name in snapshot_names(stamp.strftime(TIMESTAMP_FORMAT))
    )
    assert names == expected
    assert summary.bytes_written == sum(path.stat().st_size for path in run.out_dir.iterdir())


def test_files_are_byte_for_byte_what_the_collector_writes(run: Run) -> None:
    """Re-render each parsed file with the collector's own functions: same bytes."""
    for path in sorted(run.out_dir.glob(snapshot_names("*")[1])):
        raw = path.read_bytes()
        text = raw.decode("utf-8")
        assert text.endswith("\n")
        rows = read_rows(path)[1:]
        parsed = []
        memory = []
        cgroups = []
        for row in rows:
            assert len(row) == 10
            pid, ppid, user, rss, vsz, cmd, anon, swap, started, cgroup = row
            assert cgroup.startswith("/")
            cgroups.append(cgroup)
            assert pid.isdigit() and ppid.isdigit()
            assert MB_TEXT.fullmatch(rss) and MB_TEXT.fullmatch(vsz)
            parsed.append(ProcessRow(int(pid), int(ppid), user, mb_to_kb(rss), mb_to_kb(vsz), cmd))
            memory.append(ProcessMemory(optional_kb(anon), optional_kb(swap), since_1970(started)))
        # Ticks counted from 1970 at 100 a second: the text is the start time itself.
        clock = BootClock(0, 100)
        rebuilt = process_rows(parsed, memory, clock, cgroups)
        assert csv_text(SYNTHETIC_PROCESS_HEADER, rebuilt) == text
        assert len(parsed) == PROCESSES
        pids = [row.pid for row in parsed]
        assert pids == sorted(set(pids))  # unique, in PID order like ps
    for path in sorted(run.out_dir.glob(snapshot_names("*")[0])):
        text = path.read_text(encoding="utf-8")
        values = read_rows(path)[1]
        meminfo, extra = values[: len(MEMINFO_FIELDS)], values[len(MEMINFO_FIELDS) :]
        kb = {
            name: int(value) if name in PAGE_COUNT_FIELDS else mb_to_kb(value)
            for name, value in zip(MEMINFO_FIELDS, meminfo, strict=True)
        }
        counted = {name: int(text) for name, text in zip(COUNTER_FIELDS, extra[1:-1], strict=True)}
        assert csv_text(SYS_HEADER, [sys_row(kb, extra[0], counted, extra[-1])]) == text


def optional_kb(text: str) -> int | None:
    return None if text == "" else mb_to_kb(text)


def since_1970(started: str) -> int:
    """STARTED as hundredths of a second since 1970."""
    moment = datetime.strptime(started, "%Y-%m-%d %H:%M:%S.%f").replace(tzinfo=UTC)
    return round(moment.timestamp() * 100)


def test_process_values_look_like_ps(run: Run) -> None:
    for _pid, ppid, user, rss, vsz, cmd, *_ in all_rows(run):
        assert abs(float(rss) * 1024 - mb_to_kb(rss)) < 0.6  # whole 4 kB pages
        assert float(vsz) >= float(rss)
        if cmd.startswith("[") and cmd.endswith("]"):
            assert (user, rss, vsz) == ("root", "0.000", "0.000")
            assert ppid == ("0" if cmd == "[kthreadd]" else "2")
        else:
            assert float(rss) > 0
    first = run.snapshots[0].processes
    kernel = [row for row in first if row[5].startswith("[")]
    assert abs(len(kernel) - 0.15 * PROCESSES) <= 1


def test_short_lived_processes_get_new_higher_pids(run: Run) -> None:
    seen: set[int] = set()
    gone: set[int] = set()
    previous: set[int] = set()
    for snapshot in run.snapshots:
        pids = {int(row[0]) for row in snapshot.processes}
        born = pids - previous
        if previous and born:
            assert min(born) > max(seen)  # never a reused or lower PID
        assert not pids & gone
        gone |= previous - pids
        seen |= pids
        previous = pids
    assert len(gone) >= 3


def test_outage_leaves_a_gap_of_the_full_runs_files(tmp_path: Path) -> None:
    full = generate_dumps(tmp_path / "full", 20, PROCESSES, seed=5)
    gapped = generate_dumps(tmp_path / "gap", 20, PROCESSES, seed=5, outage=(6, 4))
    assert gapped.snapshots == 16
    assert (gapped.first, gapped.last, gapped.leak_pid) == (full.first, full.last, full.leak_pid)
    full_files = file_bytes(tmp_path / "full")
    gap_files = file_bytes(tmp_path / "gap")
    missing = {
        name
        for i in range(6, 10)
        for name in snapshot_names((START + timedelta(seconds=i * 600)).strftime(TIMESTAMP_FORMAT))
    }
    assert set(full_files) - set(gap_files) == missing
    assert all(full_files[name] == data for name, data in gap_files.items())


def test_awkward_command_lines_and_users_appear_and_round_trip(run: Run) -> None:
    for snapshot in run.snapshots:
        cmds = [row[5] for row in snapshot.processes]
        users = [row[2] for row in snapshot.processes]
        checks = {
            "comma": any("," in cmd for cmd in cmds),
            "double quote": any('"' in cmd for cmd in cmds),
            "single quote": any("'" in cmd for cmd in cmds),
            "$HOME": any("$HOME" in cmd for cmd in cmds),
            "$(": any("$(" in cmd for cmd in cmds),
            "non-ASCII": any(any(ch in cmd for ch in "éü") for cmd in cmds),
            "CJK": any("日本語" in cmd for cmd in cmds),
            "emoji": any("🚀" in cmd for cmd in cmds),
            "300+ chars": any(len(cmd) >= 300 for cmd in cmds),
            "long user": any(len(user) > 8 for user in users),
        }
        assert all(checks.values()), [name for name, ok in checks.items() if not ok]
        for row in snapshot.processes:
            buffer = io.StringIO()
            csv.writer(buffer, lineterminator="\n").writerow(row)
            assert next(csv.reader(io.StringIO(buffer.getvalue()))) == row


def test_leaking_process_has_the_largest_spread(run: Run) -> None:
    history: dict[int, list[float]] = {}
    for row in all_rows(run):
        history.setdefault(int(row[0]), []).append(float(row[3]))
    spread = {pid: max(values) - min(values) for pid, values in history.items()}
    assert max(spread, key=spread.__getitem__) == run.summary.leak_pid
    leak = history[run.summary.leak_pid]
    assert len(leak) == SNAPSHOTS
    assert 150 < leak[0] < 250
    hours = (SNAPSHOTS - 1) * INTERVAL_S / 3600
    assert 100 / 24 * hours < leak[-1] - leak[0] < 500 / 24 * hours  # a few hundred MB/day
    second = sorted(spread.values())[-2]
    assert spread[run.summary.leak_pid] > 1.3 * second


def test_sys_rows_are_plausible_and_match_the_processes(run: Run) -> None:
    previous_swap_free = None
    for snapshot in run.snapshots:
        v = snapshot.sys_values
        assert all(value >= 0 for value in v.values())
        assert v["MemTotal"] in (16384.0, 32768.0)
        assert v["MemFree"] <= v["MemAvailable"] <= v["MemTotal"]
        assert v["SwapFree"] <= v["SwapTotal"]
        assert v["HugePages_Free"] <= v["HugePages_Total"]
        assert v["Slab"] == pytest.approx(v["SReclaimable"] + v["SUnreclaim"], abs=0.002)
        assert v["Shmem"] <= v["Cached"] and v["Mapped"] <= v["Cached"]
        used = v["MemTotal"] - v["MemFree"] - v["Buffers"] - v["Cached"] - v["SReclaimable"]
        rss = sum(float(row[3]) for row in snapshot.processes)
        assert 100 < used - rss < 1024  # kernel overhead on top of the summed RSS
        if previous_swap_free is not None:
            assert v["SwapFree"] <= previous_swap_free  # swap only creeps up
        previous_swap_free = v["SwapFree"]


def test_a_month_of_leak_ends_tight_on_memory(tmp_path: Path) -> None:
    """Few processes, 12 h apart: the leak fills RAM and swap starts to grow."""
    generate_dumps(tmp_path, 60, 400, seed=1, interval_s=12 * 3600)
    snapshots = load(tmp_path)
    first, last = snapshots[0].sys_values, snapshots[-1].sys_values
    assert last["MemAvailable"] < 0.25 * last["MemTotal"] < first["MemAvailable"]
    assert last["SwapFree"] < first["SwapFree"]


def test_bad_arguments_and_used_dirs_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="processes"):
        generate_dumps(tmp_path / "a", 5, processes=3)
    with pytest.raises(ValueError, match="outage"):
        generate_dumps(tmp_path / "a", 5, PROCESSES, outage=(3, 3))
    with pytest.raises(ValueError, match="nothing"):
        generate_dumps(tmp_path / "a", 5, PROCESSES, outage=(0, 5))
    generate_dumps(tmp_path / "b", 2, PROCESSES)
    with pytest.raises(FileExistsError):
        generate_dumps(tmp_path / "b", 2, PROCESSES)


def test_naive_start_is_taken_as_utc(tmp_path: Path) -> None:
    summary = generate_dumps(tmp_path, 2, PROCESSES, start=datetime(2026, 3, 1, 12))
    assert summary.first == datetime(2026, 3, 1, 12, tzinfo=UTC)
    assert (tmp_path / "sys_mem_20260301_121000.csv").exists()


def test_command_line_prints_one_summary_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_dir = tmp_path / "cli"
    assert main([str(out_dir), "--snapshots", "3", "--processes", "20", "--seed", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1 and "3 snapshot pairs" in lines[0]
    assert len(list(out_dir.iterdir())) == 6
    assert main([str(out_dir), "--snapshots", "3"]) == 1  # already holds dumps


def test_counters_count_up_as_a_kernel_s_do(run: Run) -> None:
    """Since boot, never down; full stalls are some stalls; no OOM kill on this host."""
    for name in COUNTER_FIELDS:
        series = [snapshot.sys_values[name] for snapshot in run.snapshots]
        assert series == sorted(series), name
    for snapshot in run.snapshots:
        values = snapshot.sys_values
        assert values["psi_full_total_us"] <= values["psi_some_total_us"]
        assert values["oom_kill"] == 0
