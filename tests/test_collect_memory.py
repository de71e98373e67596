"""Tests of the collector: parsing fixture text, writing files, schedule, signals, errors."""

from __future__ import annotations

import csv
import errno
import io
import itertools
import os
import signal
import stat
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import collect_memory as cm
import utils.collect.snapshot_format as fmt
from conftest import FakeProcess, script_path, stat_line, status_text, write_fake_proc
from utils.collect import procfs
from utils.collect.smaps import with_shares
from utils.core import atomic_files
from utils.core.signals import Stopped, StopSignals

SCRIPT = script_path("collect_memory.py")

# /proc/meminfo of an old kernel: no MemAvailable (before 3.14), no AnonHugePages.
OLD_MEMINFO = textwrap.dedent("""\
    MemTotal:        2048000 kB
    MemFree:          512000 kB
    Buffers:           10240 kB
    Cached:           204800 kB
    SwapCached:            0 kB
    Active:           300000 kB
    Inactive:         200000 kB
    Active(anon):     100000 kB
    SwapTotal:       1048576 kB
    SwapFree:         524288 kB
    Dirty:                12 kB
    Writeback:             0 kB
    AnonPages:        250000 kB
    Mapped:            50000 kB
    Shmem:              1536 kB
    Slab:              40960 kB
    SReclaimable:      20480 kB
    SUnreclaim:        20480 kB
    KernelStack:        2048 kB
    PageTables:         4096 kB
    CommitLimit:     2072576 kB
    Committed_AS:     999999 kB
    HugePages_Total:       4
    HugePages_Free:        3
    Hugepagesize:       2048 kB
    """)

# What `ps -ww --no-headers -eo pid,ppid,user:255,rss,vsz,cmd` prints (user column
# shortened here): kernel threads, a long user name, commas, quotes, non-ASCII,
# a command line that starts with spaces, and one line that is not ps output.
PS_OUTPUT = (
    "      1       0 root                        9148   37436 /sbin/init splash\n"
    "      2       0 root                           0       0 [kthreadd]\n"
    "     42       2 root                           0       0 [kworker/0:1-events]\n"
    '    812       1 averyverylongusername123  204800 1048576 python3 -c print("a,b")\n'
    "   1001     812 postgres-replica          123456 2345678 postgres: writer, 'x' $HOME\n"
    "   1002       1 root                        1024    2048 /bin/echo héllo 日本語 🙂\n"
    "   1003       1 root                        4096    8192    leading spaces kept\n"
    "garbage that is not ps output\n"
)


def read_csv_rows(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.reader(handle))


# --- parsing -------------------------------------------------------------------


def test_parse_meminfo_reads_kb_and_page_counts() -> None:
    values = procfs.parse_meminfo(OLD_MEMINFO)
    assert values["MemTotal"] == 2048000
    assert values["HugePages_Free"] == 3
    assert values["Active(anon)"] == 100000


def test_missing_fields_are_reported_and_written_empty() -> None:
    values = procfs.parse_meminfo(OLD_MEMINFO)
    assert cm.missing_meminfo_fields(values) == ["MemAvailable", "AnonHugePages"]
    row = dict(zip(fmt.SYS_HEADER, cm.sys_row(values), strict=True))
    assert row["MemAvailable_MB"] == ""
    assert row["AnonHugePages_MB"] == ""
    assert row["MemTotal_MB"] == "2000.000"  # 2048000 kB / 1024
    assert row["Buffers_MB"] == "10.000"
    assert row["Dirty_MB"] == "0.012"  # 12 / 1024 = 0.01171875
    assert row["Shmem_MB"] == "1.500"
    assert row["HugePages_Total"] == "4"  # a page count, not MiB
    assert row["HugePages_Free"] == "3"


def test_sys_header_is_meminfo_order_memtotal_first_hugepages_free_last() -> None:
    assert fmt.SYS_HEADER[0] == "MemTotal_MB"
    assert fmt.SYS_HEADER[: len(fmt.MEMINFO_HEADER)][-1] == "HugePages_Free"
    assert fmt.SYS_HEADER[len(fmt.MEMINFO_HEADER) :] == (
        "boot_id",
        "oom_kill",
        "pswpin",
        "pswpout",
        "pgmajfault",
        "psi_some_total_us",
        "psi_full_total_us",
        "oom_victims",
    )
    assert "HugePages_Total" in fmt.SYS_HEADER
    real_order = [name for name in procfs.parse_meminfo(OLD_MEMINFO) if name in fmt.MEMINFO_FIELDS]
    assert real_order == [name for name in fmt.MEMINFO_FIELDS if name in real_order]


def test_parse_ps_output_keeps_users_and_command_lines_whole() -> None:
    rows, bad = cm.parse_ps_output(PS_OUTPUT)
    assert bad == 1
    assert [row.pid for row in rows] == [1, 2, 42, 812, 1001, 1002, 1003]
    assert rows[1] == cm.ProcessRow(2, 0, "root", 0, 0, "[kthreadd]")
    assert rows[2].cmd == "[kworker/0:1-events]"
    assert rows[3].user == "averyverylongusername123"
    assert rows[3].cmd == 'python3 -c print("a,b")'
    assert rows[4] == cm.ProcessRow(
        1001, 812, "postgres-replica", 123456, 2345678, "postgres: writer, 'x' $HOME"
    )
    assert rows[5].cmd == "/bin/echo héllo 日本語 🙂"
    assert rows[6].cmd == "   leading spaces kept"


def test_process_csv_round_trips_awkward_text() -> None:
    rows, _ = cm.parse_ps_output(PS_OUTPUT)
    text = fmt.csv_text(fmt.PROCESS_HEADER, with_shares(cm.process_rows(rows), None))
    parsed = list(csv.reader(io.StringIO(text)))
    parsed_header = [*fmt.PS_HEADER, "ANON_MB", "SWAP_MB", "STARTED", "CGROUP"]
    assert parsed[0] == [*parsed_header, "PSS_MB", "SWAP_PSS_MB"]
    assert fmt.PS_HEADER == ("PID", "PPID", "USER", "RSS_MB", "VSZ_MB", "CMD")
    assert {tuple(row[6:]) for row in parsed[1:]} == {("",) * 6}  # nothing of /proc
    user = "averyverylongusername123"
    assert parsed[4][:6] == ["812", "1", user, "200.000", "1024.000", 'python3 -c print("a,b")']
    assert parsed[5][5] == "postgres: writer, 'x' $HOME"
    assert parsed[6][5] == "/bin/echo héllo 日本語 🙂"
    assert parsed[5][3] == "120.562"  # 123456 / 1024 = 120.5625, rounded half to even
    assert text.endswith("\n") and "\r" not in text


# --- schedule ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (100.0, 1),  # right after a snapshot at the start: the slot at 110
        (104.9, 1),
        (110.0, 2),  # exactly on a slot: the next one
        (135.0, 4),  # overran two slots: skip them (140), no burst
    ],
)
def test_next_slot_index_is_on_the_fixed_grid(now: float, expected: int) -> None:
    assert cm.next_slot_index(100.0, 10.0, now) == expected


@pytest.mark.parametrize(
    ("wall_s", "previous", "expected"),
    [
        (100.9, None, 100),
        (101.2, 100, 101),
        (100.95, 100, 101),  # lands in the previous snapshot's second (it woke up late)
        (50.0, 100, 50),  # the clock was set back: its own second (never overwritten)
    ],
)
def test_snapshot_seconds_never_repeat(wall_s: float, previous: int | None, expected: int) -> None:
    assert cm.snapshot_second(wall_s, previous) == expected


class FakeClock:
    """Monotonic time, sleep and snapshots that take the given durations, all simulated."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, durations: Iterator[float]) -> None:
        self.now = 1000.0
        self.started: list[float] = []  # when each snapshot began, from the start
        self.durations = durations
        monkeypatch.setattr("collect_memory.time.monotonic", lambda: self.now)
        monkeypatch.setattr("collect_memory.time.sleep", self.sleep)
        monkeypatch.setattr(cm, "take_snapshot", self.snapshot)

    def sleep(self, seconds: float) -> None:
        self.now += seconds

    def snapshot(self, *args: object, **kwargs: object) -> cm.Snapshot:
        self.started.append(self.now - 1000.0)
        self.now += next(self.durations)
        return cm.Snapshot("20260101_000000", 1)


def test_slow_snapshot_skips_slots_without_shifting_later_ones(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    clock = FakeClock(monkeypatch, iter([1.0, 25.0, 0.5, 0.5]))
    failures = cm.run_collector(tmp_path, cm.Schedule(10.0, 4), StopSignals())
    assert failures == 0
    # The second snapshot (at 10) ran until 35: the slots at 20 and 30 are skipped.
    assert clock.started == [0.0, 10.0, 40.0, 50.0]


def test_no_slot_is_reported_skipped_when_none_was(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock(monkeypatch, itertools.repeat(0.01))
    with caplog.at_level("WARNING", logger="collect_memory"):
        cm.run_collector(tmp_path, cm.Schedule(1.1, 2000), StopSignals())
    assert [r.getMessage() for r in caplog.records if "skipping" in r.getMessage()] == []
    assert clock.started[-1] == pytest.approx(1999 * 1.1)


# --- writing snapshots -----------------------------------------------------------


# The /proc of PS_OUTPUT's processes at the time ps ran. Boot at 2026-03-01 00:00:00 UTC.
BOOT_S = 1772323200
FAKE_PROCESSES = {
    1: FakeProcess(status_text("systemd", {"RssAnon": 4096, "VmSwap": 512}), stat_line(1, "systemd", 150)),
    2: FakeProcess(status_text("kthreadd", {}), stat_line(2, "kthreadd", 2)),  # a kernel thread
    # 42 is gone by the time its files are read.
    812: FakeProcess(status_text("python3", {"RssAnon": 102400, "VmSwap": 1024}), stat_line(812, "py (a) b) c", 123456)),
    1001: FakeProcess(status_text("postgres", {"VmSwap": 0}), stat_line(1001, "postgres", 8640000)),  # before 4.5
    1002: FakeProcess(status_text("echo", {"RssAnon": 100, "VmSwap": 0}), None),  # stat unreadable
    1003: FakeProcess(None, stat_line(1003, "x", 99)),
}  # fmt: skip


@pytest.fixture
def fake_sources(tmp_path: Path) -> cm.Sources:
    meminfo = tmp_path / "meminfo"
    meminfo.write_text(OLD_MEMINFO)
    ps_text = tmp_path / "ps.txt"
    ps_text.write_text(PS_OUTPUT, encoding="utf-8")
    proc = write_fake_proc(tmp_path / "proc", FAKE_PROCESSES, BOOT_S)
    kmsg = tmp_path / "kmsg"
    kmsg.write_text("6,1,5,-;an old line, before the collector started\n")
    return cm.Sources(meminfo, ("cat", str(ps_text)), proc, kmsg)


def test_take_snapshot_writes_a_private_pair(tmp_path: Path, fake_sources: cm.Sources) -> None:
    meminfo, ps, proc, kmsg = fake_sources
    dumps = tmp_path / "dumps"
    cm.prepare_dumps_dir(dumps)
    snap = cm.take_snapshot(
        dumps, "20260301_120000", StopSignals(), cm.Sources(meminfo, ps, proc, kmsg)
    )
    assert snap == cm.Snapshot("20260301_120000", 7)
    sys_file = dumps / "sys_mem_20260301_120000.csv"
    proc_file = dumps / "process_mem_20260301_120000.csv"
    cgroup_file = dumps / "cgroup_mem_20260301_120000.csv"
    names = [cgroup_file.name, proc_file.name, sys_file.name]
    assert sorted(p.name for p in dumps.iterdir()) == names
    # No cgroup hierarchy in this /proc: the cgroup file is its header, written all the same.
    assert read_csv_rows(cgroup_file) == [list(fmt.CGROUP_HEADER)]
    for path in (sys_file, proc_file, cgroup_file):
        assert stat.S_IMODE(path.stat().st_mode) == 0o640
    sys_rows = read_csv_rows(sys_file)
    assert sys_rows[0] == list(fmt.SYS_HEADER)
    assert len(sys_rows) == 2
    start = len(fmt.MEMINFO_HEADER)
    extra = dict(zip(sys_rows[0][start:], sys_rows[1][start:], strict=True))
    assert extra == {
        "boot_id": "0b7e6f3a-5c41-4d2e-9f88-1a2b3c4d5e6f",
        "oom_kill": "2",
        "pswpin": "12",
        "pswpout": "34",
        "pgmajfault": "56",
        "psi_some_total_us": "7000",
        "psi_full_total_us": "3000",
        "oom_victims": "",  # no kernel log given: nothing read of it
    }
    proc_rows = read_csv_rows(proc_file)
    assert proc_rows[0] == list(fmt.PROCESS_HEADER)
    assert {tuple(row[10:]) for row in proc_rows[1:]} == {("", "")}  # no Pss reader: none read
    assert [row[6:10] for row in proc_rows[1:]] == [
        ["4.000", "0.500", "2026-03-01 00:00:01.50", ""],
        ["", "", "2026-03-01 00:00:00.02", ""],  # a kernel thread: no RssAnon, no VmSwap
        ["", "", "", ""],  # gone between ps and its files: not an error
        ["100.000", "1.000", "2026-03-01 00:20:34.56", ""],  # field 22 after the last ")"
        ["", "0.000", "2026-03-02 00:00:00.00", ""],  # a kernel before 4.5: no RssAnon
        ["0.098", "0.000", "", ""],
        ["", "", "2026-03-01 00:00:00.99", ""],
    ]
    assert proc_rows[1][:6] == ["1", "0", "root", "8.934", "36.559", "/sbin/init splash"]


def test_dumps_dir_created_without_world_access_existing_left_alone(tmp_path: Path) -> None:
    old_umask = os.umask(0)  # even the laxest umask must not open it up
    try:
        created = tmp_path / "new" / "time"
        cm.prepare_dumps_dir(created)
        assert stat.S_IMODE(created.stat().st_mode) == 0o750
        existing = tmp_path / "existing"
        existing.mkdir(mode=0o755)
        cm.prepare_dumps_dir(existing)
        assert stat.S_IMODE(existing.stat().st_mode) == 0o755
        assert list(existing.iterdir()) == []  # the write probe is gone
    finally:
        os.umask(old_umask)


def test_existing_snapshot_is_never_overwritten(tmp_path: Path, fake_sources: cm.Sources) -> None:
    meminfo, ps, proc, kmsg = fake_sources
    (tmp_path / "sys_mem_20260301_120000.csv").write_text("precious\n")
    with pytest.raises(cm.SnapshotError, match="already exists"):
        cm.take_snapshot(
            tmp_path, "20260301_120000", StopSignals(), cm.Sources(meminfo, ps, proc, kmsg)
        )
    assert (tmp_path / "sys_mem_20260301_120000.csv").read_text() == "precious\n"
    assert not (tmp_path / "process_mem_20260301_120000.csv").exists()


@pytest.mark.parametrize(
    ("command", "message"),
    [
        (("no-such-ps-program",), "cannot run no-such-ps-program: not found"),
        (("sh", "-c", "echo boom >&2; exit 3"), "sh exited with 3: boom"),
        (("true",), "true listed no processes"),
    ],
)
def test_failed_ps_publishes_nothing(
    tmp_path: Path, command: tuple[str, ...], message: str
) -> None:
    meminfo = tmp_path / "meminfo"
    meminfo.write_text(OLD_MEMINFO)
    dumps = tmp_path / "dumps"
    dumps.mkdir()
    with pytest.raises(cm.SnapshotError) as info:
        cm.take_snapshot(dumps, "20260301_120000", StopSignals(), cm.Sources(meminfo, command))
    assert str(info.value) == message
    assert list(dumps.iterdir()) == []


def test_unreadable_meminfo_is_a_snapshot_error(tmp_path: Path, fake_sources: cm.Sources) -> None:
    _, ps, proc, kmsg = fake_sources
    missing = tmp_path / "nope"
    with pytest.raises(cm.SnapshotError, match=f"cannot read {missing}"):
        cm.take_snapshot(
            tmp_path, "20260301_120000", StopSignals(), cm.Sources(missing, ps, proc, kmsg)
        )


def test_disk_full_leaves_no_file_and_no_temporary(
    tmp_path: Path,
    fake_sources: cm.Sources,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    meminfo, ps, proc, kmsg = fake_sources
    dumps = tmp_path / "dumps"
    dumps.mkdir()
    real_write = atomic_files.write_private_file

    def full_on_second(path: Path, text: str) -> None:
        if path.name.startswith(".process_mem_"):
            real_write(path, text[:10])  # a partial temporary, then the disk fills
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        real_write(path, text)

    monkeypatch.setattr(cm, "write_private_file", full_on_second)
    with pytest.raises(cm.SnapshotError, match="No space left on device"):
        cm.take_snapshot(
            dumps, "20260301_120000", StopSignals(), cm.Sources(meminfo, ps, proc, kmsg)
        )
    assert list(dumps.iterdir()) == []


def test_failed_snapshots_are_logged_and_collection_goes_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    meminfo = tmp_path / "meminfo"
    meminfo.write_text(OLD_MEMINFO)
    with caplog.at_level("INFO", logger="collect_memory"):
        failures = cm.run_collector(
            tmp_path,
            cm.Schedule(1.0, 2),
            StopSignals(),
            cm.Sources(meminfo, ("no-such-ps-program",)),
        )
    assert failures == 2
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 2
    assert all("cannot run no-such-ps-program: not found" in e for e in errors)
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warnings == ["this kernel lacks MemAvailable, AnonHugePages; written empty"]


def test_a_read_only_dir_fails_the_snapshot_even_when_clean_up_fails(
    tmp_path: Path,
    fake_sources: cm.Sources,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # What a kernel does after an I/O error: the mount turns read-only under us, so the
    # write fails and so does deleting the temporary afterwards.
    meminfo, ps, proc, kmsg = fake_sources

    def read_only(*args: object, **kwargs: object) -> None:
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(args[0]))

    monkeypatch.setattr(cm, "write_private_file", read_only)
    monkeypatch.setattr(Path, "unlink", read_only)
    with pytest.raises(cm.SnapshotError, match="Read-only file system"):
        cm.take_snapshot(
            tmp_path, "20260301_120000", StopSignals(), cm.Sources(meminfo, ps, proc, kmsg)
        )


def test_a_dumps_dir_replaced_by_a_file_fails_the_snapshot(
    tmp_path: Path, fake_sources: cm.Sources
) -> None:
    meminfo, ps, proc, kmsg = fake_sources
    dumps = tmp_path / "dumps"
    dumps.write_text("")
    with pytest.raises(cm.SnapshotError, match="Not a directory"):
        cm.take_snapshot(
            dumps, "20260301_120000", StopSignals(), cm.Sources(meminfo, ps, proc, kmsg)
        )


def test_a_hanging_ps_is_killed_with_everything_it_started(tmp_path: Path) -> None:
    child_pid_file = tmp_path / "child.pid"
    fake_ps = tmp_path / "ps"
    fake_ps.write_text(f"#!/bin/sh\nsleep 300 &\necho $! > {child_pid_file}\nsleep 300\n")
    fake_ps.chmod(0o755)
    began = time.monotonic()
    with pytest.raises(cm.SnapshotError, match=r"took over 0\.5 s; killed"):
        cm.run_ps((str(fake_ps),), timeout_s=0.5)
    assert time.monotonic() - began < 10
    child = int(child_pid_file.read_text())
    deadline = time.monotonic() + 5
    while pid_alive(child):
        assert time.monotonic() < deadline, f"ps's child {child} outlived the timeout"
        time.sleep(0.05)


def pid_alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state != "Z"  # a zombie is dead, only not reaped yet


def test_a_bug_in_a_snapshot_is_one_line_and_collection_goes_on(
    tmp_path: Path,
    fake_sources: cm.Sources,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    meminfo, ps, proc, kmsg = fake_sources

    def buggy(*args: object) -> list[str]:
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(cm, "sys_row", buggy)
    with caplog.at_level("INFO", logger="collect_memory"):
        failures = cm.run_collector(
            tmp_path, cm.Schedule(1.0, 2), StopSignals(), cm.Sources(meminfo, ps, proc, kmsg)
        )
    assert failures == 2
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    traces = sorted(tmp_path.glob("collect_memory-traceback-*.txt"))
    assert len(traces) == 1  # one file per run, not one per failed snapshot
    assert errors == [
        f"snapshot {stamp} UTC failed: internal error: ZeroDivisionError: division by zero;"
        f" please report it with the command line; traceback in {traces[0]}"
        for stamp in [e.split()[1] for e in errors]
    ]
    assert "ZeroDivisionError" in traces[0].read_text()


def test_signal_during_a_failing_write_still_stops() -> None:
    guard = StopSignals()
    with pytest.raises(Stopped), guard.deferred():
        guard._handle(signal.SIGTERM, None)
        raise cm.SnapshotError("cannot write: No space left on device")


def test_signal_during_writing_is_deferred_until_files_are_whole() -> None:
    guard = StopSignals()
    with pytest.raises(Stopped), guard.deferred():
        guard._handle(signal.SIGTERM, None)  # arrives mid-write: noted, not raised
        finished = True
    assert finished
    with pytest.raises(Stopped):
        StopSignals()._handle(signal.SIGTERM, None)  # elsewhere: at once


# --- the script as a user runs it --------------------------------------------------


Collectors = Callable[..., "subprocess.Popen[str]"]


@pytest.fixture
def collectors() -> Iterator[Collectors]:
    """Start collectors as a user does; every one still running is killed at teardown,
    so a failing test never leaves a daemon writing into a deleted tmp dir."""
    started: list[subprocess.Popen[str]] = []

    def start(dumps: Path, *extra: str, ignored: int | None = None) -> subprocess.Popen[str]:
        command = [sys.executable, str(SCRIPT), "--dumps-dir", str(dumps), *extra]
        # The child gets SIGINT and SIGHUP as a terminal gives them, even when pytest runs
        # as a background job (which ignores SIGINT); or ignored, as a shell does for a
        # background job (SIGINT) and nohup does (SIGHUP): across exec either way.
        launcher = (
            "import os, signal, sys\n"
            "for signum in (signal.SIGINT, signal.SIGHUP):\n"
            f"    signal.signal(signum, signal.SIG_IGN if signum == {ignored} else signal.SIG_DFL)\n"
            "os.execv(sys.argv[1], sys.argv[1:])"
        )
        process = subprocess.Popen(
            [sys.executable, "-c", launcher, *command], stderr=subprocess.PIPE, text=True
        )
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=10)


def wait_for_files(dumps: Path, pattern: str, count: int, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while len(list(dumps.glob(pattern))) < count:
        assert time.monotonic() < deadline, f"no {pattern} in {dumps}"
        time.sleep(0.05)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_signal_mid_sleep_ends_at_once_with_exit_0(
    tmp_path: Path, signum: int, collectors: Collectors
) -> None:
    proc = collectors(tmp_path, "--interval", "600")
    wait_for_files(tmp_path, "process_mem_*.csv", 1)
    time.sleep(0.2)
    proc.send_signal(signum)
    _, stderr = proc.communicate(timeout=5)
    assert proc.returncode == 0, stderr
    assert f"stopped by {signal.Signals(signum).name}" in stderr
    assert "Traceback" not in stderr
    assert sorted(p.name[:4] for p in tmp_path.iterdir()) == ["cgro", "proc", "sys_"]


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGHUP])
def test_signal_ignored_at_start_stays_ignored(
    tmp_path: Path, signum: int, collectors: Collectors
) -> None:
    proc = collectors(tmp_path, "--interval", "600", ignored=signum)
    wait_for_files(tmp_path, "process_mem_*.csv", 1)
    proc.send_signal(signum)
    time.sleep(0.5)
    assert proc.poll() is None, "a signal ignored at start stopped the collector"
    proc.terminate()
    proc.communicate(timeout=5)
    assert proc.returncode == 0


def test_real_short_run(tmp_path: Path) -> None:
    dumps = tmp_path / "time"
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--interval", "1", "--count", "2", "--dumps-dir", str(dumps)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert stat.S_IMODE(dumps.stat().st_mode) == 0o750
    sys_files = sorted(dumps.glob("sys_mem_*.csv"))
    proc_files = sorted(dumps.glob("process_mem_*.csv"))
    cgroup_files = sorted(dumps.glob("cgroup_mem_*.csv"))
    assert len(sys_files) == len(proc_files) == len(cgroup_files) == 2
    assert [p.name[8:] for p in sys_files] == [p.name[12:] for p in proc_files]
    assert [p.name[8:] for p in sys_files] == [p.name[11:] for p in cgroup_files]
    assert read_csv_rows(cgroup_files[0])[0] == list(fmt.CGROUP_HEADER)
    assert not list(dumps.glob(".*"))
    sys_rows = read_csv_rows(sys_files[0])
    assert sys_rows[0] == list(fmt.SYS_HEADER)
    assert float(sys_rows[1][0]) > 0  # MemTotal_MB
    proc_rows = read_csv_rows(proc_files[0])
    assert proc_rows[0] == list(fmt.PROCESS_HEADER)
    pids = {int(row[0]) for row in proc_rows[1:]}
    assert 1 in pids
    assert any(row[5].startswith("[") for row in proc_rows[1:]) or len(pids) < 5
    log_lines = [line for line in result.stderr.splitlines() if "processes in" in line]
    assert len(log_lines) == 2
    assert " UTC " in log_lines[0]


def test_uncreatable_dumps_dir_is_one_line_and_exit_1(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--count", "1", "--dumps-dir", str(blocker / "time")],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr == (
        f"collect_memory: cannot use dumps dir {blocker / 'time'}: Not a directory\n"
    )


@pytest.mark.parametrize("flags", [["--interval", "0.5"], ["--count", "0"], ["--interval", "x"]])
def test_bad_flags_are_usage_errors(flags: list[str]) -> None:
    result = subprocess.run(
        [sys.executable, str(SCRIPT), *flags],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "error: argument" in result.stderr.strip().splitlines()[-1]


def peak_rss_kb(command: list[str]) -> int:
    """Peak RSS of one command, measured by a fresh wrapper so nothing else counts."""
    wrapper = (
        "import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True,"
        " stderr=subprocess.DEVNULL); print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    out = subprocess.run(
        [sys.executable, "-c", wrapper, *command],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return int(out.stdout)


def test_collector_stays_within_10_mib_of_bare_python(tmp_path: Path) -> None:
    bare_kb = peak_rss_kb([sys.executable, "-c", "pass"])
    collector_kb = peak_rss_kb(
        [sys.executable, str(SCRIPT), "--count", "1", "--dumps-dir", str(tmp_path)]
    )
    assert collector_kb - bare_kb < 10 * 1024


def test_collector_imports_only_the_standard_library() -> None:
    # The project's own modules it imports (utils.collect.snapshot_format) must be standard
    # library only too: nothing outside the standard library and scripts/ is loaded.
    probe = (
        "import sys; sys.path.insert(0, sys.argv[1]); before = set(sys.modules);"
        " import collect_memory; mods = set(sys.modules) - before;"
        " std = sys.stdlib_module_names | {'collect_memory', 'utils'};"
        " print(sorted(m for m in mods if m.split('.')[0] not in std))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe, str(SCRIPT.parent)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert out.stdout.strip() == "[]"


def test_a_bug_outside_snapshots_is_one_line_and_exit_70(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def buggy(*args: object) -> int:
        raise KeyError("slot")

    monkeypatch.setattr(cm, "run_collector", buggy)
    assert cm.main(["--count", "1", "--dumps-dir", str(tmp_path)]) == 70
    (trace,) = tmp_path.glob("collect_memory-traceback-*.txt")
    assert capsys.readouterr().err == (
        "collect_memory: internal error: KeyError: 'slot'; please report it with the"
        f" command line; traceback in {trace}\n"
    )


def test_a_bare_carriage_return_in_a_command_line_is_quoted() -> None:
    text = fmt.csv_text(fmt.PROCESS_HEADER, [["7", "1", "root", "1.000", "2.000", "a\rb"]])
    assert text.split("\n")[1] == '7,1,root,1.000,2.000,"a\rb"'
    assert list(csv.reader(io.StringIO(text, newline="")))[1][5] == "a\rb"


def logged_errors(process: subprocess.Popen[str]) -> list[str]:
    assert process.stderr is not None
    return [line for line in process.stderr.read().splitlines() if " ERROR " in line]


@pytest.mark.slow  # the real collector over seconds
def test_collection_survives_its_dumps_dir_turning_into_a_file(
    tmp_path: Path, collectors: Collectors
) -> None:
    dumps = tmp_path / "dumps"
    process = collectors(dumps, "--interval", "1")
    wait_for_files(dumps, "process_mem_*.csv", 1)
    dumps.rename(tmp_path / "moved")
    dumps.write_text("")  # the dir is now a file
    time.sleep(2.5)
    dumps.unlink()
    (tmp_path / "moved").rename(dumps)
    before = len(list(dumps.glob("process_mem_*.csv")))
    wait_for_files(dumps, "process_mem_*.csv", before + 1)
    assert process.poll() is None, "the collector stopped"
    process.terminate()
    process.wait(timeout=10)
    errors = logged_errors(process)
    assert errors and all("Not a directory" in line for line in errors), errors
    assert not list(dumps.glob(".*"))


@pytest.fixture
def small_mount(tmp_path: Path) -> Iterator[Path]:
    """A tmpfs of our own, to remount read-only under a running collector."""
    mount_point = tmp_path / "mnt"
    mount_point.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mount_point)],
        capture_output=True,
        check=False,
        timeout=30,
    )
    if mounted.returncode != 0:
        pytest.skip("needs root and mount(8) to remount a file system read-only")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False, timeout=30)


@pytest.mark.slow  # the real collector over seconds
def test_collection_survives_its_disk_turning_read_only(
    small_mount: Path, collectors: Collectors
) -> None:
    def remount(mode: str) -> None:
        subprocess.run(["mount", "-o", f"remount,{mode}", str(small_mount)], check=True, timeout=30)

    process = collectors(small_mount, "--interval", "1")
    wait_for_files(small_mount, "process_mem_*.csv", 1)
    remount("ro")
    time.sleep(2.5)
    remount("rw")
    before = len(list(small_mount.glob("process_mem_*.csv")))
    wait_for_files(small_mount, "process_mem_*.csv", before + 1)
    assert process.poll() is None, "the collector stopped"
    process.terminate()
    process.wait(timeout=10)
    errors = logged_errors(process)
    assert errors and all("Read-only file system" in line for line in errors), errors
    assert not list(small_mount.glob(".*"))
    assert len(list(small_mount.glob("sys_mem_*.csv"))) == len(
        list(small_mount.glob("process_mem_*.csv"))
    )
    assert len(list(small_mount.glob("cgroup_mem_*.csv"))) == len(
        list(small_mount.glob("process_mem_*.csv"))
    )
