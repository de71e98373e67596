"""The process analysis on the console: the original README's table, the leaks, the
programs that grew and the OOM killer's victims. Command lines are shortened here only,
never in the CSVs."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from utils.core.text import aligned_table, format_duration, plural, shorten, signed
from utils.judge.growth import span_text
from utils.judge.leaks import Leak
from utils.judge.oom import INFERRED, OOM_CSV, UNKNOWN, OomFindings, kill_sentence
from utils.judge.process_result import ProcessResult
from utils.judge.program_basis import any_pss, basis_legend
from utils.judge.program_growth import MIN_SHOWN_GROWTH_MB, PROGRAM_CSV, ProgramFindings, grown
from utils.outputs.program_leak_outputs import program_leak_lines
from utils.parser import DISPLAY_FORMAT
from utils.reduce.buckets import BUCKET_S

CONSOLE_CMD_WIDTH = 60
PROGRAM_ROWS = 5  # the programs that grew most, on the console
PROGRAM_CMD_WIDTH = 50


def format_result(result: ProcessResult) -> list[str]:
    """The console text of a result: the original README's table, then the leaks."""
    match = result.options.match
    matching = f" whose command line contains {match!r}" if match is not None else ""
    first, last = result.span
    lines = [
        f"Top {len(result.top)} of {plural(result.pids, 'PID')}{matching} by RSS spread (MiB),"
        f" {plural(result.snapshots_read, 'snapshot')} from {first:{DISPLAY_FORMAT}}"
        f" to {last:{DISPLAY_FORMAT}} UTC",
        "",
        *format_top_table(result.top),
        "",
    ]
    ooms = ["", *format_findings(result.ooms, match)]
    if result.programs is not None:
        ooms = ["", *format_programs(result.programs), *ooms]
    if not result.leaks:
        return [*lines, judged_sentence(result), *ooms]
    leaks = [*format_leak_table(result.leaks), *program_leak_lines(result.program_leaks)]
    return [*lines, judged_sentence(result), "", *leaks, *ooms]


def judged_sentence(result: ProcessResult) -> str:
    """What the leak finder judged and found, in one sentence (console and report)."""
    found, (first, last) = result.survey, result.span
    duration = format_duration((last - first).total_seconds())
    least = span_text(found.min_span_s)
    if found.judged == 0:
        return (
            f"None of the {plural(found.instances, 'process instance')} was watched long"
            f" enough to judge (the minimum span here is {least}); nothing judged"
        )
    judged = f"those watched at least {least} in {duration}"
    if not found.leaks:
        return (
            f"No process shows sustained growth ({found.judged:,} of"
            f" {plural(found.instances, 'process instance')} judged: {judged})"
        )
    return (
        f"Sustained growth (leaks) in {len(found.leaks):,} of the"
        f" {plural(found.judged, 'process instance')} judged (of {found.instances:,}: {judged}),"
        " fastest first"
    )


def format_top_table(top: pd.DataFrame) -> list[str]:
    """An aligned console table of the spreads."""
    numbers = [
        (str(row.PID), f"{row.min_RSS:,.3f}", f"{row.max_RSS:,.3f}", f"{row.spread:,.3f}")
        for row in top.itertuples()
    ]
    header = ("PID", "min_RSS", "max_RSS", "spread")
    commands = [shorten(str(cmd), CONSOLE_CMD_WIDTH) for cmd in top["CMD"]]
    return aligned_table(header, numbers, "CMD", commands)


def format_leak_table(leaks: Sequence[Leak]) -> list[str]:
    """The flagged instances as an aligned console table, fastest growth first; in MiB/h
    and to the second when every one was judged at a short time scale (a soak test)."""
    short = all(leak.bucket_s < BUCKET_S for leak in leaks)
    clock, unit, per_day = (
        ("%Y-%m-%d %H:%M:%S", "MiB/h", 24.0) if short else ("%Y-%m-%d %H:%M", "MiB/day", 1.0)
    )
    cells = [
        (
            str(leak.pid),
            f"{leak.since:{clock}}",
            f"{leak.growth_mb_per_day / per_day:,.1f}",
            f"{leak.growth_mb:,.1f}",
            f"{leak.confidence:.2f}",
            leak.basis,
            f"{leak.first_seen:{clock}}",
        )
        for leak in leaks
    ]
    header = ("PID", "since (UTC)", unit, "growth MiB", "confidence", "judged", "first seen (UTC)")
    commands = [shorten(leak.cmd, CONSOLE_CMD_WIDTH) for leak in leaks]
    return aligned_table(header, cells, "CMD", commands)


def format_programs(findings: ProgramFindings) -> list[str]:
    """The programs that grew most."""
    what = "Programs" if findings.group_by == "program" else "Users"
    lines = [
        f"{what} by growth, {findings.first.name} against {findings.last.name}"
        f" (medians of the total per snapshot; {PROGRAM_CSV})",
        "",
    ]
    shown = grown(findings)[:PROGRAM_ROWS]
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
            signed(p.growth_mb, 1),
        )
        for p in shown
    ]
    commands = [shorten(p.cmd_example, PROGRAM_CMD_WIDTH) for p in shown]
    if any_pss([p.basis for p in findings.programs]):  # name every total's basis
        named = [(*row, p.basis) for row, p in zip(cells, shown, strict=True)]
        table = aligned_table((*header, "basis"), named, "for example", commands)
        return [*lines, *table, basis_legend([p.basis for p in shown])]
    return lines + aligned_table(header, cells, "for example", commands)


def format_findings(findings: OomFindings | None, match: str | None) -> list[str]:
    """A line when the dumps cannot tell, or the table of the OOM killer's victims."""
    if findings is None:
        return [
            "OOM kills: unknown (the dumps carry no OOM counter: an older collector, or"
            " Linux before 4.13)"
        ]
    if not findings.kills:
        return ["No OOM kill in the window"]
    lines = [f"OOM kills: {plural(len(findings.kills), 'process')} killed ({OOM_CSV})", ""]
    cells = [
        (
            f"{kill.after:{DISPLAY_FORMAT}}",
            f"{kill.before:{DISPLAY_FORMAT}}",
            "?" if kill.pid is None else str(kill.pid),
            "-" if kill.rss_mb is None else f"{kill.rss_mb:,.1f}",
            "likely" if kill.source == INFERRED else kill.source,
        )
        for kill in findings.kills
    ]
    header = ("after (UTC)", "before (UTC)", "PID", "RSS MiB", "named by")
    commands = [
        shorten(kill.cmd or kill.cgroup, CONSOLE_CMD_WIDTH) or "(not in any snapshot)"
        for kill in findings.kills
    ]
    lines += aligned_table(header, cells, "CMD", commands)
    lines += [f"  {kill_sentence(kill)}" for kill in findings.kills if kill.kind != UNKNOWN]
    for after, gone in findings.also_gone.items():
        listed = ", ".join(f"PID {g.pid} {shorten(g.cmd, 30)} ({g.size_mb:,.1f} MiB)" for g in gone)
        lines.append(f"  also gone after {after:{DISPLAY_FORMAT}}: {listed}")
    if not findings.inferable and any(kill.source == UNKNOWN for kill in findings.kills):
        lines.append(
            f"  --match {match!r} keeps only some processes: victims the kernel log did not"
            " name cannot be inferred"
        )
    return lines
