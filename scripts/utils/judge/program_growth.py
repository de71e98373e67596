"""Which programs grew: the per-snapshot memory total of each program (or user), compared
between two periods by medians, largest growth first (the outputs show it as
program_growth.csv, a console section and program_<name>.png).

A recycled worker pool grows here while none of its instances lives long enough for the
leak finder: the pool is one program, whatever its PIDs. A snapshot in which a program has
no process counts as a total of 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import numpy.typing as npt
import pandas as pd

from utils.judge.breakdown import Period, in_period
from utils.reduce.group_totals import GroupTotals
from utils.reduce.process_records import MILLI, InstanceTable, ProcessRecords

PROGRAM_CSV = "program_growth.csv"  # where the outputs write the findings, named in their text
# A program that grew less than this is not shown on the console or plotted (it is in the
# CSV): half of it is the rounding of a few rows to the dumps' 3 decimals.
MIN_SHOWN_GROWTH_MB = 1.0


@dataclass(frozen=True)
class ProgramGrowth:
    program: str
    code: int  # into records.group_names
    instances: int
    max_concurrent: int
    first_total_mb: float
    last_total_mb: float
    cmd_example: str
    basis: str  # "pss", "pss carried", "anon+swap", "RSS" or "mixed" (basis_words)

    @property
    def growth_mb(self) -> float:
        return self.last_total_mb - self.first_total_mb

    @property
    def growth_pct(self) -> float | None:
        return None if self.first_total_mb <= 0 else self.growth_mb / self.first_total_mb * 100


@dataclass(frozen=True)
class ProgramFindings:
    first: Period
    last: Period
    group_by: str
    programs: list[ProgramGrowth]  # largest growth first


def program_growth(
    records: ProcessRecords,
    table: InstanceTable,
    totals: GroupTotals,
    periods: tuple[Period, Period],
    bases: Sequence[str | None] = (),
) -> ProgramFindings:
    """Every program's medians over the two periods (see the module's docstring); table is
    records.instances() and totals records.group_totals(), with the programs counted in PSS
    replaced (bases: per group code, "pss" or "pss carried"; None: anon + swap or RSS)."""
    first, last = periods
    times = pd.DatetimeIndex(records.times)
    ranks_one = np.flatnonzero(in_period(times, first))
    ranks_two = np.flatnonzero(in_period(times, last))
    count = len(totals.names)
    instances = np.bincount(records.instance_groups(), minlength=count)
    concurrent, processes, footed = totals.most_processes, totals.processes, totals.foot_count
    examples = _examples(records, table, count)
    one = _medians(totals, ranks_one, count)
    two = _medians(totals, ranks_two, count)
    programs = [
        ProgramGrowth(
            program=totals.names[code],
            code=code,
            instances=int(instances[code]),
            max_concurrent=int(concurrent[code]),
            first_total_mb=float(one[code]),
            last_total_mb=float(two[code]),
            cmd_example=examples[code],
            basis=(bases[code] if code < len(bases) else None)
            or _basis(footed[code], processes[code]),
        )
        for code in range(count)
        if processes[code] > 0
    ]
    programs.sort(key=lambda p: (-p.growth_mb, p.program))
    return ProgramFindings(first, last, records.group_by, programs)


def _medians(
    totals: GroupTotals, ranks: npt.NDArray[np.int64], count: int
) -> npt.NDArray[np.float64]:
    """Per group, the median of its total over the given snapshots (0 where absent)."""
    medians = np.zeros(count)
    if not len(ranks):
        return medians
    rank, group, total_milli = totals.rows_between(int(ranks.min()), int(ranks.max()))
    inside = np.isin(rank, ranks)
    group, total = group[inside], total_milli[inside] / MILLI
    order = np.argsort(group, kind="stable")
    group, total = group[order], total[order]
    if not len(group):
        return medians
    starts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
    ends = np.r_[starts[1:], len(group)]
    for start, end in zip(starts.tolist(), ends.tolist(), strict=True):
        present = total[start:end]
        padded = np.r_[present, np.zeros(len(ranks) - len(present))]
        medians[group[start]] = float(np.median(padded))
    return medians


def _examples(records: ProcessRecords, table: InstanceTable, count: int) -> list[str]:
    """Per group, the command line of its first instance (of those first seen in the same
    snapshot, the first in table order)."""
    groups = records.instance_groups()
    examples = [""] * count
    # Each group's earliest first snapshot, then of its instances first seen there the
    # first in table order: no ordering of every instance is needed.
    earliest = np.full(count, np.iinfo(np.int64).max)
    np.minimum.at(earliest, groups, table.first_rank)
    candidates = np.flatnonzero(table.first_rank == earliest[groups])
    found, first = np.unique(groups[candidates], return_index=True)
    for group, number in zip(found.tolist(), candidates[first].tolist(), strict=True):
        examples[group] = records.commands[int(table.cmd[number])]
    return examples


def _basis(footed: float, processes: float) -> str:
    if footed == processes:
        return "anon+swap"
    return "RSS" if footed == 0 else "mixed"


def grown(findings: ProgramFindings) -> list[ProgramGrowth]:
    """The programs that grew by MIN_SHOWN_GROWTH_MB or more, largest growth first."""
    return [p for p in findings.programs if p.growth_mb >= MIN_SHOWN_GROWTH_MB]


class ProgramSeries(NamedTuple):
    """What one program plot shows: a program that grew, and its total per snapshot (MiB,
    0 in the snapshots without it)."""

    program: ProgramGrowth
    times: npt.NDArray[np.datetime64]
    total_mb: npt.NDArray[np.float64]


def program_series(
    times: npt.NDArray[np.datetime64], totals: GroupTotals, programs: Sequence[ProgramGrowth]
) -> tuple[ProgramSeries, ...]:
    """Each program's total at each of the snapshots read (`times`, by rank): every batch's
    rows read once for all of them, one batch at a time (none for a program in PSS)."""
    values = np.zeros((len(programs), len(times)))
    row_of = np.full(len(totals.names), -1, np.int64)
    row_of[[program.code for program in programs]] = np.arange(len(programs))
    wanted = row_of >= 0
    for rank, group, total in totals.parts_between(0, len(times) - 1, wanted) if programs else ():
        values[row_of[group], rank] = total / MILLI
    return tuple(ProgramSeries(program, times, values[row]) for row, program in enumerate(programs))
