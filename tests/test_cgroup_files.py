"""The cgroup_mem files among the rest: compaction bundles them before the process files, the
bundle readers of the other kinds pass over them, discovery never takes them for another
kind, and both analyses give the same answers with them as without."""

from __future__ import annotations

import tarfile
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest

import analyze_processes
import analyze_system
from conftest import run_main, write_proc, write_sys
from utils.collect import compaction
from utils.collect.bundles import Skipped, Snapshot, bundle_name, snapshot_members
from utils.collect.snapshot_format import (
    CGROUP_HEADER,
    CGROUP_PREFIX,
    PROCESS_PREFIX,
    SYS_PREFIX,
    csv_text,
)
from utils.parser import TimeWindow, find_dumps

TODAY = date(2026, 11, 25)
OLD_DAY = TODAY - timedelta(days=5)
NGINX = "/system.slice/nginx.service"


def stamp(day: date, hour: int) -> str:
    return f"{day:%Y%m%d}_{hour:02d}0000"


STARTED = "2026-11-01 00:00:01.00"
NGINX_REST = ["256.000", "60.000", "30.000", "1.000", "5.000", "0.000", "0", "0", "1200"]


def write_cgroup(dumps: Path, when: str, memory_mb: float) -> Path:
    rows = [
        ["/", "/", "900.000", "", "", "", "", "", "", "", "", ""],
        [NGINX, "nginx.service", f"{memory_mb:.3f}", *NGINX_REST],
    ]
    path = dumps / f"{CGROUP_PREFIX}{when}.csv"
    path.write_text(csv_text(CGROUP_HEADER, rows), encoding="utf-8")
    return path


def write_snapshot(dumps: Path, when: str, index: int, cgroups: bool = True) -> None:
    """One snapshot: today's three files, or an older collector's two (cgroups=False)."""
    write_sys(dumps, when, boot_id="b", MemTotal=16000.0, MemFree=8000.0 - index)
    rows = [
        (1, 0, "root", 11.5, 160.25, "/sbin/init", 8.0, 0.0, "2026-11-01 00:00:00.00", "/"),
        (812, 1, "www", 100.0 + index, 900.0, "nginx", 90.0 + index, 0.0, STARTED, NGINX),
    ]
    write_proc(dumps, when, rows if cgroups else [row[:9] for row in rows])
    if cgroups:
        write_cgroup(dumps, when, 100.0 + index)


def compact(dumps: Path) -> list[str]:
    warned: list[str] = []
    report = compaction.compact(
        compaction.RunSettings(
            dumps,
            TODAY,
            older_than_days=2,
            keep_days=None,
            dry_run=False,
            say=print,
            warn=warned.append,
        )
    )
    assert report.ok
    return warned


def test_compaction_bundles_cgroup_files_before_the_process_files(tmp_path: Path) -> None:
    write_snapshot(tmp_path, stamp(OLD_DAY, 0), 0, cgroups=False)  # an older collector
    for hour in (6, 12):
        write_snapshot(tmp_path, stamp(OLD_DAY, hour), hour)
    assert compact(tmp_path) == []
    assert sorted(path.name for path in tmp_path.glob("*.csv")) == []
    with tarfile.open(tmp_path / bundle_name(OLD_DAY)) as tar:
        names = tar.getnames()
    assert names == [
        *(f"sys_mem_{stamp(OLD_DAY, hour)}.csv" for hour in (0, 6, 12)),
        *(f"cgroup_mem_{stamp(OLD_DAY, hour)}.csv" for hour in (6, 12)),
        *(f"process_mem_{stamp(OLD_DAY, hour)}.csv" for hour in (0, 6, 12)),
    ]
    # A later cgroup file of the same day is merged into the bundle, in its place.
    write_cgroup(tmp_path, stamp(OLD_DAY, 18), 130.0)
    assert compact(tmp_path) == []
    with tarfile.open(tmp_path / bundle_name(OLD_DAY)) as tar:
        names = tar.getnames()
    first_process = names.index(f"process_mem_{stamp(OLD_DAY, 0)}.csv")
    assert names[first_process - 1] == f"cgroup_mem_{stamp(OLD_DAY, 18)}.csv"


def test_each_kind_reads_only_its_members_of_a_bundle(tmp_path: Path) -> None:
    for hour in (6, 12):
        write_snapshot(tmp_path, stamp(OLD_DAY, hour), hour)
    compact(tmp_path)
    bundle = tmp_path / bundle_name(OLD_DAY)
    for prefix in (SYS_PREFIX, PROCESS_PREFIX, CGROUP_PREFIX):
        with bundle.open("rb") as handle:
            items = list(snapshot_members(handle, prefix, OLD_DAY, lambda _: True))
        assert not [item for item in items if isinstance(item, Skipped)], prefix
        assert [item.name for item in items if isinstance(item, Snapshot)] == [
            f"{prefix}{stamp(OLD_DAY, hour)}.csv" for hour in (6, 12)
        ]


def test_discovery_never_takes_a_cgroup_file_for_another_kind(tmp_path: Path) -> None:
    write_snapshot(tmp_path, stamp(OLD_DAY, 6), 0)
    warned: list[str] = []
    for prefix in (SYS_PREFIX, PROCESS_PREFIX):
        found = find_dumps(tmp_path, prefix, TimeWindow(), lambda path, why: warned.append(why))
        assert [dump.path.name for dump in found] == [f"{prefix}{stamp(OLD_DAY, 6)}.csv"]
    cgroups = find_dumps(tmp_path, CGROUP_PREFIX, TimeWindow())
    assert [dump.timestamp for dump in cgroups] == [datetime(2026, 11, 20, 6)]
    assert warned == []


def answers(dumps: Path, out: Path) -> list[tuple[int, str, str]]:
    """Both analyses' status, stdout and stderr (the dirs' names made alike), no plots."""
    ran = []
    for main in (analyze_system.main, analyze_processes.main):
        result = run_main(
            main, ["--dumps-dir", str(dumps), "--out-dir", str(out / main.__module__), "--no-plots"]
        )
        stdout, stderr = (
            text.replace(str(dumps), "DUMPS").replace(str(out), "OUT")
            for text in (result.stdout, result.stderr)
        )
        ran.append((result.status, stdout, stderr))
    return ran


def but_services(ran: list[tuple[int, str, str]]) -> list[tuple[int, str, str]]:
    """The answers without the Services section and services.csv's line, which only the
    cgroup files give."""
    kept = []
    for status, stdout, stderr in ran:
        text = stdout
        start = text.find("Services: ")
        if start >= 0:
            text = text[:start] + text[text.index("\nWrote ", start) + 1 :]
        text = "".join(line for line in text.splitlines(True) if "services.csv" not in line)
        kept.append((status, text, stderr))
    return kept


@pytest.mark.slow  # both analyses, twice
def test_both_analyses_answer_the_same_with_cgroup_files_or_without(tmp_path: Path) -> None:
    with_files, without = tmp_path / "with", tmp_path / "without"
    for folder in (with_files, without):
        folder.mkdir()
        for index in range(16):
            when = datetime(2026, 11, 20) + timedelta(hours=6 * index)
            write_snapshot(folder, when.strftime("%Y%m%d_%H%M%S"), index)
    for path in without.glob(f"{CGROUP_PREFIX}*"):
        path.unlink()
    loose = answers(with_files, tmp_path / "out1")
    assert [status for status, _, _ in loose] == [0, 0]
    plain = answers(without, tmp_path / "out2")
    assert "Services: no cgroup snapshots in these dumps" in plain[1][1]
    assert "nginx.service" in loose[1][1]
    assert but_services(loose) == but_services(plain)
    compact(with_files)  # the older days in bundles, cgroup files and all
    assert list(with_files.glob(f"{CGROUP_PREFIX}*"))  # today's and yesterday's stay loose
    assert list(with_files.glob("mem_*.tar.xz"))
    bundled = answers(with_files, tmp_path / "out3")
    assert [status for status, _, _ in bundled] == [0, 0]
    assert "cgroup" not in "".join(stderr for _, _, stderr in bundled)
