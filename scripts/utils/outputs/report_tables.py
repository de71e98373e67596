"""The report's tables of what the reading and the judge stage found: the gaps in
collection, the files skipped, what changed between two periods, the programs by growth
and the OOM kills, each as blocks of the page (utils.outputs.report_page).

They take the lower stages' own types, not the analyses' results: utils.outputs.report
picks them out of those.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from utils.core.text import format_duration, plural, signed
from utils.judge.breakdown import BREAKDOWN_CSV, LABELS, Comparison
from utils.judge.oom import INFERRED, OOM_CSV, OomFindings, kill_sentence
from utils.judge.program_basis import any_pss, basis_legend
from utils.judge.program_growth import PROGRAM_CSV, ProgramFindings
from utils.outputs.plotting import GAP_FACTOR, Gap
from utils.outputs.report_page import (
    Block,
    Cell,
    Column,
    Heading,
    Paragraph,
    Table,
    Text,
    one_decimal,
    three_decimals,
    time_cell,
    when,
)

# The gaps listed one by one; past this, the longest ones.
MAX_GAPS_LISTED = 12


# --- What was read -------------------------------------------------------------------


def gaps_blocks(gaps: list[Gap], threshold: float | None) -> tuple[Block, ...]:
    """The outages of the collector, the longest if there are many, in time order."""
    if not gaps or threshold is None:
        return (Text("none"),)
    listed = sorted(sorted(gaps, key=lambda gap: -gap.seconds)[:MAX_GAPS_LISTED], key=gap_start)
    more = len(gaps) - len(listed)
    rows = [
        [
            time_cell(pd.Timestamp(gap.start)),
            time_cell(pd.Timestamp(gap.end)),
            Cell(format_duration(gap.seconds), gap.seconds, "nowrap"),
        ]
        for gap in listed
    ]
    columns = (Column("last snapshot before", "UTC"), Column("next", "UTC"), Column("no data"))
    text = (
        f"{plural(len(gaps), 'gap')} longer than {format_duration(threshold)}"
        f" ({GAP_FACTOR:g} times the usual interval), shaded in the plots"
        + (f"; the {len(listed)} longest:" if more else ":")
    )
    return Text(text), Table(columns, rows, css="small")


def gap_start(gap: Gap) -> np.datetime64:
    return gap.start


def skipped_blocks(skipped: tuple[tuple[Path, str], ...], dumps_dir: Path) -> tuple[Block, ...]:
    """The bad files and why each was skipped; named by their file name in the dumps dir."""
    if not skipped:
        return (Text("none"),)
    rows = [
        [Cell(str(path.name if path.parent == dumps_dir else path), css="path"), Cell(why)]
        for path, why in skipped
    ]
    columns = (Column("file"), Column("why it was skipped"))
    table = Table(columns, rows, css="sortable small")
    return Text(f"{plural(len(skipped), 'file')}:"), table


# --- What changed ----------------------------------------------------------------------

CHANGE_COLUMNS = (
    Column("part of MemTotal"),
    Column("first period", "MiB", numeric=True),
    Column("last period", "MiB", numeric=True),
    Column("change", "MiB", numeric=True),
    Column("share of the rise", "%", numeric=True),
)


def share_cell(share_pct: float | None) -> Cell:
    return Cell("-") if share_pct is None else Cell(f"{share_pct:z.0f}", share_pct)


def changes_blocks(comparison: Comparison | None) -> tuple[Block, ...]:
    """What changed between the two periods: each part of the breakdown, largest first."""
    if comparison is None:
        return ()
    rise = comparison.rise_mb
    risen = "" if rise is None else f": RAM used (MemTotal - MemAvailable) {signed(rise)} MiB"
    lead = (
        f"Where memory went, {comparison.first.name} against {comparison.last.name}, the"
        f" medians of each ({BREAKDOWN_CSV}){risen}."
    )
    rows = [
        [
            Cell(LABELS[change.column]),
            Cell(one_decimal(change.before_mb), change.before_mb),
            Cell(one_decimal(change.after_mb), change.after_mb),
            Cell(signed(change.change_mb, 1), change.change_mb),
            share_cell(change.share_pct),
        ]
        for change in comparison.changes
    ]
    table = Table(CHANGE_COLUMNS, rows, css="sortable small")
    return Heading("What changed"), Paragraph(lead), table


# --- Programs ----------------------------------------------------------------------------

PROGRAM_TABLE_COLUMNS = (
    Column("program"),
    Column("instances", numeric=True),
    Column("at once", "most", numeric=True),
    Column("first period", "MiB", numeric=True),
    Column("last period", "MiB", numeric=True),
    Column("growth", "MiB", numeric=True),
    Column("growth", "%", numeric=True),
    Column("for example"),
)
# The programs listed in the report, largest growth first (all are in program_growth.csv).
PROGRAMS_LISTED = 10


def program_blocks(findings: ProgramFindings | None) -> tuple[Block, ...]:
    if findings is None:
        return (Paragraph("Too few snapshots to compare two periods."),)
    what = "program" if findings.group_by == "program" else "user"
    lead = (
        f"Memory per {what}, summed over its processes in each snapshot, {findings.first.name}"
        f" against {findings.last.name} (medians; {PROGRAM_CSV}): a worker pool whose workers"
        " are recycled is one program, so its growth shows here when no instance lives long"
        " enough for the leak finder."
    )
    rows = [
        [
            Cell(p.program),
            Cell(f"{p.instances:,}", p.instances),
            Cell(f"{p.max_concurrent:,}", p.max_concurrent),
            Cell(one_decimal(p.first_total_mb), p.first_total_mb),
            Cell(one_decimal(p.last_total_mb), p.last_total_mb),
            Cell(signed(p.growth_mb, 1), p.growth_mb),
            share_cell(p.growth_pct),
            Cell(p.cmd_example, css="cmd"),
        ]
        for p in findings.programs[:PROGRAMS_LISTED]
    ]
    listed = findings.programs[:PROGRAMS_LISTED]
    if any_pss([p.basis for p in findings.programs]):  # name every total's basis
        rows = [[*row, Cell(p.basis)] for row, p in zip(rows, listed, strict=True)]
        columns = (*PROGRAM_TABLE_COLUMNS, Column("basis"))
        legend = Paragraph(basis_legend([p.basis for p in listed]))
        return Paragraph(lead), Table(columns, rows, sorted_by=5), legend
    return Paragraph(lead), Table(PROGRAM_TABLE_COLUMNS, rows, sorted_by=5)


# --- The OOM killer ----------------------------------------------------------------------

OOM_TABLE_COLUMNS = (
    Column("after", "UTC"),
    Column("before", "UTC"),
    Column("PID", numeric=True),
    Column("RSS", "MiB", numeric=True),
    Column("anon + swap", "MiB", numeric=True),
    Column("named by"),
    Column("who killed it, and why"),
    Column("command line"),
)


def size_cell(value: float | None) -> Cell:
    return Cell("-") if value is None else Cell(three_decimals(value), value)


def oom_blocks(findings: OomFindings) -> tuple[Block, ...]:
    """The kills, each with the two snapshots around it: named from the kernel log, or the
    largest instance that vanished there ("likely")."""
    lead = (
        f"{plural(len(findings.kills), 'process')} killed for memory in the window"
        f' ({OOM_CSV}). "likely": the largest process instance that vanished in an interval'
        " in which the oom_kill counter rose, where the kernel log was not read."
    )
    rows = [
        [
            time_cell(kill.after),
            time_cell(kill.before),
            Cell("?") if kill.pid is None else Cell(str(kill.pid), kill.pid),
            size_cell(kill.rss_mb),
            size_cell(kill.anon_swap_mb),
            Cell("likely" if kill.source == INFERRED else kill.source),
            Cell(kill_sentence(kill)),
            Cell(kill.cmd or kill.cgroup or "(not in any snapshot)", css="cmd"),
        ]
        for kill in findings.kills
    ]
    gone = [
        f"Also gone between {when(after)} and the next snapshot: "
        + ", ".join(f"PID {g.pid} {g.cmd} ({g.size_mb:,.1f} MiB)" for g in listed)
        for after, listed in findings.also_gone.items()
    ]
    table = Table(OOM_TABLE_COLUMNS, rows, css="sortable")
    return Paragraph(lead, "verdict leaking"), table, *(Paragraph(g, "note") for g in gone)
