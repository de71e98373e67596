"""Day summaries are a cache: what is folded from them is what is folded from the snapshots,
whatever was kept, stale, damaged or never written."""

from __future__ import annotations

import io
import json
import os
import shutil
import tempfile
import weakref
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from datetime import date, datetime
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from synthetic_services import ServiceShape, add_cgroup_files

import analyze_processes
import analyze_system
from conftest import bundle_day, run_main
from synthetic import generate_dumps
from utils.parser import PROCESS_PREFIX, SYS_PREFIX, Source, TimeWindow, Warn, find_sources
from utils.read.csv_batches import Batch
from utils.read.snapshot_specs import PROCESS_SPEC
from utils.read.threaded_reader import Reader
from utils.reduce import summary_file
from utils.reduce.batch_runs import BatchRuns, Chunk
from utils.reduce.day_summaries import (
    DayPlan,
    DayReading,
    DaySummary,
    SummaryChangedError,
    SummaryPlace,
    SummaryStore,
    plan_days,
    read_by_day,
)
from utils.reduce.group_totals import GroupPart, GroupRows
from utils.reduce.process_records import ProcessRecords
from utils.reduce.summary_codec import CodecError, Sink, _decoded_whole, decode, encode
from utils.reduce.summary_kinds import StoredChunk, process_runs
from utils.system_analysis import SYSTEM_SPEC

RECORDS = {cls.__name__: cls for cls in (BatchRuns, Chunk, GroupPart, GroupRows, Batch)}
TODAY = date(2026, 12, 6)
START = datetime(2026, 1, 1, 20, 0)  # 3 days and a bit: 20:00 on day 1 to day 4


# --- The codec -------------------------------------------------------------------------


class Inner(NamedTuple):
    values: Any
    texts: Any


class Outer(NamedTuple):
    inner: Inner
    parts: tuple[Any, ...]
    missing: None
    number: int


CODEC_RECORDS = {"Inner": Inner, "Outer": Outer}
texts = st.lists(st.none() | st.text(alphabet=st.characters(codec=None), max_size=8), max_size=6)
arrays: st.SearchStrategy[np.ndarray[Any, Any]] = st.sampled_from(
    [np.int8, np.uint16, np.int32, np.int64, np.float64, np.bool_]
).flatmap(
    lambda dtype: st.lists(st.integers(-100, 100), max_size=7).map(
        lambda items: np.array(items).astype(dtype)
    )
)


def round_trip(value: object, cold: dict[str, tuple[str, ...]] | None = None) -> Any:
    """value encoded, written to a summary file, read back and decoded (hot and cold)."""
    sink = Sink(cold)
    layout = encode(value, sink)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "summary"
        with open(path, "wb") as handle:
            summary_file.write(handle, {"layout": layout}, sink.arrays)
        with summary_file.open_summary(path) as handle:
            meta, hot = summary_file.read(handle)
            cold_arrays = summary_file.read_cold(handle, meta)
    assert all(key.startswith("a") for key in hot) and all(k[0] == "c" for k in cold_arrays)
    return decode(meta["layout"], hot | cold_arrays, CODEC_RECORDS)


@given(arrays, texts, st.lists(arrays, max_size=3), st.integers(-(2**40), 2**40))
def test_a_tree_of_records_and_arrays_comes_back_equal(
    values: np.ndarray[Any, Any], words: list[str | None], parts: list[Any], number: int
) -> None:
    text_array = np.array([*words, "x"], dtype=object)[:-1]
    value = Outer(Inner(values, text_array), tuple(parts), None, number)
    back = round_trip(value, {"Inner": ("values",)})  # Inner's texts cold, the rest hot
    assert type(back) is Outer and back.number == number and back.missing is None
    assert back.inner.values.dtype == values.dtype
    np.testing.assert_array_equal(back.inner.values, values)
    assert back.inner.texts.dtype == object and list(back.inner.texts) == words
    assert len(back.parts) == len(parts)
    for got, want in zip(back.parts, parts, strict=True):
        assert got.dtype == want.dtype and np.array_equal(got, want)


def test_a_command_line_that_is_not_utf8_comes_back_as_it_went_in() -> None:
    text = b"/usr/bin/caf\xe9 --x".decode("utf-8", "surrogateescape")
    assert list(round_trip(np.array([text, "\ud800"], dtype=object))) == [text, "\ud800"]


def test_a_reader_batch_frame_comes_back_with_its_dtypes(tmp_path: Path) -> None:
    generate_dumps(tmp_path, snapshots=6, processes=10, seed=3)
    (batch,) = Reader(SYSTEM_SPEC, warn_none).batches(
        find_sources(tmp_path, SYS_PREFIX, TimeWindow())
    )
    back = round_trip(batch.frame)
    pd.testing.assert_frame_equal(back, batch.frame, check_exact=True, check_categorical=True)
    assert back["boot_id"].cat.categories.dtype == batch.frame["boot_id"].cat.categories.dtype


def test_a_layout_of_another_shape_is_refused_not_misread() -> None:
    sink = Sink()
    layout = encode(Inner(np.arange(3), None), sink)
    stored = sink.arrays
    layout["fields"] = {"values": layout["fields"]["values"]}
    with pytest.raises(CodecError):
        decode(layout, stored, CODEC_RECORDS)
    with pytest.raises(CodecError):
        decode({"t": "array", "key": "gone"}, stored, CODEC_RECORDS)


# --- Reading with summaries ------------------------------------------------------------


def warn_none(path: Path, reason: str) -> None:
    raise AssertionError(f"unexpected warning {path}: {reason}")


class Run(NamedTuple):
    records: ProcessRecords
    warnings: list[str]
    notes: list[str]
    raw_days: list[date]  # the days read from the snapshots


def run(
    dumps: Path,
    folder: Path | None,
    window: TimeWindow = TimeWindow(),  # noqa: B008 (immutable)
    today: date = TODAY,
    code: str | None = None,
) -> Run:
    sources = find_sources(dumps, PROCESS_PREFIX, window)
    records = ProcessRecords(None, 2)
    warnings: list[str] = []
    notes: list[str] = []
    raw_days: list[date] = []

    def warn(path: Path, reason: str) -> None:
        warnings.append(f"{path.relative_to(dumps)}: {reason}")

    def read(files: Sequence[Source], say: Warn, progress: Any) -> Iterator[BatchRuns]:
        raw_days.extend(sorted({plan.day for plan in plan_days(files, TimeWindow(), TODAY)}))
        return Reader(PROCESS_SPEC, say, progress, batch_bytes=20_000).reduced(
            files, records.reduce
        )

    store = None
    if folder is not None:
        store = SummaryStore(folder, PROCESS_PREFIX, {"level": 2}, RECORDS, dumps, notes.append)
        store.code = code or store.code
    plans = plan_days(sources, window, today)
    for runs in read_by_day(plans, DayReading(read, day_of_runs, warn, None, store)):
        records.add(runs)
    return Run(records, warnings, notes, raw_days)


def test_a_first_run_lets_go_of_each_day_once_its_summary_is_written(
    dumps: Path, tmp_path: Path
) -> None:
    """A first run over a year must not hold a year of batches: once a day's summary is
    written, nothing in the reading keeps that day's batches alive."""
    records = ProcessRecords(None, 2)
    store = SummaryStore(tmp_path, PROCESS_PREFIX, {"level": 2}, RECORDS, dumps, print)

    def read(files: Sequence[Source], say: Warn, progress: Any) -> Iterator[BatchRuns]:
        return Reader(PROCESS_SPEC, say, progress, batch_bytes=20_000).reduced(
            files, records.reduce
        )

    plans = plan_days(find_sources(dumps, PROCESS_PREFIX, TimeWindow()), TimeWindow(), TODAY)
    alive: dict[date, list[weakref.ref[Any]]] = {}
    reading = DayReading(read, day_of_runs, warn_none_but_the_bad_file, None, store)
    for runs in read_by_day(plans, reading):
        day = day_of_runs(runs)
        held = [
            earlier
            for earlier, refs in alive.items()
            if earlier < day and any(ref() is not None for ref in refs)
        ]
        assert held == []
        alive.setdefault(day, []).append(weakref.ref(runs.read))
    assert len(alive) == len(days_kept(tmp_path)) == 4


def days_kept(folder: Path) -> list[str]:
    """The days of the summaries in a folder (`process_mem_day_<YYYYMMDD>_<key>.summary`)."""
    return sorted(path.name.split("_")[3] for path in folder.iterdir())


def day_of_runs(runs: BatchRuns) -> date:
    return datetime.utcfromtimestamp(int(runs.read[0])).date()


def plain(values: np.ndarray[Any, Any]) -> list[Any]:
    """Values as a list, NaN as None (NaN is not equal to itself)."""
    if values.dtype.kind == "f":
        return [None if np.isnan(value) else value for value in values.tolist()]
    return list(values.tolist())


def folded(records: ProcessRecords) -> list[Any]:
    """Everything the analyses ask of the fold, as plain lists."""
    table = records.instances()
    totals = records.group_totals()
    records.read_rows_of(table.pid)  # each batch read once for every PID asked below
    return [
        [column.tolist() for column in table],
        [column.tolist() for column in records.floors()],
        [column.tolist() for column in records.foot_floors()],
        [list(totals.names), *(column.tolist() for column in totals[1:4])],
        [column.tolist() for column in totals.rows_between(0, records.snapshots_read)],
        records.commands,
        records.times.tolist(),
        [[plain(column) for column in records.pid_memory(pid)] for pid in sorted(set(table.pid))],
        records.instance_count,
    ]


@pytest.fixture(scope="module")
def dumps(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three days and a bit at 10 minutes, a PID reused, an outage, and a bad file."""
    folder = tmp_path_factory.mktemp("dumps")
    generate_dumps(folder, snapshots=440, processes=40, seed=11, start=START, outage=(150, 20))
    (folder / "process_mem_20260102_120500.csv").write_text("PID,RSS_MB\n1,x\n", "utf-8")
    return folder


def test_summaries_give_what_the_snapshots_give(dumps: Path, tmp_path: Path) -> None:
    plain = run(dumps, None)
    first = run(dumps, tmp_path / "s")
    second = run(dumps, tmp_path / "s")
    assert folded(first.records) == folded(second.records) == folded(plain.records)
    assert first.warnings == second.warnings == plain.warnings
    assert len(plain.warnings) == 1 and "120500" in plain.warnings[0]
    assert first.raw_days == [date(2026, 1, d) for d in (1, 2, 3, 4)]
    assert second.raw_days == []  # every day is closed: all came from the summaries
    assert days_kept(tmp_path / "s") == ["20260101", "20260102", "20260103", "20260104"]
    assert first.notes == second.notes == []


def test_today_and_a_window_that_cuts_a_day_are_read_from_the_snapshots(
    dumps: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "s"
    run(dumps, folder, today=date(2026, 1, 4))  # the 4th is today: not kept
    assert days_kept(folder) == ["20260101", "20260102", "20260103"]
    window = TimeWindow(since=datetime(2026, 1, 2, 6, 0))
    again = run(dumps, folder, window)
    assert again.raw_days == [date(2026, 1, 2), date(2026, 1, 4)]
    assert folded(again.records) == folded(run(dumps, None, window).records)


def test_a_changed_day_is_read_again_and_its_summary_replaced(dumps: Path, tmp_path: Path) -> None:
    copy = tmp_path / "d"
    shutil.copytree(dumps, copy)
    folder = tmp_path / "s"
    run(copy, folder)
    late = copy / "process_mem_20260102_120700.csv"  # a late file
    shutil.copy(copy / "process_mem_20260102_121000.csv", late)
    gone = copy / "process_mem_20260103_010000.csv"  # a removed one
    gone.unlink()
    touched = copy / "process_mem_20260101_230000.csv"  # rewritten, same size
    os.utime(touched, ns=(0, 10**18))
    again = run(copy, folder)
    assert again.raw_days == [date(2026, 1, 1), date(2026, 1, 2), date(2026, 1, 3)]
    assert folded(again.records) == folded(run(copy, None).records)
    assert run(copy, folder).raw_days == []


def test_a_day_compacted_into_a_bundle_is_read_again(dumps: Path, tmp_path: Path) -> None:
    copy = tmp_path / "d"
    shutil.copytree(dumps, copy)
    folder = tmp_path / "s"
    before = run(copy, folder)
    bundle_day(copy, "20260102")
    again = run(copy, folder)
    assert again.raw_days == [date(2026, 1, 2)]
    assert folded(again.records) == folded(before.records)
    # The bad file is named as a member of the bundle now, as a run without summaries names it.
    assert again.warnings == run(copy, None).warnings != before.warnings


def crafted(meta: object) -> bytes:
    """A summary file whose meta is `meta` (JSON text as it is, or an object)."""
    text = (meta if isinstance(meta, str) else json.dumps(meta)).encode()
    return summary_file.MAGIC + b"%016x\n" % len(text) + text


DAMAGES: dict[str, Callable[[bytes], bytes]] = {
    "cut": lambda data: data[: len(data) // 2],
    "cold-cut": lambda data: data[:-8],  # only the end of the rows: found when opened
    "garbage": lambda data: data[:100] + bytes(200) + data[300:],
    "empty": lambda data: b"",
    # Crafted: a length past the file, a part of 2**62 bytes, arrays as a list, JSON nested
    # past Python's recursion limit, a meta that is no object.
    "long-meta": lambda data: summary_file.MAGIC + b"7fffffffffffffff\n",
    "huge-part": lambda data: crafted({"hot": [0, 2**62, 0], "cold": [0, 0, 0], "arrays": {}}),
    "arrays-list": lambda data: crafted({"hot": [0, 0, 0], "cold": [0, 0, 0], "arrays": []}),
    "deep": lambda data: crafted("[" * 100_000 + "]" * 100_000),
    "not-object": lambda data: crafted([1, 2]),
}


class FirstRun(NamedTuple):
    folder: Path  # the summaries it wrote, to copy
    folded: list[Any]
    warnings: list[str]


@pytest.fixture(scope="module")
def first_run(dumps: Path, tmp_path_factory: pytest.TempPathFactory) -> FirstRun:
    """A first run over `dumps`: the summaries it wrote and what it folded."""
    folder = tmp_path_factory.mktemp("first") / "s"
    plain = run(dumps, folder)
    return FirstRun(folder, folded(plain.records), plain.warnings)


@pytest.mark.parametrize("damage", [*DAMAGES, "other-code"])
def test_a_damaged_summary_is_recomputed_with_one_line(
    dumps: Path, tmp_path: Path, first_run: FirstRun, damage: str
) -> None:
    folder = tmp_path / "s"
    shutil.copytree(first_run.folder, folder)
    for path in sorted(folder.iterdir())[:2]:
        if damage in DAMAGES:
            path.write_bytes(DAMAGES[damage](path.read_bytes()))
    again = run(dumps, folder, code="another" if damage == "other-code" else None)
    assert folded(again.records) == first_run.folded
    assert again.warnings == first_run.warnings
    if damage == "other-code":
        assert again.notes == [] and len(again.raw_days) == 4
    else:
        (note,) = again.notes
        assert note.startswith(f"warning: {folder}: summary process_mem_day_20260101_")
        assert note.endswith("and 1 more could not be read; recomputed from the snapshots")
        assert again.raw_days == [date(2026, 1, 1), date(2026, 1, 2)]
    assert run(dumps, folder, code="another" if damage == "other-code" else None).raw_days == []


def test_a_fifo_or_another_users_summary_is_never_read(dumps: Path, tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("giving a file to another user needs root")
    folder = tmp_path / "s"
    plain = run(dumps, folder)
    first, second = sorted(folder.iterdir())[:2]
    first.unlink()
    os.mkfifo(first)  # opened without O_NONBLOCK, it would hang the run
    os.chown(second, 65534, 65534)  # nobody's: a cache others could have fed
    again = run(dumps, folder)
    assert folded(again.records) == folded(plain.records)
    (note,) = again.notes
    assert "not a regular file" in note and note.endswith(
        "and 1 more could not be read;" " recomputed from the snapshots"
    )
    assert again.raw_days == [date(2026, 1, 1), date(2026, 1, 2)]


def test_a_day_that_could_not_be_read_whole_is_not_kept(tmp_path: Path) -> None:
    # Permission denied or an I/O error may pass: keeping what that read left out would
    # freeze the gap into every later run.
    store = SummaryStore(tmp_path, PROCESS_PREFIX, {}, RECORDS, tmp_path, print)
    plan = DayPlan(date(2026, 1, 1), (), "fingerprint")
    passing = (tmp_path / "process_mem_20260101_000000.csv", "cannot read: Permission denied")
    store.save(plan, DaySummary([], [passing]))
    assert list(tmp_path.iterdir()) == []
    store.save(plan, DaySummary([], [(passing[0], "no PID column; skipped")]))
    (kept,) = tmp_path.iterdir()
    assert oct(kept.stat().st_mode & 0o777) == oct(0o640)  # command lines: as private as dumps


def test_a_folder_that_cannot_be_written_is_said_once_and_changes_nothing(
    dumps: Path, tmp_path: Path
) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("")
    again = run(dumps, blocked / "s")
    assert folded(again.records) == folded(run(dumps, None).records)
    (note,) = again.notes
    assert note.startswith(f"day summaries are not kept: cannot write {blocked / 's'}: ")


def test_no_temporary_file_is_left_and_no_summary_is_half_written(
    dumps: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "s"
    calls = 0
    real = summary_file.write

    def failing(handle: Any, meta: Any, arrays: Any) -> None:
        nonlocal calls
        calls += 1
        if calls == 2:
            handle.write(summary_file.MAGIC)
            raise OSError(28, "No space left on device")
        real(handle, meta, arrays)

    monkeypatch.setattr(summary_file, "write", failing)
    notes = run(dumps, folder).notes
    assert notes == [f"day summaries are not kept: cannot write {folder}: No space left on device"]
    assert [p.name[:25] for p in folder.iterdir()] == ["process_mem_day_20260101_"]


def test_plans_split_sources_by_utc_day_and_fingerprint_closed_whole_days(dumps: Path) -> None:
    sources = find_sources(dumps, PROCESS_PREFIX, TimeWindow())
    plans = plan_days(sources, TimeWindow(until=datetime(2026, 1, 3, 12)), date(2026, 1, 4))
    assert [(plan.day.day, plan.fingerprint is not None) for plan in plans] == [
        (1, True),
        (2, True),
        (3, False),  # cut by the window
        (4, False),  # today
    ]
    assert sum(len(plan.sources) for plan in plans) == len(sources)
    assert isinstance(plans[0], DayPlan) and len(plans[0].sources) == 24


# --- The analyses, with and without summaries ------------------------------------------


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two boots of a host in one dumps dir: three days at 10 minutes with an outage, then a
    reboot (new boot_id, the same PIDs reused by other processes) and a day and a half at 2
    minutes; short-lived processes come and go throughout; a service in its cgroup, leaking
    toward its limit; one day compacted into a bundle, and two bad files."""
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
    (dumps / "sys_mem_20260103_120500.csv").write_text("MemTotal_MB\n-1\n", "utf-8")
    (dumps / "cgroup_mem_20260104_120500.csv").write_text("CGROUP\n/\n", "utf-8")
    return dumps


def analyses(dumps: Path, out: Path, plots: bool, *flags: str) -> dict[str, Any]:
    """Both analyses' exit status, console, warnings and files (the Prometheus textfile
    without the run's own duration and time)."""
    outcome: dict[str, Any] = {}
    for name, main, extra in (
        ("system", analyze_system.main, ["--alert-pct", "14", "--fail-on-oom"]),
        (
            "processes",
            analyze_processes.main,
            ["--fail-on-leak", "--min-rise", "1", "--min-span", "6h"],
        ),
    ):
        folder = out / name
        prom = out / f"{name}.prom"
        argv = ["--dumps-dir", str(dumps), "--out-dir", str(folder)]
        argv += [] if plots else ["--no-plots"]
        ran = run_main(main, [*argv, *extra, "--prometheus-textfile", str(prom), *flags])
        outcome[name] = (ran.status, ran.stdout.replace(str(out), "OUT"), ran.stderr)
        outcome |= {f"{name}/{p.name}": p.read_bytes() for p in sorted(folder.iterdir())}
        outcome[f"{name}.prom"] = [
            line
            for line in prom.read_text("utf-8").splitlines()
            if not line.startswith(("pmi_analysis_duration", "pmi_analysis_timestamp"))
        ]
    return outcome


@pytest.mark.parametrize(
    "plots", [False, pytest.param(True, marks=pytest.mark.slow)], ids=["answers", "and-plots"]
)
def test_deleting_every_summary_changes_no_answer(host: Path, tmp_path: Path, plots: bool) -> None:
    summaries = ["--summary-dir", str(tmp_path / "s")]
    plain = analyses(host, tmp_path / "plain", plots, "--no-summaries")
    first = analyses(host, tmp_path / "first", plots, *summaries)
    kept = sorted(path.name for path in (tmp_path / "s").iterdir())
    second = analyses(host, tmp_path / "second", plots, *summaries)
    pngs = [name for name in plain if name.endswith(".png")]
    assert len(pngs) > 10 if plots else not pngs
    assert second == first == plain
    assert plain["system"][0] == plain["processes"][0] == 3  # the alerts asked for hold
    assert "sys_mem_20260103_120500.csv" in plain["system"][2]  # the bad file, said each time
    assert plain["processes"][2].count("cgroup_mem_20260104_120500.csv") == 1
    assert "web.service" in plain["processes"][1]
    assert "processes/services.csv" in plain
    # Every closed day of the three kinds, the sys_mem one shared by both analyses (they read
    # the files with one spec), and no temporary file.
    assert len(kept) == 3 * 6 and all(name.endswith(".summary") for name in kept)
    assert not (host / ".summaries").exists()
    assert sorted(path.name for path in (tmp_path / "s").iterdir()) == kept


def test_sys_mem_summaries_the_process_analysis_keeps_are_whole(host: Path, tmp_path: Path) -> None:
    """The process analysis decodes the sys_mem summaries for the OOM fields alone but keeps
    them whole: the system analysis then takes them as they are and answers as from the
    snapshots, and the process analysis answers as it does without them."""
    folder = tmp_path / "s"
    argv = ["--dumps-dir", str(host), "--no-plots", "--summary-dir", str(folder)]
    alone = run_main(analyze_processes.main, [*argv, "--out-dir", str(tmp_path / "alone")])
    made = {p.name: p.stat().st_mtime_ns for p in folder.iterdir() if p.name.startswith(SYS_PREFIX)}
    assert alone.status == 0 and len(made) == 6
    plain = analyses(host, tmp_path / "plain", False, "--no-summaries")
    assert analyses(host, tmp_path / "kept", False, "--summary-dir", str(folder)) == plain
    assert {p: (folder / p).stat().st_mtime_ns for p in made} == made  # used, not rewritten


def fold(dumps: Path, place: SummaryPlace | None) -> ProcessRecords:
    records = ProcessRecords(None, 2)
    reader = Reader(PROCESS_SPEC, warn_none_but_the_bad_file, batch_bytes=20_000)
    sources = find_sources(dumps, PROCESS_PREFIX, TimeWindow())
    for runs in process_runs(sources, records, reader, place):
        records.add(runs)
    return records


def warn_none_but_the_bad_file(path: Path, reason: str) -> None:
    assert path.name == "process_mem_20260102_120500.csv", reason


def test_rows_stay_in_the_summary_until_a_pid_of_theirs_is_asked_for(
    dumps: Path, tmp_path: Path
) -> None:
    place = SummaryPlace(tmp_path / "s", dumps, TimeWindow(), TODAY, print)
    plain, first, second = fold(dumps, None), fold(dumps, place), fold(dumps, place)
    assert {type(chunk).__name__ for chunk in second.chunks} == {"StoredChunk"}
    # The run that wrote the summaries let go of each day's rows once it was written too.
    assert {type(chunk).__name__ for chunk in first.chunks} == {"StoredChunk"}
    assert {type(chunk).__name__ for chunk in plain.chunks} == {"Chunk"}
    stored = [chunk for chunk in second.chunks if isinstance(chunk, StoredChunk)]
    assert all(not chunk._kept for chunk in stored)  # nothing read yet
    table = second.instances()
    short_lived, long_lived = int(table.pid[-1]), int(table.pid[0])
    asked = second.pid_memory(short_lived)
    assert all(not chunk._kept for chunk in stored)  # read, and let go at once
    second.read_rows_of([short_lived, long_lived])
    kept = [sorted(chunk._kept) for chunk in stored]
    # Each batch keeps the rows of the asked PIDs it holds, and no other row.
    assert kept == [
        [pid for pid in sorted({short_lived, long_lived}) if pid in chunk.pids.tolist()]
        for chunk in stored
    ]
    assert 0 < sum(short_lived in pids for pids in kept) < len(stored)
    assert all(long_lived in pids for pids in kept)
    again = second.pid_memory(short_lived)
    assert [column.tolist() for column in again] == [column.tolist() for column in asked]
    assert folded(second) == folded(first) == folded(plain)


def folded_from_summaries(dumps: Path, folder: Path) -> ProcessRecords:
    """The records of a second run, which takes every day from the summaries the first
    run wrote into folder."""
    place = SummaryPlace(folder, dumps, TimeWindow(), TODAY, print)
    fold(dumps, place)
    return fold(dumps, place)


def test_a_summary_replaced_under_a_run_is_one_line_not_wrong_rows(
    dumps: Path, tmp_path: Path
) -> None:
    records = folded_from_summaries(dumps, tmp_path / "s")
    for path in (tmp_path / "s").iterdir():
        shutil.copy(path, tmp_path / "copy")
        (tmp_path / "copy").replace(path)  # the same bytes, but another file now
    with pytest.raises(SummaryChangedError, match="was replaced while it was read"):
        records.pid_memory(int(records.instances().pid[0]))


def test_rows_damaged_on_disk_are_one_line_and_the_summary_goes(
    dumps: Path, tmp_path: Path
) -> None:
    records = folded_from_summaries(dumps, tmp_path / "s")
    for path in (tmp_path / "s").iterdir():  # the rows are last: flip their last bytes
        data = bytearray(path.read_bytes())
        data[-16:-8] = bytes(8)
        path.write_bytes(bytes(data))
        os.utime(path, ns=(0, 0))
    stored = [chunk for chunk in records.chunks if isinstance(chunk, StoredChunk)]
    for chunk in stored:
        chunk.where = replace(chunk.where, identity=chunk_identity(chunk.where.path))
    with pytest.raises(SummaryChangedError, match="damaged; the day summary is deleted, run again"):
        records.pid_memory(int(records.instances().pid[0]))
    assert len(list((tmp_path / "s").iterdir())) < len(stored)


def chunk_identity(path: Path) -> tuple[int, int, int]:
    with summary_file.open_summary(path) as handle:
        return summary_file.identity_of(handle)


@pytest.fixture(scope="module")
def one_summary(dumps: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes]:
    """A process summary as written, and its bytes."""
    folder = tmp_path_factory.mktemp("one")
    run(dumps, folder)
    path = sorted(folder.iterdir())[0]
    return path, path.read_bytes()


@given(st.data())
def test_a_summary_mutated_anywhere_is_read_whole_or_recomputed(
    dumps: Path, one_summary: tuple[Path, bytes], data: st.DataObject
) -> None:
    path, good = one_summary
    at = data.draw(st.integers(0, len(good)), label="at")
    kind = data.draw(st.sampled_from(["cut", "flip", "insert"]), label="kind")
    if kind == "cut":
        bad = good[:at]
    elif kind == "flip":
        bad = (
            good[:at]
            + bytes([good[at % len(good)] ^ data.draw(st.integers(1, 255))])
            + good[at + 1 :]
        )
    else:
        bad = good[:at] + data.draw(st.binary(min_size=1, max_size=64)) + good[at:]
    notes: list[str] = []
    store = SummaryStore(path.parent, PROCESS_PREFIX, {"level": 2}, RECORDS, dumps, notes.append)
    (plan,) = [
        p
        for p in plan_days(find_sources(dumps, PROCESS_PREFIX, TimeWindow()), TimeWindow(), TODAY)
        if p.day == date(2026, 1, 1)
    ]
    assert store.load(plan) is not None  # the file as written is read
    try:
        path.write_bytes(bad)
        loaded = store.load(plan)  # never raises, whatever the bytes
        store.finish()
    finally:
        path.write_bytes(good)
    if loaded is None:
        assert len(notes) <= 1
    else:  # a change the file does not depend on (padding): the same batches come back
        assert len(loaded.results) == len(store.load(plan).results)  # type: ignore[union-attr]


@given(st.lists(st.text(st.characters(codec=None, exclude_categories=()), max_size=8), max_size=10))
def test_texts_decoded_in_one_go_are_the_texts_decoded_one_by_one(items: list[str]) -> None:
    """Any texts (lone surrogates included, as a command line that is not UTF-8 reads back)
    decoded from one blob are what decoding each alone gives."""
    encoded = [item.encode("utf-8", "surrogatepass") for item in items]
    ends = np.cumsum([len(item) for item in encoded], dtype=np.int64).tolist()
    assert _decoded_whole(b"".join(encoded), [0, *ends][:-1], ends) == items


def test_a_text_cut_inside_a_character_is_not_decoded_in_one_go() -> None:
    assert _decoded_whole("é".encode(), [0, 1], [1, 2]) is None
    assert _decoded_whole(b"\xff\xfe", [0], [2]) is None
    assert _decoded_whole(b"ab\xc3\xa9", [0, 2], [2, 7]) is None  # an end past the blob


# The names whose next one sorts before them as text: a9 > a10, a99 > a100, a999 > a1000.
@given(st.lists(st.integers(0, 3), min_size=1001, max_size=1100), st.sampled_from([9, 99, 999]))
@settings(max_examples=20, deadline=None)
def test_arrays_come_back_whatever_their_sizes_and_names(sizes: list[int], empty_at: int) -> None:
    """An empty array lies at the offset of the one written after it: read back, every
    array is found in its place, past the names' text order (a998 after a1000)."""
    lengths = [0 if index == empty_at else size for index, size in enumerate(sizes)]
    arrays = {
        f"a{index}": np.arange(length, dtype=np.int16) for index, length in enumerate(lengths)
    }
    data = io.BytesIO()
    summary_file.write(data, {"layout": {}}, arrays)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "s.summary"
        path.write_bytes(data.getvalue())
        with summary_file.open_summary(path) as handle:
            _, hot = summary_file.read(handle)
    assert hot.keys() == arrays.keys()
    for key, want in arrays.items():
        np.testing.assert_array_equal(hot[key], want)
