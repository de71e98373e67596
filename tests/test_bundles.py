"""Both analyses read day bundles (mem_<YYYYMMDD>.tar.xz, made by compact_dumps.py) and loose
files together: the same results to the last digit, no snapshot counted twice, and every
bad-input rule, naming the bundle and the member."""

from __future__ import annotations

import lzma
import os
import shutil
from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path
from typing import NamedTuple

import pytest

import analyze_processes
import analyze_system
from conftest import bundle_day, run_main, write_bundle, write_proc
from synthetic import generate_dumps
from utils.collect import bundles, compaction
from utils.parser import PROCESS_PREFIX, TimeWindow, find_sources
from utils.read import threaded_reader
from utils.read.snapshot_specs import PROCESS_SPEC
from utils.read.threaded_reader import Reader

DAYS = ["20260101", "20260102", "20260103"]


class Run(NamedTuple):
    status: int
    stdout: str
    stderr: str
    outputs: dict[str, bytes]


def run(main: Callable[[Sequence[str]], int], dumps: Path, out: Path, *extra: str) -> Run:
    ran = run_main(main, ["--dumps-dir", str(dumps), "--out-dir", str(out), "--top", "3", *extra])
    files = sorted(out.iterdir()) if out.exists() else []
    outputs = {p.name: p.read_bytes() for p in files if p.suffix != ".png"}
    return Run(ran.status, ran.stdout.replace(str(out), "<out>"), ran.stderr, outputs)


def system_main(argv: Sequence[str]) -> int:
    return analyze_system.main([arg for arg in argv if arg not in ("--top", "3")])


MAINS = [("system", system_main), ("processes", analyze_processes.main)]


@pytest.fixture(scope="module")
def loose(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Three days of 30 processes, the leak included, with an outage on the second day.
    dumps = tmp_path_factory.mktemp("loose") / "dumps"
    generate_dumps(dumps, snapshots=432, processes=30, seed=5, outage=(200, 12))
    return dumps


def copy(loose: Path, target: Path) -> Path:
    shutil.copytree(loose, target)
    return target


@pytest.mark.slow
@pytest.mark.parametrize(("name", "main"), MAINS)
def test_bundles_give_the_loose_files_results_to_the_last_digit(
    name: str, main: Callable[[Sequence[str]], int], loose: Path, tmp_path: Path
) -> None:
    bundled = copy(loose, tmp_path / "bundled")
    for day in DAYS[:2]:  # two days bundled, the third loose
        bundle_day(bundled, day)
    assert len(list(bundled.glob("*.csv"))) == 2 * 144
    expected = run(main, loose, tmp_path / "a")
    got = run(main, bundled, tmp_path / "b")
    assert got.status == expected.status == 0
    assert got.stderr == expected.stderr == ""
    assert got.stdout == expected.stdout
    assert got.outputs == expected.outputs


@pytest.mark.slow
@pytest.mark.parametrize(("name", "main"), MAINS)
def test_a_snapshot_both_bundled_and_loose_counts_once(
    name: str, main: Callable[[Sequence[str]], int], loose: Path, tmp_path: Path
) -> None:
    # A compaction stopped after its rename, before it removed the originals.
    both = copy(loose, tmp_path / "both")
    bundle_day(both, DAYS[0])
    for file in loose.glob(f"*_{DAYS[0]}_*.csv"):
        shutil.copy(file, both)
    assert run(main, both, tmp_path / "b").outputs == run(main, loose, tmp_path / "a").outputs


@pytest.mark.slow  # compacts days, then both analyses twice
def test_a_late_loose_file_of_a_bundled_day_is_read_too(loose: Path, tmp_path: Path) -> None:
    dumps = copy(loose, tmp_path / "late")
    late = sorted(dumps.glob(f"*_{DAYS[0]}_23*.csv"))  # the day's last hour arrives late
    kept = {file.name: file.read_bytes() for file in late}
    for file in late:
        file.unlink()
    bundle_day(dumps, DAYS[0])
    for name, data in kept.items():
        (dumps / name).write_bytes(data)
    for name, main in MAINS:
        assert (
            run(main, dumps, tmp_path / name).outputs
            == run(main, loose, tmp_path / f"{name}0").outputs
        )


@pytest.mark.slow
def test_a_bad_member_is_named_with_its_bundle(loose: Path, tmp_path: Path) -> None:
    dumps = copy(loose, tmp_path / "bad")
    bad = dumps / f"process_mem_{DAYS[0]}_120000.csv"
    bad.write_bytes(b"PID,PPID,USER,RSS_MB,VSZ_MB,CMD\nten,1,root,1.0,2.0,x\n")
    bundle = bundle_day(dumps, DAYS[0])
    result = run(analyze_processes.main, dumps, tmp_path / "out")
    assert result.status == 0
    assert result.stderr == (
        f"analyze_processes: warning: {bundle}:{bad.name}: PID on line 2 is 'ten',"
        " not a whole number; skipped\n"
    )


def test_odd_members_are_named_and_skipped(tmp_path: Path) -> None:
    good = b"PID,PPID,USER,RSS_MB,VSZ_MB,CMD\n1,0,root,1.000,2.000,init\n"
    bundle = write_bundle(
        tmp_path / "mem_20260301.tar.xz",
        [
            ("process_mem_20260301_000000.csv", good),
            ("../process_mem_20260301_001000.csv", good),  # a path: never a snapshot
            ("process_mem_20260302_000000.csv", good),  # another day's
            ("notes.txt", b"hello"),
        ],
    )
    result = run(analyze_processes.main, tmp_path, tmp_path / "out")
    assert result.status == 0
    assert result.stderr.splitlines() == [
        f"analyze_processes: warning: {bundle}:{name}: not a process_mem_*.csv snapshot of"
        " 2026-03-01; skipped"
        for name in [
            "../process_mem_20260301_001000.csv",
            "process_mem_20260302_000000.csv",
            "notes.txt",
        ]
    ]
    assert (
        "Top 1 of 1 PID by RSS spread (MiB), 1 snapshot from 2026-03-01 00:00:00" in result.stdout
    )


def test_many_odd_members_are_a_few_lines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A bundle of thousands of junk members (compressing to almost nothing) is not
    thousands of warnings, and more members than a day can hold stop the reading."""
    good = b"PID,PPID,USER,RSS_MB,VSZ_MB,CMD\n1,0,root,1.000,2.000,init\n"
    junk = [(f"junk-{number}.txt", b"") for number in range(30)]
    bundle = write_bundle(
        tmp_path / "mem_20260301.tar.xz", [("process_mem_20260301_000000.csv", good), *junk]
    )
    monkeypatch.setattr(threaded_reader, "MAX_MEMBER_NOTES", 3)
    result = run(analyze_processes.main, tmp_path, tmp_path / "out")
    assert result.status == 0
    assert result.stderr.splitlines() == [
        *(
            f"analyze_processes: warning: {bundle}:junk-{number}.txt: not a process_mem_*.csv"
            " snapshot of 2026-03-01; skipped"
            for number in range(3)
        ),
        f"analyze_processes: warning: {bundle}: 27 more members skipped, not listed",
    ]
    monkeypatch.setattr(bundles, "MAX_MEMBERS", 10)
    # A constant patched here is no change to the code a day summary is keyed by.
    ran = run(analyze_processes.main, tmp_path, tmp_path / "out", "--no-summaries")
    lines = ran.stderr.splitlines()
    assert lines[-1] == (
        f"analyze_processes: warning: {bundle}: cannot read the bundle: more than 10 members:"
        " not a day; read 1 snapshot, the rest skipped"
    )


@pytest.mark.slow
def test_a_cut_off_bundle_keeps_what_came_before_the_cut(loose: Path, tmp_path: Path) -> None:
    dumps = copy(loose, tmp_path / "cut")
    bundle = bundle_day(dumps, DAYS[0])
    data = bundle.read_bytes()
    bundle.write_bytes(data[: int(len(data) * 0.7)])  # a copy that stopped short
    result = run(analyze_processes.main, dumps, tmp_path / "out")
    assert result.status == 0
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"analyze_processes: warning: {bundle}: cannot read the bundle: ")
    assert "snapshots, the rest skipped" in line
    # The system analysis stops at the first process member: it never meets the cut.
    assert run(system_main, dumps, tmp_path / "sys").stderr == ""


@pytest.mark.slow
def test_a_bundle_that_is_not_one_is_one_line(loose: Path, tmp_path: Path) -> None:
    dumps = copy(loose, tmp_path / "junk")
    bundle_day(dumps, DAYS[0])
    (dumps / f"mem_{DAYS[0]}.tar.xz").write_bytes(lzma.compress(b"not a tar"))
    os.mkfifo(dumps / "mem_20260104.tar.xz")  # a FIFO by a bundle's name: never opened
    result = run(system_main, dumps, tmp_path / "out")
    assert result.status == 0
    assert result.stderr.splitlines() == [
        f"analyze_system: warning: {dumps}/mem_{DAYS[0]}.tar.xz: cannot read the bundle:"
        " truncated header; skipped",
        f"analyze_system: warning: {dumps}/mem_20260104.tar.xz: cannot read the bundle:"
        " not a regular file (a FIFO); skipped",
    ]


@pytest.mark.slow
def test_the_window_skips_whole_bundles_unopened(loose: Path, tmp_path: Path) -> None:
    dumps = copy(loose, tmp_path / "window")
    bundle = bundle_day(dumps, DAYS[0])
    bundle.write_bytes(b"garbage that would be a warning if it were opened")
    result = run(system_main, dumps, tmp_path / "out", "--since", "2026-01-02")
    assert result.status == 0
    assert result.stderr == ""
    assert "first     2026-01-02 00:00:00" in result.stdout


def test_only_bundles_and_none_readable_is_no_data(tmp_path: Path) -> None:
    (tmp_path / "mem_20260101.tar.xz").write_bytes(b"junk")
    result_lines = run(system_main, tmp_path, tmp_path / "out").stderr.splitlines()
    assert result_lines[-1] == "analyze_system: none of the 1 bundle could be used"


def test_loose_snapshots_written_by_the_helpers_still_work(tmp_path: Path) -> None:
    write_proc(tmp_path, "20260301_000000", [(1, 0, "root", 1.0, 2.0, "init")])
    assert run(analyze_processes.main, tmp_path, tmp_path / "out").status == 0


@pytest.mark.slow  # the compactor, then both analyses
def test_what_the_compactor_writes_reads_the_same(loose: Path, tmp_path: Path) -> None:
    compacted = copy(loose, tmp_path / "compacted")
    said: list[str] = []
    report = compaction.compact(
        compaction.RunSettings(compacted, date(2026, 1, 6), say=said.append, warn=said.append)
    )
    assert report.ok and report.days_written == 3
    assert not list(compacted.glob("*.csv"))
    for name, main in MAINS:
        expected = run(main, loose, tmp_path / f"{name}-loose")
        assert run(main, compacted, tmp_path / f"{name}-bundled").outputs == expected.outputs


def test_a_last_bundle_with_nothing_of_the_kind_loses_no_batch(tmp_path: Path) -> None:
    """The loose files before it end their batches; the bundle adds none: every batch read
    must still come out (the last one was once dropped)."""
    for hour in range(4):
        write_proc(tmp_path, f"20260301_0{hour}0000", [(1, 0, "root", 1.0 + hour, 2.0, "init")])
    write_bundle(tmp_path / "mem_20260302.tar.xz", [("sys_mem_20260302_000000.csv", b"x\n")])
    sources = find_sources(tmp_path, PROCESS_PREFIX, TimeWindow(None, None))
    reader = Reader(PROCESS_SPEC, lambda path, reason: None, batch_bytes=1)
    rows = sum(len(batch.frame) for batch in reader.batches(sources))
    assert rows == 4
