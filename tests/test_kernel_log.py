"""--kernel-log: saved logs in every form (dmesg raw and -T, journalctl -k short, short-iso
and short-precise, kern.log, messages) give the same kill at the same UTC time; the kills
join oom_kills.csv once; a file that is not text is one warning line."""

from __future__ import annotations

import contextlib
import csv
import io
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_oom import STEADY, Proc, write_host

import analyze_processes
import analyze_system
import make_report
from conftest import bundle_day, run_main, script_path
from utils.collect.snapshot_format import OomVictim
from utils.read.kernel_log import LogClock, kills_in_text, read_kernel_logs, read_log_text
from utils.reduce.counters import OomInterval
from utils.reduce.log_kills import join_log_kills, latest_boot_time

PARIS = ZoneInfo("Europe/Paris")  # UTC+1 on 1 March
CLOCK = LogClock(PARIS, datetime(2026, 3, 1, 1, 30), datetime(2026, 2, 28, 12))
KILLED = (
    "Memory cgroup out of memory: Killed process 30 (api) total-vm:9kB, anon-rss:491520kB,"
    " file-rss:4kB, shmem-rss:0kB, UID:33 pgtables:1kB oom_score_adj:0"
)
CONSTRAINT = (
    "oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,mems_allowed=0,"
    "oom_memcg=/system.slice/api.service,task_memcg=/system.slice/api.service,task=api,"
    "pid=30,uid=33"
)
VICTIM = OomVictim(
    30, "api", 33, 491520, 4, 0, "memcg", "/system.slice/api.service", "/system.slice/api.service"
)
# The same kill at 01:05:00 UTC (02:05 in Paris), as each tool prints it.
FORMS = {
    "dmesg": f"[47100.000000] {CONSTRAINT}\n[47100.000100] {KILLED}\n",
    "dmesg -T": f"[Sun Mar  1 02:05:00 2026] {CONSTRAINT}\n[Sun Mar  1 02:05:00 2026] {KILLED}\n",
    "journalctl -k": f"Mar 01 02:05:00 web1 kernel: {CONSTRAINT}\nMar 01 02:05:00 web1 kernel: {KILLED}\n",
    "journalctl -k -o short-precise": (
        f"Mar 01 02:05:00.000001 web1 kernel: {CONSTRAINT}\n"
        f"Mar 01 02:05:00.000002 web1 kernel: {KILLED}\n"
    ),
    "journalctl -k -o short-iso": (
        f"2026-03-01T02:05:00+0100 web1 kernel: {CONSTRAINT}\n"
        f"2026-03-01T02:05:00+01:00 web1 kernel: {KILLED}\n"
    ),
    "kern.log": (
        f"Mar  1 02:05:00 web1 kernel: [47100.000000] {CONSTRAINT}\n"
        f"Mar  1 02:05:00 web1 kernel: [47100.000100] {KILLED}\n"
    ),
}


def test_every_form_gives_the_same_kill_at_the_same_utc_time() -> None:
    for name, text in FORMS.items():
        found = kills_in_text("-- Journal begins --\nnoise line\n" + text, CLOCK).kills
        assert [(kill.utc.replace(microsecond=0), kill.victim) for kill in found] == [
            (datetime(2026, 3, 1, 1, 5), VICTIM)
        ], name


def test_a_syslog_line_takes_its_year_from_the_dumps() -> None:
    january = CLOCK._replace(last_utc=datetime(2027, 1, 2))
    found = kills_in_text(f"Dec 31 23:00:00 web1 kernel: {KILLED}\n", january).kills
    assert [kill.utc for kill in found] == [datetime(2026, 12, 31, 22)]


def test_raw_dmesg_without_a_boot_time_is_said_and_left_out() -> None:
    found = kills_in_text(FORMS["dmesg"], CLOCK._replace(boot_utc=None))
    assert found.kills == [] and found.unplaced == 1


def test_userspace_killers_in_the_journal() -> None:
    text = (
        "Mar 01 02:05:00 web1 systemd-oomd[612]: Killed /system.slice/api.service due to memory"
        " pressure for /system.slice being 71.00% > 60.00% for > 30s with reclaim activity\n"
        'Mar 01 02:06:00 web1 earlyoom[555]: sending SIGTERM to process 31 uid 0 "w": oom_score'
        ' 9, oom_score_adj 0, VmRSS 5 MiB, cmdline "w"\n'
        'Mar 01 02:07:00 web1 other[1]: sending SIGTERM to process 32 uid 0 "w": oom_score 9\n'
    )
    found = kills_in_text(text, CLOCK).kills
    assert [(kill.utc.minute, kill.victim.kind, kill.victim.pid) for kill in found] == [
        (5, "systemd-oomd", None),
        (6, "earlyoom", 31),
    ]


def test_a_file_that_is_not_text_is_one_warning(tmp_path: Path) -> None:
    binary = tmp_path / "core"
    binary.write_bytes(b"\x7fELF\0\0\0" * 100)
    warned: list[tuple[Path, str]] = []
    kills = read_kernel_logs(
        [str(binary), str(tmp_path / "missing")], CLOCK, lambda p, w: warned.append((p, w))
    )
    assert kills == []
    assert warned == [
        (binary, "not text (it holds NUL bytes); its kills are left out"),
        (tmp_path / "missing", "cannot read: No such file or directory; its kills are left out"),
    ]


@given(st.lists(st.text(max_size=120), max_size=10))
def test_any_lines_never_raise(lines: list[str]) -> None:
    found = kills_in_text("\n".join(lines), CLOCK)
    assert found.unplaced >= 0


def kill_rows(out: Path) -> list[dict[str, str]]:
    with (out / "oom_kills.csv").open(encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_saved_log_kills_join_once_and_name_the_cgroup(tmp_path: Path) -> None:
    victim = Proc(30, "/srv/api --workers 8", 500.0, 480.0, range(7))
    dumps = write_host(tmp_path / "d", [STEADY, victim], {7: 1})
    logs = [tmp_path / "dmesg.txt", tmp_path / "journal.txt"]
    logs[0].write_text(FORMS["dmesg"])
    logs[1].write_text(FORMS["journalctl -k -o short-iso"])  # the same kill again
    out = tmp_path / "out"
    argv = ["--dumps-dir", str(dumps), "--out-dir", str(out), "--no-plots"]
    flags = [item for log in logs for item in ("--kernel-log", str(log))]
    ran = run_main(analyze_processes.main, [*argv, *flags, "--kernel-log-tz", "Europe/Paris"])
    assert ran.status == 0, ran.stderr
    rows = kill_rows(out)
    assert [
        (r["PID"], r["source"], r["kind"], r["cgroup"], r["limit_cgroup"], r["UID"]) for r in rows
    ] == [
        ("30", "kernel log file", "memcg", *["/system.slice/api.service"] * 2, "33"),
    ]
    assert "memcg limit of /system.slice/api.service hit: /srv/api (PID 30) killed" in ran.stdout


@pytest.mark.slow
def test_saved_log_kills_count_where_the_dumps_have_no_counter(tmp_path: Path) -> None:
    victim = Proc(30, "/srv/api", 500.0, 480.0, range(7))
    dumps = write_host(tmp_path / "d", [STEADY, victim], {})
    for path in dumps.glob("sys_mem_*.csv"):  # an older collector: no oom_kill column
        lines = path.read_text().splitlines()
        header = lines[0].split(",")
        keep = [at for at, name in enumerate(header) if name not in ("oom_kill",)]
        path.write_text(
            "\n".join(",".join(line.split(",")[at] for at in keep) for line in lines) + "\n"
        )
    log = tmp_path / "kern.log"
    log.write_text(FORMS["kern.log"])
    argv = ["--dumps-dir", str(dumps), "--out-dir", str(tmp_path / "o"), "--no-plots"]
    logged = [*argv, "--kernel-log", str(log), "--kernel-log-tz", "Europe/Paris"]
    ran = run_main(analyze_system.main, [*logged, "--fail-on-oom"])
    assert ran.status == 3, ran.stdout + ran.stderr
    assert "OOM kills 1, in 1 interval (1 not host pressure" in ran.stdout
    assert run_main(analyze_system.main, argv).status == 0


def test_standard_input_is_read_and_a_bad_zone_is_bad_usage(tmp_path: Path) -> None:
    text = read_log_text("-", FORMS["dmesg -T"].encode)
    assert [kill.victim for kill in kills_in_text(text, CLOCK).kills] == [VICTIM]
    stderr = io.StringIO()
    argv = ["--dumps-dir", str(tmp_path), "--kernel-log-tz", "Mars/Olympus"]
    with contextlib.redirect_stderr(stderr), pytest.raises(SystemExit) as stopped:
        analyze_system.main(argv)
    assert stopped.value.code == 2
    assert "not a time zone name, such as Europe/Paris: 'Mars/Olympus'" in stderr.getvalue()


@pytest.mark.slow
def test_the_report_says_who_killed_whom_from_a_saved_log(tmp_path: Path) -> None:
    victim = Proc(30, "/srv/api", 500.0, 480.0, range(7))
    dumps = write_host(tmp_path / "d", [STEADY, victim], {7: 1})
    log = tmp_path / "journal.txt"
    log.write_text(FORMS["journalctl -k"])
    page = tmp_path / "r.html"
    argv = ["--dumps-dir", str(dumps), "--out", str(page), "--kernel-log", str(log)]
    ran = run_main(make_report.main, [*argv, "--kernel-log-tz", "Europe/Paris"])
    assert ran.status == 0, ran.stderr
    text = page.read_text(encoding="utf-8")
    assert "memcg limit of /system.slice/api.service hit: /srv/api (PID 30) killed" in text


def test_the_boot_time_comes_from_a_loose_snapshot_else_the_latest_bundle(tmp_path: Path) -> None:
    dumps = write_host(tmp_path / "d", [STEADY], {})  # every STARTED 2026-02-28 12:00:00
    last = datetime(2026, 3, 1, 1, 30)
    assert latest_boot_time(dumps, last) == datetime(2026, 2, 28, 12)
    assert latest_boot_time(dumps, datetime(2026, 2, 1)) is None  # none that early
    bundle_day(dumps, "20260301")
    assert not list(dumps.glob("process_mem_*.csv"))
    assert latest_boot_time(dumps, last) == datetime(2026, 2, 28, 12)
    (dumps / "mem_20260301.tar.xz").write_bytes(b"not xz")
    assert latest_boot_time(dumps, last) is None


def test_a_kill_the_dumps_hold_is_not_counted_twice() -> None:
    times = np.array([datetime(2026, 3, 1, 1), datetime(2026, 3, 1, 1, 10)], "datetime64[s]")
    held = OomInterval(times[0], times[1], 1, [VICTIM], False, 1)
    other = VICTIM._replace(pid=31)
    at = datetime(2026, 3, 1, 1, 5)
    joined = join_log_kills([held], times, [(at, VICTIM), (at, other), (at, other)])
    assert joined is not None
    assert [(oom.kills, oom.logged, oom.filed) for oom in joined] == [(2, [VICTIM], [other])]
    outside = join_log_kills([held], times, [(datetime(2026, 3, 1, 2), other)])
    assert outside == [held]
    alone = join_log_kills(None, times, [(at, other)])
    assert alone is not None and [(oom.kills, oom.filed) for oom in alone] == [(1, [other])]


def test_a_whole_second_near_a_snapshot_joins_the_interval_whose_counter_rose() -> None:
    # A collector at 1 s: the kill came between 12:00:01.3 and 12:00:02; `dmesg -T` prints
    # 12:00:01, on the earlier side of the snapshot at 12:00:01.
    times = np.array([datetime(2026, 3, 1, 12, 0, second) for second in range(8)], "datetime64[s]")
    counted = OomInterval(times[1], times[2], 1, [], False, 1)
    joined = join_log_kills([counted], times, [(datetime(2026, 3, 1, 12, 0, 1), VICTIM)])
    assert joined is not None
    assert [(oom.before, oom.kills, oom.filed) for oom in joined] == [(times[2], 1, [VICTIM])]
    # Three seconds off is too far: the kill is its own interval's.
    far = join_log_kills([counted], times, [(datetime(2026, 3, 1, 12, 0, 5), VICTIM)])
    assert far is not None
    assert [(oom.before, oom.kills, oom.filed) for oom in far] == [
        (times[2], 1, []),
        (times[6], 1, [VICTIM]),
    ]
    # Where it already is, a victim the dumps hold is found across the snapshot, not doubled.
    held = counted._replace(logged=[VICTIM])
    again = join_log_kills([held], times, [(datetime(2026, 3, 1, 12, 0, 3), VICTIM)])
    assert again is not None and [(oom.kills, oom.filed) for oom in again] == [(1, [])]


def test_a_kill_the_dumps_hold_in_the_next_interval_is_found_there_not_added_again() -> None:
    # An OOM storm: both intervals had a kill, each logged by the collector. A saved log's
    # copy of the first, a second after the snapshot between them, is the same kill.
    times = np.array(
        ["2026-01-01T00:00:00", "2026-01-01T00:01:00", "2026-01-01T00:02:00"], "datetime64[s]"
    )
    first, second = VICTIM._replace(pid=100), VICTIM._replace(pid=200)
    ooms = [
        OomInterval(times[0], times[1], 1, [first], False, 1),
        OomInterval(times[1], times[2], 1, [second], False, 1),
    ]
    joined = join_log_kills(ooms, times, [(datetime(2026, 1, 1, 0, 1, 1), first)])
    assert joined is not None and sum(oom.kills for oom in joined) == 2
    assert [oom.filed for oom in joined] == [[], []]


def test_a_userspace_kill_is_never_moved_to_where_the_kernels_counter_rose() -> None:
    times = np.array(
        ["2026-01-01T00:00:00", "2026-01-01T00:01:00", "2026-01-01T00:02:00"], "datetime64[s]"
    )
    oomd = OomVictim(None, "", kind="systemd-oomd", cgroup="/x.slice")
    ooms = [
        OomInterval(times[0], times[1], 1, [VICTIM], False, 1),
        OomInterval(times[1], times[2], 1, [oomd], False, 0),
    ]
    held = join_log_kills(ooms, times, [(datetime(2026, 1, 1, 0, 1, 1), oomd)])
    assert held is not None and sum(oom.kills for oom in held) == 2
    other = oomd._replace(cgroup="/y.slice")
    added = join_log_kills(ooms, times, [(datetime(2026, 1, 1, 0, 0, 59), other)])
    assert added is not None
    assert [(oom.kills, oom.filed) for oom in added] == [(2, [other]), (1, [])]


@pytest.mark.slow
def test_the_report_reads_a_log_on_standard_input_for_both_analyses(tmp_path: Path) -> None:
    victim = Proc(30, "/srv/api", 500.0, 480.0, range(7))
    dumps = write_host(tmp_path / "d", [STEADY, victim], {7: 1})
    page = tmp_path / "r.html"
    argv = ["--dumps-dir", str(dumps), "--out", str(page), "--kernel-log", "-"]
    ran = subprocess.run(
        [
            sys.executable,
            str(script_path("make_report.py")),
            *argv,
            "--kernel-log-tz",
            "Europe/Paris",
        ],
        input=FORMS["journalctl -k"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert ran.returncode == 0, ran.stderr
    text = page.read_text(encoding="utf-8")
    # The process analysis's table names the victim by its command line from the snapshots.
    assert "memcg limit of /system.slice/api.service hit: /srv/api (PID 30) killed" in text
