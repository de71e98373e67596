"""A kill no log names is a memcg kill where a cgroup's own OOM_EVENTS rose in its interval:
the deepest such cgroup is named, no host process is guessed, and the host's summary does not
call it host pressure. On cgroup v1 (no OOM_EVENTS) it stays unknown."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

import analyze_processes
import analyze_system
from conftest import run_main, write_proc, write_sys
from utils.collect.snapshot_format import CGROUP_HEADER, CGROUP_PREFIX, csv_text
from utils.reduce.counters import OomInterval
from utils.reduce.limit_hits import limit_hits_between, unnamed_kills, with_limit_hits

SLICE, APP = "/system.slice", "/system.slice/app.service"


def frame(rows: Sequence[tuple[float, str, float]]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "time": [row[0] for row in rows],
            "CGROUP": [row[1] for row in rows],
            "OOM_EVENTS": [row[2] for row in rows],
        }
    )


def test_the_deepest_cgroup_whose_events_rose_is_named() -> None:
    rows = [(0, "/", 5), (0, SLICE, 2), (0, APP, 2), (0, "/other", 1)]
    rows += [(600, "/", 6), (600, SLICE, 3), (600, APP, 3), (600, "/other", 1)]
    assert limit_hits_between(frame(rows), 0, 600) == (APP,)


def test_the_snapshots_around_the_interval_are_compared() -> None:
    rows = [(0, APP, 1), (300, APP, 1), (900, APP, 2), (1200, APP, 9)]
    # after=300, before=900: 1 -> 2; the rise at 1200 is after the interval
    assert limit_hits_between(frame(rows), 300, 900) == (APP,)
    assert limit_hits_between(frame(rows), 0, 300) == ()


def test_v1_empty_counters_and_missing_snapshots_name_nothing() -> None:
    rows = [(0, APP, np.nan), (600, APP, np.nan)]
    assert limit_hits_between(frame(rows), 0, 600) == ()
    assert limit_hits_between(frame([(0, APP, 1)]), 0, 600) == ()
    # a cgroup made in the interval has no count before: not named
    assert limit_hits_between(frame([(0, SLICE, 0), (600, APP, 1)]), 0, 600) == ()


def test_with_limit_hits_fills_each_interval() -> None:
    oom = OomInterval(
        np.datetime64("1970-01-01T00:00:00"), np.datetime64("1970-01-01T00:10:00"), 1, [], False, 1
    )
    rows = [(0, APP, 0), (600, APP, 1)]
    (filled,) = with_limit_hits([oom], frame(rows)) or []
    assert filled.limit_hits == (APP,)
    assert unnamed_kills(filled) == 1
    assert with_limit_hits(None, frame(rows)) is None


def write_host(dumps: Path, events: tuple[str, str]) -> None:
    """Two snapshots 10 minutes apart, one OOM kill between them no log names, and app.service's
    OOM_EVENTS `events[0]` then `events[1]`; the vanished process is a large host process."""
    for index, (when, count) in enumerate(
        zip(("20261120_000000", "20261120_001000"), events, strict=True)
    ):
        write_sys(dumps, when, boot_id="b", oom_kill=index, MemTotal=16000.0, MemFree=9000.0)
        rows = [(1, 0, "root", 11.5, 160.25, "/sbin/init", 8.0, 0.0, "2026-11-01 00:00:00.00", "/")]
        if index == 0:
            rows.append(
                (
                    77,
                    1,
                    "db",
                    4000.0,
                    5000.0,
                    "postgres",
                    3900.0,
                    0.0,
                    "2026-11-01 00:00:01.00",
                    "/",
                )
            )
        write_proc(dumps, when, rows)
        cgroup_rows = [[APP, "app.service", "100.000", "128.000", *[""] * 5, count, "", ""]]
        text = csv_text(CGROUP_HEADER, cgroup_rows)
        (dumps / f"{CGROUP_PREFIX}{when}.csv").write_text(text, encoding="utf-8")


def oom_rows(out: Path) -> list[dict[str, str]]:
    with (out / "oom_kills.csv").open(encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_an_unnamed_kill_at_a_cgroup_limit_is_memcg_not_host_pressure(tmp_path: Path) -> None:
    dumps = tmp_path / "dumps"
    dumps.mkdir()
    write_host(dumps, ("4", "5"))
    prom = tmp_path / "system.prom"
    ran = run_main(
        analyze_system.main,
        [
            "--dumps-dir",
            str(dumps),
            "--out-dir",
            str(tmp_path / "s"),
            "--no-plots",
            "--prometheus-textfile",
            str(prom),
        ],
    )
    assert ran.status == 0, ran.stderr
    assert 'pmi_oom_kills{analysis="system",kind="memcg"} 1.0' in prom.read_text(encoding="utf-8")
    assert "1 not host pressure" in ran.stdout
    assert f"memcg limit of {APP} hit: 1 victim unnamed" in ran.stdout
    out = tmp_path / "p"
    ran = run_main(
        analyze_processes.main, ["--dumps-dir", str(dumps), "--out-dir", str(out), "--no-plots"]
    )
    assert ran.status == 0, ran.stderr
    (row,) = oom_rows(out)
    assert (row["kind"], row["limit_cgroup"], row["PID"]) == ("memcg", APP, "")


def test_without_a_rise_the_largest_vanished_process_is_inferred(tmp_path: Path) -> None:
    dumps = tmp_path / "dumps"
    dumps.mkdir()
    write_host(dumps, ("4", "4"))
    ran = run_main(
        analyze_system.main,
        ["--dumps-dir", str(dumps), "--out-dir", str(tmp_path / "s"), "--no-plots"],
    )
    assert "not host pressure" not in ran.stdout
    out = tmp_path / "p"
    run_main(
        analyze_processes.main, ["--dumps-dir", str(dumps), "--out-dir", str(out), "--no-plots"]
    )
    (row,) = oom_rows(out)
    assert row["PID"] == "77"
