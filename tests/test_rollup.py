"""The roll-up is a cache: the process analysis answers the same, byte for byte, whether it
loads the roll-up, folds the day summaries, or reads every snapshot; a changed day makes it
stale, and a damaged one is folded again with one warning line."""

from __future__ import annotations

import csv
import os
import shutil
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from synthetic_services import ServiceShape, add_cgroup_files
from test_pss_totals import write_dumps

import analyze_processes
from bench.one_hour import add_one_hour
from conftest import bundle_day, run_main
from synthetic import generate_dumps
from utils.reduce import rollup, summary_file
from utils.reduce.columns_rollup import ColumnsRollup
from utils.reduce.rollup import Rollup

START = datetime(2026, 1, 1, 20, 0)


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two boots: three days at 10 minutes with an outage, then a reboot (the same PIDs
    reused by other processes) and a day and a half at 2 minutes; a leaking service; one day
    in a bundle and a bad file."""
    root = tmp_path_factory.mktemp("host")
    dumps = root / "dumps"
    generate_dumps(dumps, snapshots=440, processes=30, seed=5, start=START, outage=(150, 20))
    generate_dumps(
        root / "second", 1080, processes=30, seed=6, start=datetime(2026, 1, 5, 6), interval_s=120
    )
    for path in (root / "second").iterdir():
        path.rename(dumps / path.name)
    add_cgroup_files(dumps, [ServiceShape("web.service", anon_mb_per_day=300, limit_mb=4000)])
    bundle_day(dumps, "20260102")
    (dumps / "process_mem_20260103_120500.csv").write_text("PID,RSS_MB\n1,x\n", "utf-8")
    for path in sorted(dumps.glob("sys_mem_2026010[34]_*.csv")):  # a kill on the third day
        if path.name >= "sys_mem_20260103_060000.csv":
            count_a_kill(path)
    return dumps


def count_a_kill(path: Path) -> None:
    """The snapshot's oom_kill counter at 1: the kernel killed once since the boot."""
    with path.open(encoding="utf-8", newline="") as handle:
        header, *rows = list(csv.reader(handle))
    at = header.index("oom_kill")
    for row in rows:
        row[at] = "1"
    with path.open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle, lineterminator="\n").writerows([header, *rows])


@pytest.fixture
def covered(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """The host's few days are enough for a roll-up; each run's covered days, in order."""
    monkeypatch.setattr(rollup, "ROLLUP_MIN_DAYS", 1)
    seen: list[int] = []
    begin = Rollup.begin

    def spied(self: Rollup, *args: Any) -> int:
        days: int = begin(self, *args)
        seen.append(days)
        return days

    monkeypatch.setattr(Rollup, "begin", spied)
    yield seen


def answers(dumps: Path, out: Path, *flags: str) -> dict[str, Any]:
    """The process analysis's exit status, console, warnings, files and textfile."""
    folder, prom = out / "processes", out / "processes.prom"
    argv = ["--dumps-dir", str(dumps), "--out-dir", str(folder), "--no-plots"]
    argv += ["--fail-on-leak", "--min-rise", "1", "--min-span", "6h"]
    ran = run_main(analyze_processes.main, [*argv, "--prometheus-textfile", str(prom), *flags])
    outcome: dict[str, Any] = {"run": (ran.status, ran.stdout.replace(str(out), "OUT"))}
    outcome["stderr"] = ran.stderr
    outcome |= {p.name: p.read_bytes() for p in sorted(folder.iterdir())}
    outcome["prom"] = [
        line
        for line in prom.read_text("utf-8").splitlines()
        if not line.startswith(("pmi_analysis_duration", "pmi_analysis_timestamp"))
    ]
    return outcome


def rollups(folder: Path) -> list[Path]:
    return sorted(folder.glob("process_mem_rollup_*.summary"))


@pytest.mark.slow
def test_the_rollup_changes_no_answer(host: Path, tmp_path: Path, covered: list[int]) -> None:
    summaries = tmp_path / "s"
    flags = ("--summary-dir", str(summaries))
    plain = answers(host, tmp_path / "plain", "--no-summaries")
    first = answers(host, tmp_path / "first", *flags)
    (kept,) = rollups(summaries)
    second = answers(host, tmp_path / "second", *flags)
    kept.unlink()  # deleted: the day summaries are folded, and it is written again
    third = answers(host, tmp_path / "third", *flags)
    for path in summaries.glob("process_mem_day_*"):  # the days it refers to are gone
        path.unlink()
    fourth = answers(host, tmp_path / "fourth", *flags)
    assert first == second == third == fourth == plain
    assert plain["run"][0] == 3  # the leak alert asked for holds
    assert plain["oom_kills.csv"].count(b"\n") == 2  # the kill, and its victim guessed
    assert "process_mem_20260103_120500.csv" in plain["stderr"]  # said each time
    # Every closed day is before today: six of them, all covered after the first run.
    assert covered == [0, 6, 0, 0]
    assert len(rollups(summaries)) == 1


@pytest.mark.slow
def test_an_hour_after_it_is_folded_onto_it(host: Path, tmp_path: Path, covered: list[int]) -> None:
    """The hourly run: the roll-up of the days before, then a new day's snapshots (the last
    hour again, a day later: the same processes go on) folded onto it, as from nothing."""
    summaries = tmp_path / "s"
    flags = ("--summary-dir", str(summaries))
    answers(host, tmp_path / "first", *flags)
    later = tmp_path / "later"
    assert add_one_hour(host, later)
    hourly = answers(later, tmp_path / "hourly", *flags)
    extended = answers(later, tmp_path / "extended", *flags)
    after = answers(later, tmp_path / "after", *flags)
    plain = answers(later, tmp_path / "plain", "--no-summaries")
    assert hourly == extended == after == plain
    # The new day read raw is left to the next run, which extends the roll-up by its summary.
    assert covered == [0, 6, 6, 7]


@pytest.mark.slow
def test_a_window_neither_uses_nor_keeps_one(
    host: Path, tmp_path: Path, covered: list[int]
) -> None:
    summaries = tmp_path / "s"
    flags = ("--summary-dir", str(summaries))
    answers(host, tmp_path / "first", *flags)
    windowed = answers(host, tmp_path / "since", *flags, "--since", "2026-01-02")
    plain = answers(host, tmp_path / "plain", "--no-summaries", "--since", "2026-01-02")
    assert windowed == plain
    assert covered == [0]  # the windowed run never looked at it


@pytest.mark.slow
def test_a_changed_day_makes_it_stale(host: Path, tmp_path: Path, covered: list[int]) -> None:
    dumps = tmp_path / "dumps"
    dumps.mkdir()
    for path in host.iterdir():
        os.link(path, dumps / path.name)
    summaries = tmp_path / "s"
    flags = ("--summary-dir", str(summaries))
    answers(dumps, tmp_path / "first", *flags)
    # A late file in the third day: a copy of one of its snapshots, a little later.
    (early,) = sorted(dumps.glob("process_mem_20260103_12*.csv"))[:1]
    shutil.copyfile(early, dumps / "process_mem_20260103_235959.csv")
    stale = answers(dumps, tmp_path / "stale", *flags)
    again = answers(dumps, tmp_path / "again", *flags)
    plain = answers(dumps, tmp_path / "plain", "--no-summaries")
    assert stale == again == plain
    assert covered == [0, 0, 6]  # stale, then written again over the changed day


@pytest.mark.slow
@pytest.mark.parametrize("part", ["meta", "hot", "cold", "cut"])
def test_a_damaged_one_is_folded_again_with_one_line(
    host: Path, tmp_path: Path, covered: list[int], part: str
) -> None:
    summaries = tmp_path / "s"
    flags = ("--summary-dir", str(summaries))
    plain = answers(host, tmp_path / "plain", "--no-summaries")
    answers(host, tmp_path / "first", *flags)
    (kept,) = rollups(summaries)
    with summary_file.open_summary(kept) as handle:
        meta, _ = summary_file.read(handle)
    data = bytearray(kept.read_bytes())
    if part == "cut":
        data = data[: len(data) - 100]
    elif part == "meta":
        data[40] ^= 0xFF  # inside the JSON
    else:
        start, end, _ = meta[part]
        data[meta["payload"] + (start + end) // 2] ^= 0xFF
    kept.write_bytes(bytes(data))
    damaged = answers(host, tmp_path / "damaged", *flags)
    lines = [line for line in damaged.pop("stderr").splitlines() if kept.name in line]
    assert len(lines) == 1 and "could not be read; recomputed" in lines[0]
    assert damaged == {key: value for key, value in plain.items() if key != "stderr"}
    assert covered == [0, 0]
    assert answers(host, tmp_path / "after", *flags) == plain  # written whole again
    assert covered == [0, 0, 6]


def test_shares_carried_across_its_last_day(tmp_path: Path, covered: list[int]) -> None:
    """Proportional shares read on the roll-up's last day are carried onto the next day's
    rows (and back from them) as when both days are folded at once."""
    dumps = write_dumps(tmp_path / "dumps")
    later = sorted(dumps.glob("process_mem_20260106_*.csv"))
    held = tmp_path / "held"
    held.mkdir()
    for path in later:  # the next day's snapshots arrive after the first run
        path.rename(held / path.name)
    summaries = tmp_path / "s"
    flags = ("--summary-dir", str(summaries))
    answers(dumps, tmp_path / "first", *flags)
    for path in later:
        (held / path.name).rename(path)
    hourly = answers(dumps, tmp_path / "hourly", *flags)
    plain = answers(dumps, tmp_path / "plain", "--no-summaries")
    assert hourly == plain
    assert covered == [0, 1]
    assert b"pool" in plain["program_growth.csv"]


@pytest.mark.slow
def test_the_oom_columns_rollup_is_a_cache(
    host: Path, tmp_path: Path, covered: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[int] = []
    begin = ColumnsRollup.begin

    def spied(self: ColumnsRollup, *args: Any) -> int:
        days: int = begin(self, *args)
        seen.append(days)
        return days

    monkeypatch.setattr(ColumnsRollup, "begin", spied)
    summaries = tmp_path / "s"
    flags = ("--summary-dir", str(summaries))
    plain = answers(host, tmp_path / "plain", "--no-summaries")
    first = answers(host, tmp_path / "first", *flags)
    (kept,) = sorted(summaries.glob("sys_mem_columns_rollup_*.summary"))
    second = answers(host, tmp_path / "second", *flags)
    data = bytearray(kept.read_bytes())
    data[len(data) - 20] ^= 0xFF
    kept.write_bytes(bytes(data))
    damaged = answers(host, tmp_path / "damaged", *flags)
    lines = [line for line in damaged.pop("stderr").splitlines() if kept.name in line]
    assert len(lines) == 1 and "could not be read; recomputed" in lines[0]
    third = answers(host, tmp_path / "third", *flags)  # written whole again
    kept.unlink()
    fourth = answers(host, tmp_path / "fourth", *flags)
    assert first == second == third == fourth == plain
    assert damaged == {key: value for key, value in plain.items() if key != "stderr"}
    assert plain["oom_kills.csv"].count(b"\n") == 2
    assert seen == [0, 6, 0, 6, 0]
