"""What the collector reads of /proc besides ps: parsers against fixture text with exact
answers, fake /proc trees (the style of psutil's tests), Hypothesis for the parsers, and
the real kernel for what a fixture cannot prove."""

from __future__ import annotations

import calendar
import logging
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import collect_memory as cm
from conftest import FakeProcess, stat_line, write_fake_proc
from utils.collect import procfs
from utils.collect.procfs import BootClock, ProcessMemory
from utils.collect.snapshot_format import OomVictim
from utils.core.signals import StopSignals

BOOT_S = 1772323200  # 2026-03-01 00:00:00 UTC

# /proc/PID/status of Linux 6.1, abridged.
STATUS_6_1 = (
    "Name:\tpostgres\nUmask:\t0077\nState:\tS (sleeping)\nTgid:\t1001\nPid:\t1001\n"
    "VmPeak:\t  221696 kB\nVmSize:\t  221616 kB\nVmLck:\t       0 kB\nVmHWM:\t   29116 kB\n"
    "VmRSS:\t   29116 kB\nRssAnon:\t    3520 kB\nRssFile:\t   12160 kB\nRssShmem:\t   13436 kB\n"
    "VmData:\t    2488 kB\nVmSwap:\t     512 kB\nHugetlbPages:\t       0 kB\nThreads:\t1\n"
)
# The same process on Linux 4.4: RssAnon came in 4.5.
STATUS_4_4 = "Name:\tpostgres\nVmRSS:\t   29116 kB\nVmSwap:\t     512 kB\nThreads:\t1\n"
# A kernel thread: no memory lines at all.
STATUS_KTHREAD = "Name:\tkworker/0:1\nState:\tI (idle)\nTgid:\t42\nThreads:\t1\n"


def test_status_fields_are_read_in_kb() -> None:
    data = STATUS_6_1.encode()
    assert procfs.status_field_kb(data, b"RssAnon:") == 3520
    assert procfs.status_field_kb(data, b"VmSwap:") == 512
    assert procfs.status_field_kb(STATUS_4_4.encode(), b"RssAnon:") is None
    assert procfs.status_field_kb(STATUS_KTHREAD.encode(), b"VmSwap:") is None


def test_a_field_name_inside_another_line_is_not_the_field() -> None:
    # Only at a line's start: "Name:\tVmSwap: 9" is a command named "VmSwap: 9".
    data = b"Name:\tVmSwap: 9 kB\nVmRSS:\t 100 kB\n"
    assert procfs.status_field_kb(data, b"VmSwap:") is None
    assert procfs.status_field_kb(b"VmSwap:\t 7 kB", b"VmSwap:") == 7  # no final newline


@pytest.mark.parametrize(
    ("comm", "ticks"),
    [("systemd", 150), ("a b", 7), ("(sd-pam)", 1234), ("x) S 1 2 3 (y", 99), (")", 5), ("", 1)],
)
def test_start_ticks_count_from_after_the_last_parenthesis(comm: str, ticks: int) -> None:
    assert procfs.parse_start_ticks(stat_line(321, comm, ticks).encode()) == ticks


@pytest.mark.parametrize("data", [b"", b"1 (x", b"1 (x) S 1 2", b"1 (x) " + b"a " * 30])
def test_a_stat_line_cut_short_has_no_start(data: bytes) -> None:
    assert procfs.parse_start_ticks(data) is None


def test_started_is_boot_time_plus_ticks_in_utc_hundredths() -> None:
    clock = BootClock(BOOT_S, 100)
    assert procfs.started_text(clock, 0) == "2026-03-01 00:00:00.00"
    assert procfs.started_text(clock, 123456) == "2026-03-01 00:20:34.56"
    assert procfs.started_text(BootClock(BOOT_S, 250), 251) == "2026-03-01 00:00:01.00"


def test_btime_is_found_among_the_cpu_and_interrupt_lines() -> None:
    text = "cpu  1 2 3\ncpu0 1 2 3\nintr 5 0 0\nctxt 9\nbtime 1772323200\nprocesses 77\n"
    assert procfs.parse_btime(text) == BOOT_S
    assert procfs.parse_btime("cpu 1\nbtimex 5\n") is None


def test_a_fake_proc_tree_is_read_process_by_process(tmp_path: Path) -> None:
    proc = write_fake_proc(
        tmp_path / "proc",
        {
            1001: FakeProcess(STATUS_6_1, stat_line(1001, "postgres: writer (x)", 360000)),
            1002: FakeProcess(STATUS_4_4, None),
            42: FakeProcess(STATUS_KTHREAD, stat_line(42, "kworker/0:1", 3)),
        },
    )
    assert procfs.process_memory(1001, str(proc)) == ProcessMemory(3520, 512, 360000)
    assert procfs.process_memory(1002, str(proc)) == ProcessMemory(None, 512, None)
    assert procfs.process_memory(42, str(proc)) == ProcessMemory(None, None, 3)
    assert procfs.process_memory(77, str(proc)) == procfs.NOTHING  # gone: no error
    assert procfs.boot_clock(proc) == BootClock(BOOT_S, os.sysconf("SC_CLK_TCK"))
    assert procfs.boot_id(proc) == "0b7e6f3a-5c41-4d2e-9f88-1a2b3c4d5e6f"


# A 4.12 kernel's /proc/vmstat (abridged): no oom_kill before 4.13.
VMSTAT_4_12 = "nr_free_pages 12345\npgpgin 100\npswpin 7\npswpout 9\npgmajfault 1234\n"
PSI_5_15 = (
    "some avg10=0.12 avg60=0.05 avg300=0.01 total=1234567\n"
    "full avg10=0.00 avg60=0.00 avg300=0.00 total=890123\n"
)
# Linux 4.20's first PSI had no full line for cpu, but memory has had both from the start.
KMSG = (
    "6,1204,1000,-;python3 invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0\n"
    " SUBSYSTEM=memory\n"
    "3,1210,1001,-;Memory cgroup out of memory: Killed process 3958 (python3)"
    " total-vm:53464kB, anon-rss:40704kB, file-rss:5120kB, shmem-rss:0kB, UID:0"
    " pgtables:140kB oom_score_adj:0\n"
    "6,1211,1002,-;oom_reaper: reaped process 3958 (python3), now anon-rss:0kB\n"
    "3,1300,2000,-;Out of memory: Killed process 77 (a (b) c) total-vm:9kB, anon-rss:8kB,"
    " file-rss:0kB\n"
)


def test_vmstat_psi_and_kmsg_are_read_exactly() -> None:
    assert procfs.parse_vmstat(VMSTAT_4_12) == {
        "nr_free_pages": 12345, "pgpgin": 100, "pswpin": 7, "pswpout": 9, "pgmajfault": 1234,
    }  # fmt: skip
    assert procfs.parse_psi_totals(PSI_5_15) == {
        "psi_some_total_us": 1234567,
        "psi_full_total_us": 890123,
    }


def test_counters_a_kernel_lacks_and_an_unreadable_psi_file_are_left_out(tmp_path: Path) -> None:
    old = write_fake_proc(tmp_path / "old", {}, vmstat=VMSTAT_4_12, pressure=None)
    assert procfs.vmstat_counters(old) == {"pswpin": 7, "pswpout": 9, "pgmajfault": 1234}
    assert procfs.psi_totals(old) == {}
    # Booted with psi=0: the file is there, and reading it fails (EOPNOTSUPP); a directory
    # fails to read as well.
    off = write_fake_proc(tmp_path / "off", {}, pressure=None)
    (off / "pressure" / "memory").mkdir(parents=True)
    assert procfs.psi_totals(off) == {}


def test_the_kernel_log_gives_only_what_came_after_it_was_opened(tmp_path: Path) -> None:
    kmsg = tmp_path / "kmsg"
    kmsg.write_text(KMSG)  # logged before the collector started: not its business
    log = procfs.KernelLog(kmsg)
    assert log.readable and log.victims() == []
    with kmsg.open("a") as handle:
        handle.write(KMSG.splitlines()[2] + "\n")
    assert log.victims() == [OomVictim(3958, "python3", 0, 40704, 5120, 0, "memcg")]
    assert log.victims() == []  # read once
    log.close()
    assert log.victims() == []
    missing = procfs.KernelLog(tmp_path / "no-such-kmsg")
    assert not missing.readable and missing.error == "No such file or directory"
    assert missing.victims() == []


def test_a_snapshot_writes_the_victims_the_log_named_since_the_last(tmp_path: Path) -> None:
    proc = write_fake_proc(tmp_path / "proc", {})
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal: 1000 kB\nMemFree: 10 kB\n")
    ps_text = tmp_path / "ps.txt"
    ps_text.write_text("      1       0 root   9148   37436 /sbin/init\n")
    kmsg = tmp_path / "kmsg"
    kmsg.write_text("")
    sources = cm.Sources(meminfo, ("cat", str(ps_text)), proc, kmsg)
    state = cm.RunState(None, procfs.KernelLog(kmsg))
    with kmsg.open("a") as handle:
        handle.write(KMSG)
    dumps = tmp_path / "dumps"
    dumps.mkdir()
    cm.take_snapshot(dumps, "20260301_120000", StopSignals(), sources, state)
    cm.take_snapshot(dumps, "20260301_121000", StopSignals(), sources, state)
    first, second = (
        (dumps / f"sys_mem_20260301_12{minute}000.csv").read_text().splitlines()[1]
        for minute in (0, 1)
    )
    assert first.endswith(",memcg:3958:python3:0:40704:5120:0::;global:77:a (b) c::8:0:::")
    assert second.endswith(",")  # nothing new


def test_what_the_kernel_lacks_is_one_warning_at_start(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    proc = write_fake_proc(
        tmp_path / "proc",
        {},
        btime=None,
        boot_id=None,
        own_status=STATUS_4_4,
        vmstat=VMSTAT_4_12,
        pressure=None,
    )
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal: 1000 kB\nMemFree: 10 kB\n")
    sources = cm.Sources(meminfo, ("true",), proc, tmp_path / "no-kmsg")
    run = cm.Collecting(sources, cm.RunState(None, procfs.KernelLog(sources.kmsg)))
    with caplog.at_level(logging.WARNING, logger="collect_memory"):
        cm._say_what_is_collected(tmp_path, cm.Schedule(1.0, 1), run)
    warnings = [record.getMessage() for record in caplog.records if record.levelname == "WARNING"]
    assert len(warnings) == 2
    assert "RssAnon" in warnings[0] and "VmSwap" not in warnings[0]
    assert "btime" in warnings[0] and "boot_id" in warnings[0]
    assert "oom_kill" in warnings[0] and "psi_some_total_us" in warnings[0]
    assert "pswpin" not in warnings[0]
    assert warnings[0].endswith("; written empty")
    assert warnings[1].startswith(f"cannot read the kernel log {tmp_path / 'no-kmsg'}")
    assert "infer OOM victims" in warnings[1]


def test_the_sys_row_ends_with_the_boot_id_the_counters_and_the_victims() -> None:
    row = cm.sys_row({"MemTotal": 2048}, "b-id", {"oom_kill": 3, "pswpin": 0}, "1:x:2")
    assert row[0] == "2.000"
    assert row[-8:] == ["b-id", "3", "0", "", "", "", "", "1:x:2"]


# --- Hypothesis: no text makes a parser raise ---------------------------------------------


@given(st.binary(max_size=300), st.sampled_from([b"RssAnon:", b"VmSwap:"]))
def test_status_parsing_never_raises(data: bytes, name: bytes) -> None:
    value = procfs.status_field_kb(data, name)
    assert value is None or value >= 0


@given(st.text(max_size=16), st.integers(0, 2**63))
def test_any_command_name_gives_back_its_start(comm: str, ticks: int) -> None:
    # The kernel's comm is at most 15 bytes of anything but NUL, newlines included.
    assert procfs.parse_start_ticks(stat_line(9, comm.replace("\0", ""), ticks).encode()) == ticks


@given(st.binary(max_size=400))
def test_any_stat_bytes_give_a_start_or_none(data: bytes) -> None:
    value = procfs.parse_start_ticks(data)
    assert value is None or value >= 0


@given(st.text(max_size=300))
def test_any_proc_stat_or_meminfo_text_parses_or_is_left_out(text: str) -> None:
    boot = procfs.parse_btime(text)
    assert boot is None or boot >= 0
    assert all(value >= 0 for value in procfs.parse_meminfo(text).values())
    assert all(value >= 0 for value in procfs.parse_vmstat(text).values())
    assert set(procfs.parse_psi_totals(text)) <= {"psi_some_total_us", "psi_full_total_us"}


@given(st.integers(0, 2**33), st.integers(0, 2**40), st.sampled_from([100, 250, 1000]))
def test_started_text_has_the_one_shape_and_never_runs_backwards(
    boot_s: int, ticks: int, rate: int
) -> None:
    clock = BootClock(boot_s, rate)
    text = procfs.started_text(clock, ticks)
    later = procfs.started_text(clock, ticks + rate)  # one second later
    assert len(text) == 22 and text[10] == " " and text[19] == "."
    assert later > text or len(later) > len(text)


# --- The real kernel ----------------------------------------------------------------------


def test_a_real_process_has_its_anon_swap_and_start(tmp_path: Path) -> None:
    """A child that touches 32 MiB: RssAnon holds them, and STARTED is when it began."""
    if not Path("/proc/self/status").exists():
        pytest.skip("no /proc on this system")
    if b"RssAnon:" not in Path("/proc/self/status").read_bytes():
        pytest.skip("this kernel has no RssAnon (before Linux 4.5)")
    ready = tmp_path / "ready"
    code = (
        "import sys, time, pathlib\n"
        "block = bytearray(32 << 20)\n"
        "for at in range(0, len(block), 4096): block[at] = 1\n"
        "pathlib.Path(sys.argv[1]).write_text('x')\n"
        "time.sleep(60)\n"
    )
    began = time.time()
    child = subprocess.Popen([sys.executable, "-c", code, str(ready)])
    try:
        deadline = time.monotonic() + 20
        while not ready.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert ready.exists()
        memory = procfs.process_memory(child.pid)
        clock = procfs.boot_clock()
        assert clock is not None and memory.start_ticks is not None
        assert memory.anon_kb is not None and memory.anon_kb >= 32 << 10
        assert memory.swap_kb is not None and memory.swap_kb >= 0
        started = procfs.started_text(clock, memory.start_ticks)
        moment = calendar.timegm(time.strptime(started[:19], "%Y-%m-%d %H:%M:%S"))
        # Boot time is whole seconds (btime): a start may read up to a second early.
        assert abs(moment - began) < 3
        assert procfs.process_memory(child.pid).start_ticks == memory.start_ticks  # stable
        assert str(uuid.UUID(procfs.boot_id())) == procfs.boot_id()
    finally:
        child.kill()
        child.wait(timeout=10)
    assert procfs.process_memory(child.pid) == procfs.NOTHING  # reaped: gone


def test_a_kill_only_a_constraint_line_named_waits_one_read_for_its_killed_line(
    tmp_path: Path,
) -> None:
    kmsg = tmp_path / "kmsg"
    kmsg.write_text("")
    log = procfs.KernelLog(kmsg)
    constraint = (
        "6,1,5000000,-;oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,"
        "mems_allowed=0,oom_memcg=/a,task_memcg=/a/b,task=x,pid=7,uid=0\n"
    )
    killed = "3,2,5000001,-;Memory cgroup out of memory: Killed process 7 (x) total-vm:1kB, "
    killed += "anon-rss:2kB, file-rss:3kB, shmem-rss:0kB, UID:0 pgtables:1kB oom_score_adj:0\n"
    with kmsg.open("a") as handle:
        handle.write(constraint)
    assert log.victims() == []  # held: its Killed line may come with the next read
    with kmsg.open("a") as handle:
        handle.write(killed)
    assert log.victims() == [OomVictim(7, "x", 0, 2, 3, 0, "memcg", "/a/b", "/a")]
    with kmsg.open("a") as handle:
        handle.write(constraint.replace("pid=7", "pid=8"))
    assert log.victims() == []
    assert log.victims() == [OomVictim(8, "x", 0, None, None, None, "memcg", "/a/b", "/a")]
