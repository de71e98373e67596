"""Which programs grew: the per-snapshot memory total of each program (or user), compared
between two periods by medians, largest growth first: program_growth.csv, a console
section and program_<name>.png.

A recycled worker pool grows here while none of its instances lives long enough for the
leak finder: the pool is one program, whatever its PIDs. A snapshot in which a program has
no process counts as a total of 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd

from utils.core.atomic_files import write_table_csv
from utils.core.text import aligned_table, shorten
from utils.judge.breakdown import Period, in_period
from utils.outputs import plotting
from utils.reduce.group_totals import GroupTotals
from utils.reduce.process_records import MILLI, ProcessRecords
from utils.reduce.programs import safe_file_part

PROGRAM_CSV = "program_growth.csv"
PROGRAM_COLUMNS: tuple[str, ...] = (
    "program",
    "instances",
    "max_concurrent",
    "first_total_MB",
    "last_total_MB",
    "growth_MB",
    "growth_pct",
    "CMD_example",
    "basis",
)
CONSOLE_ROWS = 5
# A program that grew less than this is not shown on the console or plotted (it is in the
# CSV): half of it is the rounding of a few rows to the dumps' 3 decimals.
MIN_SHOWN_GROWTH_MB = 1.0
CMD_WIDTH = 50


@dataclass(frozen=True)
class ProgramGrowth:
    program: str
    code: int  # into records.group_names
    instances: int
    max_concurrent: int
    first_total_mb: float
    last_total_mb: float
    cmd_example: str
    basis: str  # "anon+swap", "RSS" or "mixed"

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


def program_growth(records: ProcessRecords, first: Period, last: Period) -> ProgramFindings:
    """Every program's medians over the two periods (see the module's docstring)."""
    totals = records.group_totals()
    times = pd.DatetimeIndex(records.times)
    ranks_one = np.flatnonzero(in_period(times, first))
    ranks_two = np.flatnonzero(in_period(times, last))
    count = len(totals.names)
    instances = np.bincount(records.instance_groups(), minlength=count)
    concurrent = np.zeros(count, np.int64)
    np.maximum.at(concurrent, totals.group, totals.processes)
    footed = np.bincount(totals.group, weights=totals.foot_count, minlength=count)
    processes = np.bincount(totals.group, weights=totals.processes, minlength=count)
    examples = _examples(records, count)
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
            basis=_basis(footed[code], processes[code]),
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
    inside = np.isin(totals.rank, ranks)
    group, total = totals.group[inside], totals.total_milli[inside] / MILLI
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


def _examples(records: ProcessRecords, count: int) -> list[str]:
    """Per group, the command line of its first instance."""
    table = records.instances()
    groups = records.instance_groups()
    examples = [""] * count
    for number in np.argsort(table.first_rank, kind="stable")[::-1].tolist():
        examples[int(groups[number])] = records.commands[int(table.cmd[number])]
    return examples


def _basis(footed: float, processes: float) -> str:
    if footed == processes:
        return "anon+swap"
    return "RSS" if footed == 0 else "mixed"


# --- Output ------------------------------------------------------------------------------


def program_frame(findings: ProgramFindings) -> pd.DataFrame:
    programs = findings.programs
    return pd.DataFrame(
        {
            "program": [p.program for p in programs],
            "instances": [p.instances for p in programs],
            "max_concurrent": [p.max_concurrent for p in programs],
            "first_total_MB": [p.first_total_mb for p in programs],
            "last_total_MB": [p.last_total_mb for p in programs],
            "growth_MB": [p.growth_mb for p in programs],
            "growth_pct": [p.growth_pct for p in programs],
            "CMD_example": [p.cmd_example for p in programs],
            "basis": [p.basis for p in programs],
        },
        columns=list(PROGRAM_COLUMNS),
    )


def write_program_csv(findings: ProgramFindings, path: Path) -> Path:
    """One row per program, largest growth first; MiB and % with 3 decimals."""
    return write_table_csv(path, program_frame(findings))


def format_programs(findings: ProgramFindings) -> list[str]:
    """The console section: the programs that grew most."""
    what = "Programs" if findings.group_by == "program" else "Users"
    lines = [
        f"{what} by growth, {findings.first.name} against {findings.last.name}"
        f" (medians of the total per snapshot; {PROGRAM_CSV})",
        "",
    ]
    shown = grown(findings)[:CONSOLE_ROWS]
    if not shown:
        return [lines[0], f"  none grew by {MIN_SHOWN_GROWTH_MB:g} MiB or more"]
    header = (findings.group_by, "instances", "at once", "first MiB", "last MiB", "growth MiB")
    cells = [
        (
            shorten(p.program, 30),
            f"{p.instances:,}",
            f"{p.max_concurrent:,}",
            f"{p.first_total_mb:,.1f}",
            f"{p.last_total_mb:,.1f}",
            f"{p.growth_mb:+,.1f}",
        )
        for p in shown
    ]
    commands = [shorten(p.cmd_example, CMD_WIDTH) for p in shown]
    return lines + aligned_table(header, cells, "for example", commands)


def grown(findings: ProgramFindings) -> list[ProgramGrowth]:
    """The programs that grew by MIN_SHOWN_GROWTH_MB or more, largest growth first."""
    return [p for p in findings.programs if p.growth_mb >= MIN_SHOWN_GROWTH_MB]


def plot_name(program: str) -> str:
    return f"program_{safe_file_part(program)}.png"


def program_series(
    records: ProcessRecords, totals: GroupTotals, code: int
) -> tuple[npt.NDArray[np.datetime64], npt.NDArray[np.float64]]:
    """A program's total per snapshot (MiB), 0 in the snapshots without it."""
    values = np.zeros(records.snapshots_read)
    mine = totals.group == code
    np.add.at(values, totals.rank[mine], totals.total_milli[mine] / MILLI)
    return records.times, values


def draw_program(
    program: ProgramGrowth,
    series: tuple[npt.NDArray[np.datetime64], npt.NDArray[np.float64]],
    out_dir: Path,
) -> Path:
    """program_<name>.png: the program's total over time."""
    times, values = series
    threshold = plotting.gap_threshold_s(times)
    figure, axes = plotting.new_figure()
    label = f"total of {program.program} ({program.basis})"
    plotting.plot_series(axes, plotting.Line(times, values, label, plotting.RAM_COLOR), threshold)
    plotting.shade_gaps(axes, times, threshold)
    plotting.style_time_axis(axes, times)
    plotting.style_value_axis(axes, "MiB")
    plotting.add_legend(axes)
    subtitle = (
        f"{program.instances:,} instances, at most {program.max_concurrent:,} at once"
        f" · {program.growth_mb:+,.1f} MiB between the periods compared"
    )
    plotting.set_titles(axes, f"Program {program.program}: memory over time", subtitle)
    return plotting.save_figure(figure, out_dir / plot_name(program.program))


def program_plot_calls(
    records: ProcessRecords, findings: ProgramFindings | None, out_dir: Path, top: int
) -> list[plotting.PlotCall]:
    """The top programs that grew, one plot each."""
    if findings is None:
        return []
    totals = records.group_totals()  # concatenated once for all the plots
    return [
        (draw_program, (p, program_series(records, totals, p.code), out_dir))
        for p in grown(findings)[:top]
    ]


def stale_program_plots(out_dir: Path, written: Sequence[Path]) -> list[Path]:
    """The program_*.png of an earlier run that this one did not write."""
    keep = {path.name for path in written}
    return [path for path in out_dir.glob("program_*.png") if path.name not in keep]
