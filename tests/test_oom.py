"""The OOM killer's victims and the memory-pressure rates, on fixture dumps with exact
answers: inferred victims, the kernel log's, reboots, dumps without counters, the flags.
The real kernel's OOM kill is in test_oom_kernel.py."""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import analyze_processes
import analyze_system
import make_report
from conftest import FullRow, run_main, write_proc, write_sys
from utils.collect.snapshot_format import parse_victims
from utils.judge.oom import (
    INFERRED,
    KERNEL_LOG,
    SYSTEM_LOG,
    UNKNOWN,
    OomFindings,
    OomKill,
    find_victims,
)
from utils.outputs.process_console import format_findings
from utils.parser import PROCESS_PREFIX, SYS_PREFIX, TimeWindow, find_sources
from utils.process_analysis import ProcessOptions, load_all_records
from utils.reduce import counters
from utils.reduce.counters import OomInterval, oom_intervals
from utils.system_analysis import load_system_frame

START = datetime(2026, 3, 1)
STEP = timedelta(minutes=10)
BOOT_A = "1b4e28ba-2fa1-11d2-883f-0016d3cca427"
BOOT_B = "6fa459ea-ee8a-3ca4-894e-db77e160355e"
STARTED = "2026-02-28 12:00:00.00"


def stamp(index: int) -> str:
    return f"{START + index * STEP:%Y%m%d_%H%M%S}"


def moment(index: int) -> datetime:
    return START + index * STEP


class Proc:
    """A fixture process: its PID, command line, sizes and the snapshots that list it."""

    def __init__(self, pid: int, cmd: str, rss: float, foot: float, seen: range) -> None:
        self.pid, self.cmd, self.rss, self.foot, self.seen = pid, cmd, rss, foot, seen

    def row(self) -> FullRow:
        return (self.pid, 1, "app", self.rss, self.rss * 2, self.cmd, self.foot, 0.0, STARTED)


def write_host(
    dumps: Path,
    processes: list[Proc],
    kills: Mapping[int, int],
    snapshots: int = 10,
    boots: Mapping[int, str] | None = None,
    victims: Mapping[int, str] | None = None,
) -> Path:
    """Snapshots 0..snapshots-1; kills[i] is the oom_kill counter from snapshot i on;
    boots[i] the boot_id from snapshot i on; victims[i] snapshot i's oom_victims."""
    dumps.mkdir(exist_ok=True)
    counter, boot = 0, BOOT_A
    for index in range(snapshots):
        counter = kills.get(index, counter)
        boot = (boots or {}).get(index, boot)
        write_sys(
            dumps,
            stamp(index),
            boot,
            (victims or {}).get(index, ""),
            MemTotal=16000.0,
            MemFree=8000.0,
            oom_kill=counter,
            psi_some_total_us=index * 60_000_000,  # 10% of every 600 s
            psi_full_total_us=index * 6_000_000,
            pswpin=index * 600,
            pswpout=index * 1200,
            pgmajfault=index * 60,
        )
        rows = [p.row() for p in processes if index in p.seen]
        write_proc(dumps, stamp(index), rows)
    return dumps


def findings_of(dumps: Path, match: str | None = None):  # type: ignore[no-untyped-def]
    warn = lambda path, why: None  # noqa: E731
    records = load_all_records(
        find_sources(dumps, PROCESS_PREFIX, TimeWindow()), warn, options=ProcessOptions(match=match)
    )
    raw = load_system_frame(find_sources(dumps, SYS_PREFIX, TimeWindow()), warn)
    ooms = oom_intervals(raw)
    return None if ooms is None else find_victims(records, records.instances(), ooms)


STEADY = Proc(10, "/usr/sbin/sshd", 20.0, 5.0, range(10))


def test_the_victim_is_the_largest_gone_in_the_kill_interval_not_a_normal_exit(
    tmp_path: Path,
) -> None:
    big_exit = Proc(20, "/opt/batch --nightly", 1000.0, 990.0, range(4))  # exits normally
    victim = Proc(30, "/srv/api --workers 8", 500.0, 480.0, range(7))
    small = Proc(40, "sleep 5", 10.0, 1.0, range(7))
    dumps = write_host(tmp_path / "d", [STEADY, big_exit, victim, small], {7: 1})
    found = findings_of(dumps)
    assert found is not None
    assert [(k.pid, k.source, k.after, k.before) for k in found.kills] == [
        (30, INFERRED, moment(6), moment(7))
    ]
    assert found.kills[0].rss_mb == 500.0 and found.kills[0].anon_swap_mb == 480.0
    assert found.kills[0].cmd == "/srv/api --workers 8"
    assert [(g.pid, g.size_mb) for g in found.also_gone[moment(6)]] == [(40, 1.0)]


def test_two_kills_in_one_interval_are_the_two_largest_by_anon_plus_swap(tmp_path: Path) -> None:
    mostly_file = Proc(20, "/usr/bin/db", 900.0, 50.0, range(5))  # large RSS, small anon
    first = Proc(30, "/srv/a", 500.0, 480.0, range(5))
    second = Proc(40, "/srv/b", 300.0, 290.0, range(5))
    dumps = write_host(tmp_path / "d", [STEADY, mostly_file, first, second], {5: 2})
    found = findings_of(dumps)
    assert found is not None
    assert [(k.pid, k.source) for k in found.kills] == [(30, INFERRED), (40, INFERRED)]
    assert [g.pid for g in found.also_gone[moment(4)]] == [20]


def test_a_kill_then_a_reboot_names_the_first_and_leaves_the_second_unknown(
    tmp_path: Path,
) -> None:
    """oom_kill 2 -> 3 (a kill), then the machine reboots (a new boot_id) and the counter
    restarts at 1: one kill in the new boot, before its first snapshot."""
    victim = Proc(30, "/srv/api", 500.0, 480.0, range(3))
    after_boot = Proc(50, "/usr/sbin/sshd -D", 20.0, 5.0, range(6, 10))
    old_boot = Proc(10, "/usr/sbin/sshd", 20.0, 5.0, range(6))
    dumps = write_host(
        tmp_path / "d",
        [old_boot, victim, after_boot],
        {0: 2, 3: 3, 6: 1},
        boots={6: BOOT_B},
    )
    found = findings_of(dumps)
    assert found is not None
    assert [(k.pid, k.source, k.after) for k in found.kills] == [
        (30, INFERRED, moment(2)),
        (None, UNKNOWN, moment(5)),
    ]
    assert moment(5) not in found.also_gone  # every old process went: none is listed


def test_a_counter_that_goes_down_is_a_reboot_even_without_boot_ids() -> None:
    counter = np.array([5.0, 6.0, 1.0, 1.0, np.nan, 3.0])
    assert counters.interval_counts(counter, np.zeros(6, bool)).tolist()[1:4] == [1.0, 1.0, 0.0]
    assert np.isnan(counters.interval_counts(counter, np.zeros(6, bool))[[0, 4, 5]]).all()
    rebooted = counters.reboots(np.array(["a", "a", "", "b", "b", "c"], dtype=object))
    assert rebooted.tolist() == [False, False, False, False, False, True]  # "" is not known
    times = np.array([0.0, 10.0, 20.0, 30.0, 40.0, 50.0])
    rates = counters.interval_rates(np.array([0.0, 50.0, 100.0, 10.0, 20.0, 30.0]), rebooted, times)
    assert rates[1:3].tolist() == [5.0, 5.0]
    assert np.isnan(rates[[0, 3, 5]]).all() and rates[4] == 1.0


def test_the_kernel_log_names_victims_even_unseen_ones(tmp_path: Path) -> None:
    victim = Proc(812, "python3 worker.py --queue=mail", 41.0, 40.0, range(7))
    big = Proc(20, "/opt/big", 3000.0, 2900.0, range(7))  # gone too: not the victim
    dumps = write_host(
        tmp_path / "d",
        [STEADY, victim, big],
        {7: 2},
        victims={7: "812:python3:40704;999:cc1plus:1048576"},
    )
    found = findings_of(dumps)
    assert found is not None
    assert [(k.pid, k.cmd, k.source, k.kernel_anon_rss_mb) for k in found.kills] == [
        (812, "python3 worker.py --queue=mail", KERNEL_LOG, 39.75),
        (999, "cc1plus", KERNEL_LOG, 1024.0),  # born and killed between two snapshots
    ]
    assert found.kills[1].rss_mb is None
    assert [g.pid for g in found.also_gone[moment(6)]] == [20]


def test_match_hides_the_other_processes_so_nothing_is_inferred(tmp_path: Path) -> None:
    victim = Proc(30, "/srv/api", 500.0, 480.0, range(7))
    dumps = write_host(tmp_path / "d", [STEADY, victim], {7: 1})
    found = findings_of(dumps, match="sshd")
    assert found is not None
    assert [(k.pid, k.source) for k in found.kills] == [(None, UNKNOWN)]


def test_the_process_script_writes_oom_kills_and_fails_when_asked(tmp_path: Path) -> None:
    victim = Proc(30, '/srv/api, "eu"', 500.0, 480.0, range(7))
    dumps = write_host(tmp_path / "d", [STEADY, victim], {7: 1})
    out = tmp_path / "out"
    argv = ["--dumps-dir", str(dumps), "--out-dir", str(out)]
    ran = run_main(analyze_processes.main, argv)
    assert ran.status == 0, ran.stderr
    assert (out / "oom_kills.csv").read_text(encoding="utf-8").splitlines() == [
        "after,before,PID,CMD,RSS_MB,anon_swap_MB,source,kernel_anon_rss_MB,kind,cgroup,"
        "limit_cgroup,UID",
        '2026-03-01 01:00:00,2026-03-01 01:10:00,30,"/srv/api, ""eu""",500.000,480.000,'
        "inferred,,unknown,,,",
    ]
    assert "OOM kills: 1 process killed (oom_kills.csv)" in ran.stdout
    assert "likely" in ran.stdout
    failed = run_main(analyze_processes.main, [*argv, "--fail-on-oom"])
    assert failed.status == 3
    assert "1 OOM kill in the window, the last between 2026-03-01 01:00:00" in failed.stderr


@pytest.mark.slow
def test_the_report_shows_the_kills_first_and_the_alert_they_give(tmp_path: Path) -> None:
    victim = Proc(30, "/srv/api <b>", 500.0, 480.0, range(7))
    dumps = write_host(tmp_path / "d", [STEADY, victim], {7: 1})
    out = tmp_path / "report.html"
    ran = run_main(make_report.main, ["--dumps-dir", str(dumps), "--out", str(out)])
    assert ran.status == 0, ran.stderr
    page = out.read_text(encoding="utf-8")
    sections = re.findall(r'<section id="([a-z-]+)">', page)
    assert sections[:2] == ["analysed", "oom"]
    oom = page.split('<section id="oom">')[1].split("</section>")[0]
    cells = [
        html.unescape(re.sub(r"<[^>]+>", "", c)) for c in re.findall(r"<td[^>]*>(.*?)</td>", oom)
    ]
    assert cells == [
        "2026-03-01 01:00:00", "2026-03-01 01:10:00", "30", "500.000", "480.000", "likely",
        "not logged: likely /srv/api (PID 30), the largest process gone in the interval",
        "/srv/api <b>",
    ]  # fmt: skip
    assert "<b>" not in oom
    alerts = page.split('<section id="alerts">')[1]
    assert '--fail-on-oom</td><td class="status alert">3</td><td>1 OOM kill</td>' in alerts


@pytest.mark.slow
def test_dumps_without_counters_say_so_in_one_line(tmp_path: Path) -> None:
    dumps = tmp_path / "d"
    dumps.mkdir()
    for index in range(4):
        write_sys(dumps, stamp(index), MemTotal=16000.0, MemFree=8000.0)
        write_proc(dumps, stamp(index), [(10, 1, "root", 5.0, 9.0, "sshd")])
    out = tmp_path / "out"
    ran = run_main(analyze_processes.main, ["--dumps-dir", str(dumps), "--out-dir", str(out)])
    assert ran.status == 0, ran.stderr
    assert [line for line in ran.stdout.splitlines() if "OOM" in line] == [
        "OOM kills: unknown (the dumps carry no OOM counter: an older collector, or Linux"
        " before 4.13)"
    ]
    assert (out / "oom_kills.csv").read_text().startswith("after,before,PID,CMD,")
    system = run_main(analyze_system.main, ["--dumps-dir", str(dumps), "--out-dir", str(out)])
    assert system.status == 0, system.stderr
    assert "  OOM kills unknown: the dumps carry no OOM counter" in system.stdout
    assert (out / "memory_pressure.png").exists()
    metrics = pd.read_csv(out / "system_metrics.csv")
    assert metrics["PSI_Some_Pct"].isna().all()


@pytest.mark.slow
def test_the_system_script_counts_kills_and_rates_pressure(tmp_path: Path) -> None:
    victim = Proc(30, "/srv/api", 500.0, 480.0, range(7))
    dumps = write_host(tmp_path / "d", [STEADY, victim], {7: 1, 9: 3})
    out = tmp_path / "out"
    argv = ["--dumps-dir", str(dumps), "--out-dir", str(out)]
    ran = run_main(analyze_system.main, argv)
    assert ran.status == 0, ran.stderr
    assert "  OOM kills 3, in 2 intervals:" in ran.stdout
    assert "            2026-03-01 01:00:00 to 01:10:00: 1 kill" in ran.stdout
    assert "            2026-03-01 01:20:00 to 01:30:00: 2 kills" in ran.stdout
    metrics = pd.read_csv(out / "system_metrics.csv")
    assert list(metrics.columns[-5:]) == [name for name, _, _ in counters.RATE_COLUMNS]
    row = metrics.iloc[3]
    assert (row["PSI_Some_Pct"], row["PSI_Full_Pct"]) == (10.0, 1.0)
    assert (row["SwapIn_Pages_s"], row["SwapOut_Pages_s"], row["MajorFaults_s"]) == (1, 2, 0.1)
    assert metrics.iloc[0][["PSI_Some_Pct", "MajorFaults_s"]].isna().all()
    assert run_main(analyze_system.main, [*argv, "--fail-on-oom"]).status == 3


def test_an_interval_holds_its_kills_middle_for_the_plots() -> None:
    after = np.datetime64("2026-03-01T01:00:00", "s")
    oom = OomInterval(after, after + np.timedelta64(600, "s"), 1, [], False)
    assert oom.middle == np.datetime64("2026-03-01T01:05:00")


@pytest.mark.parametrize("text", ["", "1:a:2", "1:a:b:c:2;3::4", "7:x (y):0"])
def test_victims_text_parses(text: str) -> None:
    assert parse_victims(text) is not None


def test_a_kill_at_a_cgroups_limit_guesses_no_host_process(tmp_path: Path) -> None:
    victim = Proc(30, "/srv/api", 500.0, 480.0, range(7))
    dumps = write_host(tmp_path / "d", [STEADY, victim], {7: 1})
    warn = lambda path, why: None  # noqa: E731
    records = load_all_records(find_sources(dumps, PROCESS_PREFIX, TimeWindow()), warn)
    raw = load_system_frame(find_sources(dumps, SYS_PREFIX, TimeWindow()), warn)
    ooms = oom_intervals(raw)
    assert ooms is not None
    hit = [oom._replace(limit_hits=("/system.slice/api.service",)) for oom in ooms]
    found = find_victims(records, records.instances(), hit)
    assert [(k.pid, k.source, k.kind, k.limit_cgroup) for k in found.kills] == [
        (None, UNKNOWN, "memcg", "/system.slice/api.service")
    ]


def test_the_console_says_who_killed_whom_and_names_a_killed_cgroup() -> None:
    after, before = START, START + STEP
    kills = [
        OomKill(after, before, None, "", None, None, SYSTEM_LOG, kind="systemd-oomd",
                cgroup="/system.slice/batch.service"),
        OomKill(after, before, 24572, "java", None, None, KERNEL_LOG, 2048.0, kind="memcg",
                cgroup="/kubepods/pod1/c1", limit_cgroup="/kubepods/pod1", uid=0),
    ]  # fmt: skip
    lines = format_findings(OomFindings(kills, {}, True), None)
    assert lines[-2:] == [
        "  systemd-oomd killed /system.slice/batch.service",
        "  memcg limit of /kubepods/pod1 hit: java (PID 24572) killed",
    ]
    assert lines[3].endswith("/system.slice/batch.service")
