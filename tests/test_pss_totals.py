"""Program totals in PSS: shares read, carried forward, carried back to before a process's
first read, across batches and day summaries; a program with a row that has no share keeps
anon + swap for its whole series. Exact answers from hand-written dumps."""

from __future__ import annotations

import csv
import tempfile
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import analyze_processes
from conftest import run_main
from utils.collect.snapshot_format import (
    PROCESS_HEADER,
    PSS_EXTRA,
    TIMESTAMP_FORMAT,
    csv_text,
    snapshot_names,
)
from utils.judge.breakdown import day_period
from utils.judge.program_growth import ProgramFindings, ProgramGrowth, program_series
from utils.outputs.process_console import format_programs
from utils.outputs.report_tables import program_blocks
from utils.parser import PROCESS_PREFIX, TimeWindow, find_sources
from utils.read.snapshot_specs import PROCESS_SPEC
from utils.read.threaded_reader import Reader
from utils.reduce.group_totals import GroupRows, RowsSource
from utils.reduce.process_records import ProcessRecords
from utils.reduce.pss_totals import BASIS_CARRIED, BASIS_PSS

START = datetime(2026, 1, 5, 23, 57)
STEP = timedelta(minutes=1)
# (pid, ppid, command, anon MiB, started) of each process, and its PSS per snapshot (None:
# not read). The pool's parent and two workers share; "db" is never read; "web" has one
# worker never read (another user's, to a collector that is not root).
PROCESSES: list[tuple[int, int, str, float, str]] = [
    (10, 1, "pool: master", 300.0, "2026-01-05 20:00:00.00"),
    (11, 10, "pool: worker", 300.0, "2026-01-05 20:00:01.00"),
    (12, 10, "pool: worker", 300.0, "2026-01-05 20:00:02.00"),
    (20, 1, "db", 80.0, "2026-01-05 20:00:03.00"),
    (30, 1, "web", 50.0, "2026-01-05 20:00:04.00"),
    (31, 30, "web", 50.0, "2026-01-05 20:00:05.00"),
]
SHARES: dict[int, list[tuple[float, float] | None]] = {
    10: [(100.0, 0.0), None, None, (90.0, 0.0), None, None],
    11: [None, (50.0, 0.0), None, (45.0, 0.0), None, None],
    12: [None, None, (40.0, 2.0), (44.0, 0.0), None, (30.0, 0.0)],
    20: [None] * 6,
    30: [(20.0, 0.0)] * 6,
    31: [None] * 6,
}
# Read, carried back (11 and 12 before their first read), carried forward.
POOL_TOTALS = [192.0, 192.0, 192.0, 179.0, 179.0, 165.0]
STAMPS = [(START + STEP * n).strftime(TIMESTAMP_FORMAT) for n in range(6)]


def write_dumps(folder: Path, with_pss: bool = True) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    header = PROCESS_HEADER if with_pss else PROCESS_HEADER[: -len(PSS_EXTRA)]
    for number, stamp in enumerate(STAMPS):
        rows = []
        for pid, ppid, cmd, anon, started in PROCESSES:
            share = SHARES[pid][number]
            row = [str(pid), str(ppid), "root", f"{anon + 5:.3f}", "900.000", cmd]
            row += [f"{anon:.3f}", "0.000", started, ""]  # CGROUP: none mounted
            if with_pss:
                row += ["", ""] if share is None else [f"{share[0]:.3f}", f"{share[1]:.3f}"]
            rows.append(row)
        (folder / snapshot_names(stamp)[1]).write_text(csv_text(header, rows), encoding="utf-8")
    return folder


def fold(dumps: Path, batch_bytes: int) -> ProcessRecords:
    records = ProcessRecords(None, 2)

    def warn(path: Path, reason: str) -> None:
        raise AssertionError(f"{path}: {reason}")

    reader = Reader(PROCESS_SPEC, warn, None, batch_bytes=batch_bytes)
    for runs in reader.reduced(find_sources(dumps, PROCESS_PREFIX, TimeWindow()), records.reduce):
        records.add(runs)
    return records


def series(records: ProcessRecords) -> dict[str, tuple[str | None, list[float]]]:
    """Per program: its basis (None: not PSS) and its total per snapshot."""
    totals, bases = records.pss.applied(records.group_totals())
    found: dict[str, tuple[str | None, list[float]]] = {}
    rows = totals.rows_between(0, records.snapshots_read - 1)
    for code, name in enumerate(totals.names):
        values = [0.0] * records.snapshots_read
        for rank, group, total in zip(*rows, strict=True):
            if group == code:
                values[int(rank)] += total / 1000
        found[name] = (bases[code], values)
    return found


@pytest.mark.parametrize("batch_bytes", [1, 1 << 20])
def test_shares_read_and_carried_count_the_pool_once(tmp_path: Path, batch_bytes: int) -> None:
    # One file per batch or all in one: the shares carry across batches the same.
    found = series(fold(write_dumps(tmp_path), batch_bytes))
    assert found["pool"] == (BASIS_CARRIED, POOL_TOTALS)
    # Never read: anon + swap, as before.
    assert found["db"] == (None, [80.0] * 6)
    # A worker never read: the whole series stays anon + swap, never a mix.
    assert found["web"] == (None, [100.0] * 6)


def test_every_row_read_is_plain_pss(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for pid in (10, 11, 12):
        monkeypatch.setitem(SHARES, pid, [(10.0 * pid, 1.0)] * 6)
    found = series(fold(write_dumps(tmp_path), 1))
    assert found["pool"] == (BASIS_PSS, [333.0] * 6)


def test_dumps_without_pss_are_untouched(tmp_path: Path) -> None:
    records = fold(write_dumps(tmp_path, with_pss=False), 1 << 20)
    totals = records.group_totals()
    applied, bases = records.pss.applied(totals)
    assert applied is totals and set(bases) == {None}
    assert series(records)["pool"] == (None, [900.0] * 6)


def program_rows(out: Path) -> dict[str, dict[str, Any]]:
    with (out / "program_growth.csv").open(encoding="utf-8") as handle:
        return {row["program"]: row for row in csv.DictReader(handle)}


@pytest.mark.slow
def test_shares_carry_across_days_through_the_summaries(tmp_path: Path) -> None:
    # The snapshots run from 23:57 to 00:02: the last three, on the next day, carry the
    # shares read the day before, whether that day is read raw or from its summary.
    dumps = write_dumps(tmp_path / "dumps")
    summaries = tmp_path / "summaries"
    outputs = []
    for run in range(2):
        out = tmp_path / f"out{run}"
        argv = ["--dumps-dir", str(dumps), "--out-dir", str(out), "--no-plots"]
        result = run_main(analyze_processes.main, [*argv, "--summary-dir", str(summaries)])
        assert result.status == 0, result.stderr
        outputs.append(program_rows(out))
    assert list(summaries.iterdir())  # the first day was summarized, and read back
    assert outputs[0] == outputs[1]
    pool = outputs[0]["pool"]
    assert pool["basis"] == BASIS_CARRIED
    assert float(pool["first_total_MB"]) == pytest.approx(192.0)
    assert outputs[0]["web"]["basis"] == "anon+swap"


def findings(*bases: str) -> ProgramFindings:
    day = datetime(2026, 1, 5)
    programs = [
        ProgramGrowth(f"p{n}", n, 3, 3, 100.0, 150.0 + n, f"p{n} --serve", basis)
        for n, basis in enumerate(bases)
    ]
    return ProgramFindings(
        day_period(day), day_period(day + timedelta(days=1)), "program", programs
    )


def test_the_console_and_the_report_name_each_totals_basis() -> None:
    lines = format_programs(findings(BASIS_PSS, "anon+swap", BASIS_CARRIED))
    assert lines[2].split()[-3:] == ["basis", "for", "example"]
    assert [line.split("  ")[-2].strip() for line in lines[3:6]] == [
        BASIS_PSS,
        "anon+swap",
        BASIS_CARRIED,
    ]
    assert lines[-1] == (
        "Totals by basis: pss = PSS: shared pages counted once; pss carried = PSS: shared pages"
        " counted once, some shares carried from another snapshot; anon+swap = anon + swap:"
        " pages shared by forked processes counted in each"
    )
    blocks = program_blocks(findings(BASIS_PSS, "anon+swap"))
    assert len(blocks) == 3 and "PSS: shared pages counted once" in str(blocks[2])
    # Without a PSS total, as before: no basis column, no legend.
    assert "basis" not in format_programs(findings("anon+swap"))[2]
    assert len(program_blocks(findings("anon+swap"))) == 2


# --- Against a plain implementation ----------------------------------------------------

# program, first, last, share per snapshot; and the snapshot from which the process runs
# another program (an exec), or None
Plan = list[tuple[str, int, int, list[float | None], tuple[int, str] | None]]


@st.composite
def plans(draw: st.DrawFn) -> tuple[int, Plan]:
    snapshots = draw(st.integers(1, 6))
    processes = []
    for number in range(draw(st.integers(1, 5))):
        # The first process is in every snapshot: a file with no row is no snapshot.
        first = 0 if number == 0 else draw(st.integers(0, snapshots - 1))
        last = snapshots - 1 if number == 0 else draw(st.integers(first, snapshots - 1))
        shares = [
            draw(st.one_of(st.none(), st.integers(0, 5000).map(lambda n: n / 8)))
            for _ in range(snapshots)
        ]
        program = draw(st.sampled_from(["alpha", "beta"]))
        after = draw(st.one_of(st.none(), st.tuples(st.integers(first, last), st.just("gamma"))))
        processes.append((program, first, last, shares, after))
    return snapshots, processes


def plain_series(snapshots: int, plan: Plan) -> dict[str, tuple[str | None, list[float]]]:
    """Each program's basis and totals, process by process and snapshot by snapshot. A
    snapshot in which no process's share was read gives none: an older collector's."""
    live = {
        n
        for _, first, last, shares, _ in plan
        for n in range(first, last + 1)
        if shares[n] is not None
    }
    found: dict[str, tuple[str | None, list[float]]] = {}
    names = {p for p, *_ in plan} | {after[1] for *_, after in plan if after is not None}
    for program in sorted(names):
        totals, anon, carried, covered = [0.0] * snapshots, [0.0] * snapshots, False, True
        for name, first, last, shares, after in plan:
            read = [s for s in shares[first : last + 1] if s is not None]
            for snapshot in range(first, last + 1):
                if program_at(name, after, snapshot) != program:
                    continue
                anon[snapshot] += 1.0
                earlier = [s for s in shares[first : snapshot + 1] if s is not None]
                share = earlier[-1] if earlier else (read[0] if read else None)
                share = share if snapshot in live else None
                covered = covered and share is not None
                carried = carried or shares[snapshot] is None
                totals[snapshot] += share or 0.0
        basis = (BASIS_CARRIED if carried else BASIS_PSS) if covered else None
        if any(anon):  # a program exec'd away from before its first row has none
            found[program] = (basis, totals if covered else anon)
    return found


EVERY_SNAPSHOT: Any = ("beta", 0, 2, [1.0, 1.0, 1.0], None)
BEFORE_ITS_SHARE: Any = ("alpha", 0, 2, [None, None, 4.0], (1, "gamma"))


def program_at(name: str, after: tuple[int, str] | None, snapshot: int) -> str:
    return name if after is None or snapshot < after[0] else after[1]


@settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(plan=plans(), batch_bytes=st.sampled_from([1, 1 << 20]))
# A process that runs another program before its first share: each row waits for the share
# in its own program, in one batch or one batch a snapshot ("beta" is read in every one).
@example(plan=(3, [EVERY_SNAPSHOT, BEFORE_ITS_SHARE]), batch_bytes=1 << 20)
@example(plan=(3, [EVERY_SNAPSHOT, BEFORE_ITS_SHARE]), batch_bytes=1)
def test_the_fold_is_the_plain_sum(
    tmp_path: Path, plan: tuple[int, Plan], batch_bytes: int
) -> None:
    snapshots, processes = plan
    with tempfile.TemporaryDirectory(dir=tmp_path) as folder:
        for snapshot in range(snapshots):
            rows = []
            for number, (program, first, last, shares, after) in enumerate(processes):
                if not first <= snapshot <= last:
                    continue
                share = shares[snapshot]
                started = f"2026-01-05 20:00:{number:02d}.00"
                command = f"{program_at(program, after, snapshot)} -w"
                row = [str(100 + number), "1", "root", "9.000", "9.000", command]
                row += ["1.000", "0.000", started, ""]
                row += ["" if share is None else f"{share:.3f}", "0.000"]
                rows.append(row)
            stamp = STAMPS[snapshot]
            path = Path(folder) / snapshot_names(stamp)[1]
            path.write_text(csv_text(PROCESS_HEADER, rows), encoding="utf-8")
        found = series(fold(Path(folder), batch_bytes))
    expected = plain_series(snapshots, processes)
    present = {name: value for name, value in found.items() if any(value[1]) or value[0]}
    assert sorted(present) == sorted(expected)
    for name, (basis, totals) in expected.items():
        assert present[name][0] == basis, name
        assert present[name][1] == pytest.approx(totals), name


class CountedRows:
    """A batch's rows that count how often they are read."""

    def __init__(self, rows: RowsSource, loads: list[int]) -> None:
        self.rows, self.loads = rows, loads

    def load(self) -> GroupRows:
        self.loads.append(1)
        return self.rows.load()


def test_a_program_in_pss_reads_no_batch_rows(tmp_path: Path) -> None:
    # The pool's rows come from the shares folded in memory: drawing it reads no batch's
    # rows from the summaries; the programs left in anon + swap read them as before.
    records = fold(write_dumps(tmp_path), 1)
    loads: list[int] = []
    totals, bases = records.pss.applied(records.group_totals())
    slices = [part._replace(rows=CountedRows(part.rows, loads)) for part in totals.slices]
    totals = totals._replace(slices=slices)
    pool = totals.names.index("pool")
    growth = ProgramGrowth("pool", pool, 3, 3, 1.0, 2.0, "pool: master", str(bases[pool]))
    (drawn,) = program_series(records.times, totals, [growth])
    assert drawn.total_mb.tolist() == POOL_TOTALS and not loads
    db = totals.names.index("db")
    growth = ProgramGrowth("db", db, 1, 1, 1.0, 2.0, "db", "anon+swap")
    (drawn,) = program_series(records.times, totals, [growth])
    assert drawn.total_mb.tolist() == [80.0] * 6 and len(loads) == len(slices)
