"""The days read in worker processes: what one process reads, in the same order, whatever a
worker does (dies, fails), and no worker left behind when the analysis is stopped."""

from __future__ import annotations

import itertools
import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from synthetic_services import ServiceShape, add_cgroup_files

import analyze_processes
from conftest import bundle_day, run_main, script_path
from synthetic import generate_dumps
from utils.parser import (
    CGROUP_PREFIX,
    PROCESS_PREFIX,
    SYS_PREFIX,
    Bundle,
    DumpFile,
    Source,
    TimeWindow,
    find_sources,
)
from utils.read.cgroup_specs import CGROUP_SPEC
from utils.read.csv_batches import Batch
from utils.read.day_workers import (
    MAX_DEFAULT_WORKERS,
    DayWorkers,
    days_of,
    default_read_workers,
    estimated_bytes,
    usable_cores,
)
from utils.read.snapshot_specs import PROCESS_SPEC, SYSTEM_SPEC
from utils.read.threaded_reader import Reader, TableSpec
from utils.reduce.batch_runs import BatchRuns, reduce_batch
from utils.reduce.process_records import ProcessRecords

START = datetime(2026, 1, 1, 20, 0)
# The process the tests run in: a worker is any other.
PARENT_PID = os.getpid()
BAD_DAY = date(2026, 1, 3)
needs_two_cores = pytest.mark.skipif(
    usable_cores() < 2, reason="workers are capped at one per usable core: this process has one"
)


@pytest.fixture(scope="module")
def dumps(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four days and a bit at 10 minutes, an outage, a day compacted into a bundle, a service
    in its cgroup, and bad files on three days (one a whole day's only bad one)."""
    folder = tmp_path_factory.mktemp("dumps")
    generate_dumps(folder, snapshots=600, processes=30, seed=3, start=START, outage=(150, 20))
    add_cgroup_files(folder, [ServiceShape("web.service", anon_mb_per_day=300, limit_mb=4000)])
    bundle_day(folder, "20260102")
    (folder / "process_mem_20260103_120500.csv").write_text("PID,RSS_MB\n1,x\n", "utf-8")
    (folder / "process_mem_20260104_000500.csv").write_bytes(b"\xff\xfe")
    (folder / "sys_mem_20260103_120500.csv").write_text("MemTotal_MB\n-1\n", "utf-8")
    (folder / "cgroup_mem_20260104_120500.csv").write_text("CGROUP\n/\n", "utf-8")
    return folder


def read(
    spec: TableSpec, sources: Sequence[Source], workers: DayWorkers | None, reduce: Any
) -> tuple[list[Any], list[tuple[Path, str]], list[tuple[int, int]]]:
    """Everything a reader hands on: results, warnings and progress, in order."""
    warnings: list[tuple[Path, str]] = []
    progress: list[tuple[int, int]] = []
    reader = Reader(spec, lambda p, r: warnings.append((p, r)), lambda d, t: progress.append((d, t)),
                    batch_bytes=20_000, workers=workers)  # fmt: skip
    return list(reader.reduced(sources, reduce)), warnings, progress


def same_batches(ours: list[Batch], theirs: list[Batch]) -> bool:
    return len(ours) == len(theirs) and all(
        a.frame.equals(b.frame) and (a.snapshot == b.snapshot).all()
        for a, b in zip(ours, theirs, strict=True)
    )


def folded(runs: list[BatchRuns]) -> list[Any]:
    records = ProcessRecords(None, 2)
    for each in runs:
        records.add(each)
    table = records.instances()
    records.read_rows_of(table.pid)
    return [
        [column.tolist() for column in table],
        [column.tolist() for column in records.floors()],
        records.commands,
        records.times.tolist(),
        [[plain(part) for part in records.pid_memory(pid)] for pid in sorted(set(table.pid))],
    ]


def plain(values: Any) -> list[Any]:
    """Values as a list, NaN as None (NaN is not equal to itself)."""
    listed: list[Any] = values.tolist()
    return [None if isinstance(value, float) and math.isnan(value) else value for value in listed]


def reduce_runs(batch: Batch) -> BatchRuns:
    return reduce_batch(batch, None, 2)


def same_batch(batch: Batch) -> Batch:
    return batch


@needs_two_cores
@pytest.mark.parametrize(
    ("prefix", "spec"),
    [(PROCESS_PREFIX, PROCESS_SPEC), (SYS_PREFIX, SYSTEM_SPEC), (CGROUP_PREFIX, CGROUP_SPEC)],
)
def test_workers_hand_on_what_one_process_reads_in_its_order(
    dumps: Path, prefix: str, spec: TableSpec
) -> None:
    sources = find_sources(dumps, prefix, TimeWindow())
    notes: list[str] = []
    reduce = reduce_runs if prefix == PROCESS_PREFIX else same_batch
    alone = read(spec, sources, None, reduce)
    with DayWorkers(2, notes.append) as workers:
        assert workers.count == 0  # forked at the first read of several days
        shared = read(spec, sources, workers, reduce)
        assert workers.count == 2
    if prefix == PROCESS_PREFIX:
        assert folded(shared[0]) == folded(alone[0])
        assert [runs.read.tolist() for runs in shared[0]] == [r.read.tolist() for r in alone[0]]
    else:
        assert same_batches(shared[0], alone[0])
    assert shared[1] == alone[1] and len(alone[1]) in (1, 2)  # the bad files, said once each
    assert shared[2][-1] == alone[2][-1] == (len(sources), len(sources))
    assert notes == []


def dies_on_the_bad_day(batch: Batch) -> BatchRuns:
    """Reduces the batch; in a worker, killed outright on BAD_DAY."""
    day = datetime.fromtimestamp(int(batch.snapshot[0]), UTC).date()
    if day == BAD_DAY and os.getpid() != PARENT_PID:
        os.kill(os.getpid(), signal.SIGKILL)
    return reduce_runs(batch)


@needs_two_cores
@pytest.mark.slow
def test_a_worker_that_dies_is_one_line_and_its_days_are_read_here(dumps: Path) -> None:
    sources = find_sources(dumps, PROCESS_PREFIX, TimeWindow())
    notes: list[str] = []
    alone = read(PROCESS_SPEC, sources, None, reduce_runs)
    with DayWorkers(2, notes.append) as workers:
        shared = read(PROCESS_SPEC, sources, workers, dies_on_the_bad_day)
        assert workers.count == 1  # the other goes on reading the days after
    assert folded(shared[0]) == folded(alone[0])
    assert shared[1] == alone[1]
    assert notes == ["a reading worker ended (signal 9); its days are read in the main process"]


def fails_on_the_bad_day(batch: Batch) -> BatchRuns:
    if datetime.fromtimestamp(int(batch.snapshot[0]), UTC).date() == BAD_DAY:
        raise ValueError(f"no batch of {BAD_DAY} in {os.getpid() == PARENT_PID}")
    return reduce_runs(batch)


@needs_two_cores
@pytest.mark.slow
def test_a_day_that_fails_in_a_worker_fails_here_as_it_does_alone(dumps: Path) -> None:
    """A failure in a worker is not hidden: the day is read again here, and what it raises
    is raised here, with its own traceback."""
    sources = find_sources(dumps, PROCESS_PREFIX, TimeWindow())
    with pytest.raises(ValueError, match="True"):
        read(PROCESS_SPEC, sources, None, fails_on_the_bad_day)
    notes: list[str] = []
    with DayWorkers(2, notes.append) as workers, pytest.raises(ValueError, match="True"):
        read(PROCESS_SPEC, sources, workers, fails_on_the_bad_day)
    assert notes == []


def test_one_worker_one_core_or_one_day_reads_in_this_process(dumps: Path) -> None:
    sources = find_sources(dumps, SYS_PREFIX, TimeWindow())
    one_day = days_of(sources)[1]
    for count, files, started in ((1, sources, 0), (1000, one_day, 0), (1000, sources, None)):
        with DayWorkers(count, print) as workers:
            read(SYSTEM_SPEC, files, workers, same_batch)
            cores = usable_cores()
            assert workers.count == (started if started is not None else cores * (cores > 1))
        assert workers.count == 0  # ended on the way out


@needs_two_cores
def test_a_read_under_min_bytes_forks_no_worker(dumps: Path) -> None:
    """The default's workers read only a large read: the estimate is near the files' own
    sizes (the bundle's counted as its decompressed members), and decides."""
    sources = find_sources(dumps, PROCESS_PREFIX, TimeWindow())
    loose = [source for source in sources if not isinstance(source, Bundle)]
    total = sum(source.path.stat().st_size for source in loose)
    estimate = estimated_bytes(loose)
    assert total / 2 < estimate < total * 2
    assert estimated_bytes([]) == 0
    for min_bytes, started in ((estimate * 2, False), (estimate / 2, True)):
        with DayWorkers(2, print, min_bytes) as workers:
            read(PROCESS_SPEC, loose, workers, same_batch)
            assert (workers.count == 2) is started


moments = st.lists(
    st.integers(0, 10 * 24 * 60).map(lambda minute: START + timedelta(minutes=minute)),
    max_size=40,
).map(sorted)


@given(moments, st.sets(st.integers(0, 10), max_size=3))
def test_days_cut_the_sources_at_each_utc_day(stamps: list[datetime], bundled: set[int]) -> None:
    sources: list[Source] = []
    for stamp in stamps:
        day = stamp.date()
        if (day - START.date()).days in bundled:
            if not (sources and isinstance(sources[-1], Bundle) and sources[-1].day == day):
                sources.append(Bundle(Path(f"mem_{day:%Y%m%d}.tar.xz"), day, "x", TimeWindow(), ()))
            continue
        sources.append(DumpFile(Path(f"process_mem_{stamp:%Y%m%d_%H%M%S}.csv"), stamp))
    days = days_of(sources)
    assert [source for day in days for source in day] == sources
    day_of = [{s.day if isinstance(s, Bundle) else s.timestamp.date() for s in d} for d in days]
    assert all(len(each) == 1 for each in day_of)
    assert all(a != b for a, b in itertools.pairwise(day_of))


@needs_two_cores
@pytest.mark.slow
def test_the_analysis_says_and_draws_the_same_with_workers(dumps: Path, tmp_path: Path) -> None:
    """Console, warnings, exit status, CSVs and PNGs byte for byte, one process or two."""
    outcome = []
    for count in ("1", "2"):
        out = tmp_path / count
        argv = ["--dumps-dir", str(dumps), "--out-dir", str(out), "--no-summaries", "--top", "5"]
        ran = run_main(analyze_processes.main, [*argv, "--min-span", "6h", "--fail-on-leak",
                                                 "--read-workers", count])  # fmt: skip
        files = {path.name: path.read_bytes() for path in sorted(out.iterdir())}
        outcome.append((ran.status, ran.stdout.replace(str(out), "OUT"), ran.stderr, files))
    assert outcome[0] == outcome[1]
    assert outcome[0][0] == 3 and "web.service" in outcome[0][1]
    assert sum(name.endswith(".png") for name in outcome[0][3]) > 5


def test_read_workers_must_be_a_positive_count(dumps: Path, tmp_path: Path) -> None:
    argv = ["--dumps-dir", str(dumps), "--out-dir", str(tmp_path), "--read-workers", "0"]
    with pytest.raises(SystemExit) as stopped:
        run_main(analyze_processes.main, argv)
    assert stopped.value.code == 2


def children_of(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        found += [int(child) for child in task.read_text().split()]
    return found


def alive(pid: int) -> bool:
    """The process exists and is no zombie."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@needs_two_cores
@pytest.mark.slow
@pytest.mark.parametrize(
    ("signum", "status"), [(signal.SIGTERM, 143), (signal.SIGINT, 130), (signal.SIGKILL, -9)]
)
def test_a_stopped_analysis_leaves_no_worker(
    dumps: Path, tmp_path: Path, signum: signal.Signals, status: int
) -> None:
    """Stopped while its workers read (or killed outright), the analysis exits as a stopped
    analysis does, and its workers are gone within a moment."""
    command = [sys.executable, str(script_path("analyze_processes.py")), "--dumps-dir",
               str(dumps), "--out-dir", str(tmp_path), "--no-summaries", "--read-workers", "2"]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    workers: list[int] = []
    while len(workers) < 2 and time.monotonic() < deadline and process.poll() is None:
        workers = children_of(process.pid)
        time.sleep(0.01)
    assert len(workers) >= 2, "the workers never started"
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == status, stderr
    assert b"Traceback" not in stderr
    deadline = time.monotonic() + 5
    while any(alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(alive(pid) for pid in workers)


def test_the_default_counts_the_cores_this_process_may_use_up_to_its_cap() -> None:
    """A container's cpuset (here taskset's affinity mask) narrows the cores the workers may
    take, and a host of many cores still gets at most the cap."""
    code = (
        "import os; os.sched_setaffinity(0, {min(os.sched_getaffinity(0))});"
        " from utils.read.day_workers import usable_cores, default_read_workers;"
        " print(usable_cores(), default_read_workers())"
    )
    pinned = subprocess.run(
        [sys.executable, "-c", code],
        cwd=Path(__file__).parent.parent / "scripts",
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert pinned.stdout.split() == ["1", "1"]
    assert usable_cores() == len(os.sched_getaffinity(0))
    assert default_read_workers() == min(usable_cores(), MAX_DEFAULT_WORKERS)
