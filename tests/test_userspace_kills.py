"""The collector's reading of systemd-oomd's and earlyoom's kills: only while a killer runs,
from the journal after a kept cursor (a fake journalctl here: this machine keeps no journal,
and no real userspace killer is ever run), or from earlyoom's syslog lines; a journalctl
that hangs is killed with its process group. Lines in their exact formats: systemd's
src/oom/oomd-manager.c and rfjakob/earlyoom's kill.c (see tests/test_oom_log.py)."""

from __future__ import annotations

import time
from pathlib import Path

import collect_memory as cm
from conftest import write_fake_proc
from utils.collect import procfs
from utils.collect.snapshot_format import OomVictim, parse_victims
from utils.collect.userspace_kills import (
    UserspaceKills,
    journal_command,
    killer_running,
    parse_journal,
    syslog_kills,
)
from utils.core.signals import StopSignals

OOMD = (
    "Killed /system.slice/batch.service due to memory used (16254369792) / total (16663465984)"
    " and swap used (4008714240) / total (4294963200) being more than 90.00%"
)
EARLYOOM = (
    'sending SIGTERM to process 4242 uid 1000 "java": oom_score 870, oom_score_adj 0,'
    ' VmRSS 3900 MiB, cmdline "java -jar app.jar"'
)
OOMD_KILL = OomVictim(None, "", kind="systemd-oomd", cgroup="/system.slice/batch.service")
EARLYOOM_KILL = OomVictim(4242, "java", 1000, kind="earlyoom")


def test_a_killer_is_seen_in_the_ps_listing() -> None:
    assert killer_running(["/sbin/init", "/usr/lib/systemd/systemd-oomd"])
    assert killer_running(["/usr/bin/earlyoom -r 3600 -m 5"])
    assert not killer_running(["/sbin/init", "vim earlyoom.c", "grep systemd-oomd"])


def test_journal_output_gives_the_kills_and_the_last_cursor() -> None:
    text = f"{OOMD}\nsome other line\n{EARLYOOM}\n-- cursor: s=abc;i=12\n"
    assert parse_journal(text) == ([OOMD_KILL, EARLYOOM_KILL], "s=abc;i=12")
    assert parse_journal("") == ([], None)
    assert journal_command("s=abc", 0.0)[-6:] == [
        "--show-cursor", "--after-cursor=s=abc", "-t", "systemd-oomd", "-t", "earlyoom",
    ]  # fmt: skip
    assert "--since=@1700000000" in journal_command(None, 1700000000.5)


def test_syslog_lines_of_the_killers() -> None:
    text = (
        f"Dec  6 10:00:00 web1 earlyoom[555]: {EARLYOOM}\n"
        f"Dec  6 10:00:01 web1 systemd-oomd[612]: {OOMD}\n"
        f"Dec  6 10:00:02 web1 cron[1]: {EARLYOOM}\n"
    )
    assert syslog_kills(text) == [EARLYOOM_KILL, OOMD_KILL]


def fake_journalctl(tmp_path: Path, body: str) -> Path:
    script = tmp_path / "journalctl"
    script.write_text(f"#!/bin/sh\necho \"$@\" >> {tmp_path / 'args'}\n{body}\n")
    script.chmod(0o755)
    return script


def test_the_journal_is_read_only_while_a_killer_runs_and_from_the_cursor(tmp_path: Path) -> None:
    lines = f"echo '{OOMD}'; echo '-- cursor: s=1'"
    kills = UserspaceKills([], journalctl=str(fake_journalctl(tmp_path, lines)))
    assert kills.kills(running=False) == []
    assert not (tmp_path / "args").exists()  # no killer: journalctl never ran
    assert kills.kills(running=True) == [OOMD_KILL]
    assert kills.kills(running=False) == [OOMD_KILL]  # the killer just exited: once more
    assert kills.kills(running=False) == []
    runs = (tmp_path / "args").read_text().splitlines()
    assert len(runs) == 2 and "--since=@" in runs[0] and "--after-cursor=s=1" in runs[1]


def test_a_journalctl_that_hangs_is_killed_with_its_group(tmp_path: Path) -> None:
    hang = fake_journalctl(tmp_path, "sleep 30 & sleep 30")
    kills = UserspaceKills([], journalctl=str(hang), timeout_s=0.3)
    began = time.monotonic()
    assert kills.kills(running=True) == []
    assert time.monotonic() - began < 5


def test_earlyoom_syslog_lines_since_the_last_read(tmp_path: Path) -> None:
    syslog = tmp_path / "syslog"
    syslog.write_text(f"Dec  6 09:00:00 web1 earlyoom[555]: {EARLYOOM}\n")  # before: not ours
    kills = UserspaceKills([syslog], journalctl=None)
    kills.journal = False
    with syslog.open("a") as handle:
        handle.write(f"Dec  6 10:00:00 web1 earlyoom[555]: {EARLYOOM}\n")
    assert kills.kills(running=True) == [EARLYOOM_KILL]
    assert kills.kills(running=True) == []


def test_a_snapshot_writes_a_userspace_kill(tmp_path: Path) -> None:
    proc = write_fake_proc(tmp_path / "proc", {})
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal: 1000 kB\nMemFree: 10 kB\n")
    ps_text = tmp_path / "ps.txt"
    ps_text.write_text("    555       1 root   9148   37436 /usr/bin/earlyoom -r 3600\n")
    syslog = tmp_path / "syslog"
    syslog.write_text("")
    kills = UserspaceKills([syslog], journalctl=None)
    kills.journal = False
    sources = cm.Sources(meminfo, ("cat", str(ps_text)), proc, tmp_path / "no-kmsg")
    state = cm.RunState(None, procfs.KernelLog(sources.kmsg), userspace=kills)
    syslog.write_text(f"Dec  6 10:00:00 web1 earlyoom[555]: {EARLYOOM}\n")
    dumps = tmp_path / "dumps"
    dumps.mkdir()
    cm.take_snapshot(dumps, "20261206_100000", StopSignals(), sources, state)
    row = (dumps / "sys_mem_20261206_100000.csv").read_text().splitlines()[1]
    assert parse_victims(row.rsplit(",", 1)[1]) == [EARLYOOM_KILL]
