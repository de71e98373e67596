"""The HTML report: both analyses' results on one self-contained page.

render_report() is a pure function of ReportData: no file is read and nothing is fetched.
The plots are embedded as base64 PNGs, the style and the few lines of script are inline,
so the page opens offline from wherever it was copied to, in any current browser. Every
piece of text (above all the command lines from the dumps) goes through html.escape.
The script only adds: sortable table headers and a plot at full size on click; without
it the page reads the same, with the plots at the column's width.
"""

from __future__ import annotations

import base64
import html
import math
import shlex
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

from utils.console import EXIT_ALERT, EXIT_NO_DATA, EXIT_OK
from utils.core.text import format_duration, plural
from utils.judge.breakdown import BREAKDOWN_CSV, LABELS, Comparison
from utils.judge.growth import span_text as judged_span_text
from utils.judge.oom import INFERRED, OOM_CSV, OomFindings
from utils.judge.process_result import ProcessResult
from utils.judge.program_growth import PROGRAM_CSV
from utils.judge.spreads import DECIMALS
from utils.outputs.plotting import GAP_FACTOR, Gap, find_gaps, gap_threshold_s
from utils.outputs.process_console import judged_sentence
from utils.outputs.process_plots import LEAK_COLOR
from utils.outputs.process_tables import LEAKS_CSV
from utils.parser import DISPLAY_FORMAT, TimeWindow
from utils.system_analysis import (
    PLOT_TITLES,
    SUMMARY_ROWS,
    USED_DEFINITIONS,
    SystemResult,
    describe_forecast,
    pct_fact,
    zero_fact,
)

# What each definition of "used" tells someone asking whether the machine is short of
# memory (docs/system-analysis.md has the table and its sources).
USED_MEANING = {
    "RAM_Used_MB": "every cache counted as free: the lowest of the three; misses tmpfs and"
    " shared memory, which sit in Cached but cannot be dropped",
    "RAM_Used_Shmem_MB": "the same plus tmpfs and shared memory: what cannot be freed"
    " without deleting files or ending processes",
    "RAM_Used_Available_MB": "the kernel's own estimate of what new work cannot have without"
    " swapping: the best single number for whether the machine is short of memory",
}
# The gaps listed one by one; past this, the longest ones.
MAX_GAPS_LISTED = 12


@dataclass(frozen=True)
class Plot:
    """One PNG as the analysis writes it: its file name and its bytes."""

    name: str
    png: bytes


@dataclass(frozen=True)
class Missing:
    """Why an analysis has nothing to show (its no-data message)."""

    reason: str


@dataclass(frozen=True)
class SystemPart:
    result: SystemResult
    plots: tuple[Plot, ...]  # in PLOT_NAMES order


@dataclass(frozen=True)
class ProcessPart:
    result: ProcessResult
    pid_plots: tuple[Plot, ...]  # one per row of result.top, in its order
    leak_plots: tuple[Plot, ...]  # one per leak, in result.leaks order


@dataclass(frozen=True)
class ReportData:
    """Everything the page shows."""

    dumps_dir: Path
    window: TimeWindow
    system: SystemPart | Missing
    processes: ProcessPart | Missing
    skipped: tuple[tuple[Path, str], ...]  # bad files and why (Diagnostics.skipped)
    command: str  # the command line that made the report
    made_at: datetime  # UTC


# --- Small pieces ----------------------------------------------------------------


def esc(text: object) -> str:
    """Any text as HTML text or an attribute value: <, >, &, " and ' escaped."""
    return html.escape(str(text), quote=True)


def when(moment: datetime | pd.Timestamp) -> str:
    return f"{moment:{DISPLAY_FORMAT}}"


def one_decimal(value: float) -> str:
    """As the console's summary: thousands separated, 1 decimal; n/a when empty."""
    return f"{value:,.1f}" if np.isfinite(value) else "n/a"


def three_decimals(value: float) -> str:
    """As the CSVs, with thousands separated."""
    return f"{value:,.{DECIMALS}f}"


def png_size(png: bytes) -> tuple[int, int]:
    """Width and height from the PNG's IHDR chunk (0, 0 if it is not a PNG)."""
    if png[:8] != b"\x89PNG\r\n\x1a\n" or len(png) < 24:
        return 0, 0
    width, height = struct.unpack(">II", png[16:24])
    return int(width), int(height)


def image(plot: Plot, title: str) -> str:
    """The PNG itself, embedded; its file name and title as the alt text."""
    width, height = png_size(plot.png)
    data = base64.b64encode(plot.png).decode("ascii")
    return (
        f'<img class="plot" src="data:image/png;base64,{data}"'
        f' width="{width}" height="{height}" alt="{esc(plot.name)}: {esc(title)}">'
    )


def figure(plot: Plot, title: str, note: str = "") -> str:
    """A plot at the column's width, captioned with its title and file name."""
    extra = f" · {esc(note)}" if note else ""
    return (
        f"<figure>{image(plot, title)}<figcaption><b>{esc(title)}</b>{extra}"
        f" · <code>{esc(plot.name)}</code></figcaption></figure>"
    )


def thumbnail(plot: Plot, title: str) -> str:
    """A plot in a table cell, at the cell's width (the whole PNG: full size on a click)."""
    return f"{image(plot, title)}<code class='file'>{esc(plot.name)}</code>"


def section(anchor: str, title: str, body: str) -> str:
    return f'<section id="{anchor}">\n<h2>{esc(title)}</h2>\n{body}\n</section>'


def paragraph(text: str, css: str = "") -> str:
    attribute = f' class="{css}"' if css else ""
    return f"<p{attribute}>{esc(text)}</p>"


def missing(what: str, part: Missing) -> str:
    return paragraph(f"No {what}: {part.reason}.", "missing")


# --- Tables ------------------------------------------------------------------------


class Column(NamedTuple):
    label: str
    unit: str = ""  # a second, smaller line in the header
    numeric: bool = False  # right-aligned, sorted as numbers (largest first on a click)
    sortable: bool = True


class Cell(NamedTuple):
    text: str
    sort: float | None = None  # the number a numeric column sorts by
    css: str = ""
    markup: str = ""  # HTML made here (escaped already), shown instead of the text


def time_cell(moment: datetime) -> Cell:
    """A UTC time that wraps, if it must, between the day and the time of day only."""
    day, clock = when(moment).split(" ")
    return Cell(when(moment), markup=f'<span class="nowrap">{esc(day)}</span> {esc(clock)}')


class Table(NamedTuple):
    columns: tuple[Column, ...]
    rows: list[list[Cell]]
    figures: list[str] | None = None  # one figure per row, shown under it
    sorted_by: int | None = None  # the column the rows come sorted by, largest first
    css: str = "sortable"


def header_cell(column: Column, index: int, table: Table) -> str:
    names = ["num" if column.numeric else "", "" if column.sortable else "nosort"]
    classes = f" class='{' '.join(filter(None, names))}'" if any(names) else ""
    sort = ' aria-sort="descending"' if index == table.sorted_by else ""
    unit = f"<small>{esc(column.unit)}</small>" if column.unit else ""
    return f"<th scope='col'{classes}{sort}><span>{esc(column.label)}</span>{unit}</th>"


def data_cell(cell: Cell, column: Column) -> str:
    classes = " ".join(part for part in ("num" if column.numeric else "", cell.css) if part)
    attribute = f' class="{classes}"' if classes else ""
    sort = "" if cell.sort is None else f' data-sort="{float(cell.sort)!r}"'
    return f"<td{attribute}{sort}>{cell.markup or esc(cell.text)}</td>"


def table_html(table: Table) -> str:
    """Each row in a <tbody> of its own, with its figure (if any) in a second row, so that
    sorting moves a row and its plot together."""
    heads = "".join(header_cell(column, i, table) for i, column in enumerate(table.columns))
    bodies = []
    for number, row in enumerate(table.rows):
        cells = "".join(data_cell(c, col) for c, col in zip(row, table.columns, strict=True))
        below = ""
        if table.figures is not None:
            span = len(table.columns)
            below = f'<tr class="plot-row"><td colspan="{span}">{table.figures[number]}</td></tr>'
        bodies.append(f'<tbody><tr class="row">{cells}</tr>{below}</tbody>')
    return (
        f'<div class="table-wrap"><table class="{table.css}"><thead><tr>{heads}</tr></thead>'
        + "\n".join(bodies)
        + "</table></div>"
    )


# --- What was analysed ---------------------------------------------------------------


def definition_list(items: Sequence[tuple[str, str]]) -> str:
    """Terms and their already-escaped descriptions."""
    rows = "".join(f"<dt>{esc(term)}</dt><dd>{html_text}</dd>" for term, html_text in items)
    return f'<dl class="facts">{rows}</dl>'


def snapshot_rows(data: ReportData) -> list[list[Cell]]:
    """One row per kind of dump: how many were used, from when to when."""
    rows = []
    if isinstance(data.system, SystemPart):
        summary = data.system.result.summary
        rows.append(snapshot_row("sys_mem", summary.snapshots, summary.first, summary.last))
    if isinstance(data.processes, ProcessPart):
        result = data.processes.result
        first, last = result.span
        rows.append(snapshot_row("process_mem", result.snapshots_read, first, last))
    return rows


def snapshot_row(kind: str, count: int, first: datetime, last: datetime) -> list[Cell]:
    span = format_duration((pd.Timestamp(last) - pd.Timestamp(first)).total_seconds())
    return [
        Cell(kind),
        Cell(f"{count:,}", count),
        time_cell(first),
        time_cell(last),
        Cell(span, css="nowrap"),
    ]


SNAPSHOT_COLUMNS = (
    Column("dumps"),
    Column("snapshots", numeric=True),
    Column("first", "UTC"),
    Column("last", "UTC"),
    Column("duration"),
)


def gaps_of(data: ReportData) -> tuple[list[Gap], float | None]:
    """The outages of the collector, from the system snapshots (else the process ones)."""
    if isinstance(data.system, SystemPart):
        summary = data.system.result.summary
        return summary.gaps, summary.gap_threshold_s
    if isinstance(data.processes, ProcessPart):
        times = data.processes.result.times
        threshold = gap_threshold_s(times)
        return find_gaps(times, threshold), threshold
    return [], None


def gaps_html(data: ReportData) -> str:
    gaps, threshold = gaps_of(data)
    if not gaps or threshold is None:
        return "none"
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
    return esc(text) + table_html(Table(columns, rows, css="small"))


def gap_start(gap: Gap) -> np.datetime64:
    return gap.start


def skipped_html(data: ReportData) -> str:
    if not data.skipped:
        return "none"
    rows = [
        [Cell(str(path.name if path.parent == data.dumps_dir else path), css="path"), Cell(why)]
        for path, why in data.skipped
    ]
    columns = (Column("file"), Column("why it was skipped"))
    table = Table(columns, rows, css="sortable small")
    return esc(f"{plural(len(data.skipped), 'file')}:") + table_html(table)


def filters_text(data: ReportData) -> str:
    parts = []
    if data.window.since is not None or data.window.until is not None:
        parts.append(f"snapshots {data.window.describe()}")
    if isinstance(data.processes, ProcessPart):
        options = data.processes.result.options
        if options.match is not None:
            parts.append(f"process rows whose command line contains {options.match!r}")
        parts.append(f"the top {options.top_n} PIDs by RSS spread")
    return "; ".join(parts) or "all snapshots"


def analysed_html(data: ReportData) -> str:
    rows = snapshot_rows(data)
    snapshots = table_html(Table(SNAPSHOT_COLUMNS, rows, css="small")) if rows else "none"
    made = f"{data.made_at:{DISPLAY_FORMAT}} UTC"
    return definition_list(
        [
            ("Dumps dir", f"<code>{esc(data.dumps_dir)}</code>"),
            ("Snapshots", snapshots),
            ("Selected", esc(filters_text(data))),
            ("Gaps", gaps_html(data)),
            ("Bad files skipped", skipped_html(data)),
            ("Made by", f"<code class='command'>{esc(data.command)}</code>"),
            ("Made at", esc(made)),
        ]
    )


# --- The system analysis ---------------------------------------------------------------


def summary_html(result: SystemResult) -> str:
    """min / mean / max of each metric as on the console, and the last value."""
    columns = (
        Column("metric"),
        *(Column(name, numeric=True) for name in ("min", "mean", "max", "last")),
    )
    rows = []
    for stat, (_, _, column) in zip(result.summary.stats, SUMMARY_ROWS, strict=True):
        last = float(result.metrics[column].iloc[-1])
        values = (stat.minimum, stat.mean, stat.maximum, last)
        rows.append(
            [Cell(f"{stat.label}, {stat.unit}"), *(Cell(one_decimal(v), v) for v in values)]
        )
    return table_html(Table(columns, rows, css="small summary"))


def definitions_html() -> str:
    """The three definitions of "used", in the plots' colours and with the legend's names."""
    items = []
    for definition in USED_DEFINITIONS:
        swatch = f'<span class="swatch" style="background:{esc(definition.color)}"></span>'
        items.append(
            f"<li>{swatch}<b>{esc(definition.label)}</b> (<code>{esc(definition.column)}</code>)"
            f" = {esc(definition.formula)}: {esc(USED_MEANING[definition.column])}</li>"
        )
    return '<ul class="definitions">' + "".join(items) + "</ul>"


def system_html(part: SystemPart | Missing) -> str:
    if isinstance(part, Missing):
        return missing("system analysis", part)
    result = part.result
    notes = "".join(paragraph(f"Note: {note}", "note") for note in result.notes)
    return (
        summary_html(result)
        + paragraph(describe_forecast(result.summary.forecast), "forecast")
        + notes
        + changes_html(result.comparison)
        + '<h3>What "used" means</h3>'
        + definitions_html()
    )


CHANGE_COLUMNS = (
    Column("part of MemTotal"),
    Column("first period", "MiB", numeric=True),
    Column("last period", "MiB", numeric=True),
    Column("change", "MiB", numeric=True),
    Column("share of the rise", "%", numeric=True),
)


def share_cell(share_pct: float | None) -> Cell:
    return Cell("-") if share_pct is None else Cell(f"{share_pct:.0f}", share_pct)


def changes_html(comparison: Comparison | None) -> str:
    """What changed between the two periods: each part of the breakdown, largest first."""
    if comparison is None:
        return ""
    rise = comparison.rise_mb
    risen = "" if rise is None else f": RAM used (MemTotal - MemAvailable) {rise:+,.0f} MiB"
    lead = (
        f"Where memory went, {comparison.first.name} against {comparison.last.name}, the"
        f" medians of each ({BREAKDOWN_CSV}){risen}."
    )
    rows = [
        [
            Cell(LABELS[change.column]),
            Cell(one_decimal(change.before_mb), change.before_mb),
            Cell(one_decimal(change.after_mb), change.after_mb),
            Cell(f"{change.change_mb:+,.1f}", change.change_mb),
            share_cell(change.share_pct),
        ]
        for change in comparison.changes
    ]
    table = Table(CHANGE_COLUMNS, rows, css="sortable small")
    return "<h3>What changed</h3>" + paragraph(lead) + table_html(table)


def system_plots_html(part: SystemPart | Missing) -> str:
    if isinstance(part, Missing):
        return missing("system plots", part)
    return "\n".join(figure(plot, PLOT_TITLES.get(plot.name, plot.name)) for plot in part.plots)


# --- The process analysis ----------------------------------------------------------------

LEAK_COLUMNS = (
    Column("PID", numeric=True),
    Column("first seen", "UTC"),
    Column("last seen", "UTC"),
    Column("growing since", "UTC"),
    Column("growth", "MiB/day", numeric=True),
    Column("growth", "MiB", numeric=True),
    Column("confidence", "0 to 1", numeric=True),
    Column("command line"),
    Column("judged", "anon+swap or RSS"),
)
TOP_COLUMNS = (
    Column("PID", numeric=True),
    Column("min RSS", "MiB", numeric=True),
    Column("max RSS", "MiB", numeric=True),
    Column("spread", "MiB", numeric=True),
    Column("command line"),
    Column("RSS over time", "click a plot for its full size", sortable=False),
)


def leaks_html(part: ProcessPart | Missing) -> str:
    if isinstance(part, Missing):
        return missing("leak table", part)
    result = part.result
    growth = result.options.growth
    method = (
        "Each process instance's lowest memory per 6 hours (per shorter buckets for one"
        " watched under 2 days): its anonymous memory in RAM and in swap (RssAnon + VmSwap),"
        " or its RSS in dumps without them; fitted with a line from when its growth starts;"
        " an instance watched"
        f" for at least {judged_span_text(result.survey.min_span_s)} that grows at least"
        f" {growth.min_rate_mb_per_day:g} MiB/day, and {growth.min_rise_mb:g} MiB over the"
        " shorter of its span and 2 days, steadily, is flagged."
    )
    verdict = judged_sentence(result) + "."
    if not result.leaks:
        return paragraph(verdict, "verdict") + paragraph(method, "method")
    verdict = judged_sentence(result) + f" ({LEAKS_CSV})."
    rows = [
        [
            Cell(str(leak.pid), leak.pid),
            *(time_cell(moment) for moment in (leak.first_seen, leak.last_seen, leak.since)),
            *(Cell(three_decimals(v), v) for v in (leak.growth_mb_per_day, leak.growth_mb)),
            Cell(three_decimals(leak.confidence), leak.confidence),
            Cell(leak.cmd, css="cmd"),
            Cell(leak.basis),
        ]
        for leak in result.leaks
    ]
    figures = [
        figure(plot, f"PID {leak.pid}", f"{leak.growth_mb_per_day:,.1f} MiB/day")
        for plot, leak in zip(part.leak_plots, result.leaks, strict=True)
    ]
    table = Table(LEAK_COLUMNS, rows, figures, sorted_by=4)
    return paragraph(verdict, "verdict leaking") + paragraph(method, "method") + table_html(table)


def spread_rows(top: pd.DataFrame) -> list[tuple[int, float, float, float, str]]:
    """The rows of the original README's table: PID, min_RSS, max_RSS, spread, CMD."""
    return [
        (int(pid), float(low), float(high), float(spread), str(cmd))
        for pid, low, high, spread, cmd in zip(
            top["PID"], top["min_RSS"], top["max_RSS"], top["spread"], top["CMD"], strict=True
        )
    ]


def top_html(part: ProcessPart | Missing) -> str:
    if isinstance(part, Missing):
        return missing("RSS spread table", part)
    result = part.result
    match = result.options.match
    matching = f" whose command line contains {match!r}" if match is not None else ""
    lead = (
        f"The top {len(result.top)} of {result.pids:,} PIDs{matching} by RSS spread"
        " (max - min RSS; a reused PID shares one row), largest first"
        f" (top{result.options.top_n}_rss_spread.csv)."
    )
    rows = [
        [
            Cell(str(pid), pid),
            *(Cell(three_decimals(value), value) for value in values),
            Cell(cmd, css="cmd"),
            Cell(plot.name, css="thumb", markup=thumbnail(plot, f"PID {pid}")),
        ]
        for (pid, *values, cmd), plot in zip(spread_rows(result.top), part.pid_plots, strict=True)
    ]
    table = Table(TOP_COLUMNS, rows, sorted_by=3)
    return paragraph(lead) + table_html(table)


# --- Programs -----------------------------------------------------------------------------

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


def programs_html(part: ProcessPart | Missing) -> str:
    if isinstance(part, Missing):
        return missing("program totals", part)
    findings = part.result.programs
    if findings is None:
        return paragraph("Too few snapshots to compare two periods.")
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
            Cell(f"{p.growth_mb:+,.1f}", p.growth_mb),
            share_cell(p.growth_pct),
            Cell(p.cmd_example, css="cmd"),
        ]
        for p in findings.programs[:PROGRAMS_LISTED]
    ]
    return paragraph(lead) + table_html(Table(PROGRAM_TABLE_COLUMNS, rows, sorted_by=5))


# --- The OOM killer ----------------------------------------------------------------------

OOM_TABLE_COLUMNS = (
    Column("after", "UTC"),
    Column("before", "UTC"),
    Column("PID", numeric=True),
    Column("RSS", "MiB", numeric=True),
    Column("anon + swap", "MiB", numeric=True),
    Column("named by"),
    Column("command line"),
)


def oom_findings(data: ReportData) -> OomFindings | None:
    """The process analysis' OOM victims, when it ran and the dumps carry the counter."""
    return data.processes.result.ooms if isinstance(data.processes, ProcessPart) else None


def size_cell(value: float | None) -> Cell:
    return Cell("-") if value is None else Cell(three_decimals(value), value)


def oom_html(findings: OomFindings) -> str:
    """The kills, each with the two snapshots around it: named from the kernel log, or the
    largest instance that vanished there ("likely")."""
    lead = (
        f"The kernel's OOM killer ended {plural(len(findings.kills), 'process')} in the window"
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
            Cell(kill.cmd or "(not in any snapshot)", css="cmd"),
        ]
        for kill in findings.kills
    ]
    gone = [
        f"Also gone between {when(after)} and the next snapshot: "
        + ", ".join(f"PID {g.pid} {g.cmd} ({g.size_mb:,.1f} MiB)" for g in listed)
        for after, listed in findings.also_gone.items()
    ]
    table = table_html(Table(OOM_TABLE_COLUMNS, rows, css="sortable"))
    return paragraph(lead, "verdict leaking") + table + "".join(paragraph(g, "note") for g in gone)


# --- The alerts ---------------------------------------------------------------------------


def window_flags(window: TimeWindow) -> str:
    """--since and --until as given to this report, to run an analysis on the same snapshots."""
    flags = [
        f" {flag} {shlex.quote(when(moment))}"
        for flag, moment in (("--since", window.since), ("--until", window.until))
        if moment is not None
    ]
    return "".join(flags)


def leak_alert(part: ProcessPart | Missing, window: TimeWindow) -> list[str]:
    match = "" if isinstance(part, Missing) else part.result.options.match
    flags = window_flags(window) + (f" --match {shlex.quote(match)}" if match else "")
    command = f"analyze_processes.py{flags} --fail-on-leak"
    if isinstance(part, Missing):
        return [command, str(EXIT_NO_DATA), f"no data: {part.reason}"]
    leaks = len(part.result.leaks)
    if leaks:
        verb = "leaks" if leaks == 1 else "leak"
        return [command, str(EXIT_ALERT), f"{plural(leaks, 'process instance')} {verb}"]
    return [command, str(EXIT_OK), "no process instance shows sustained growth"]


def pct_alert(result: SystemResult, flags: str) -> list[str]:
    # --alert-pct P holds when the latest % >= P: round the bound down, never up.
    bound = math.floor(result.latest_pct * 100) / 100
    return [
        f"analyze_system.py{flags} --alert-pct P",
        f"{EXIT_ALERT} for P ≤ {bound:.2f}, else {EXIT_OK}",
        pct_fact(result.summary, result.latest_pct),
    ]


def days_alert(result: SystemResult, flags: str) -> list[str]:
    command = f"analyze_system.py{flags} --alert-days D"
    forecast = result.summary.forecast
    days, fact = forecast.days_to_zero, zero_fact(forecast)
    if days is None or fact is None:
        return [command, f"{EXIT_OK} for any D", describe_forecast(forecast)]
    # --alert-days D holds when days to zero <= D: round the bound up, never down.
    bound = math.ceil(days * 10) / 10
    return [command, f"{EXIT_ALERT} for D ≥ {bound:.1f}, else {EXIT_OK}", fact]


def oom_alert_row(part: ProcessPart | Missing, window: TimeWindow) -> list[str]:
    command = f"analyze_processes.py{window_flags(window)} --fail-on-oom"
    if isinstance(part, Missing):
        return [command, str(EXIT_NO_DATA), f"no data: {part.reason}"]
    findings = part.result.ooms
    if findings is None:
        return [command, str(EXIT_OK), "the dumps carry no OOM counter"]
    if findings.kills:
        return [command, str(EXIT_ALERT), f"{plural(len(findings.kills), 'OOM kill')}"]
    return [command, str(EXIT_OK), "no OOM kill in the window"]


def status_css(status: str) -> str:
    return "status alert" if status == str(EXIT_ALERT) else "status"


def alerts_html(data: ReportData) -> str:
    rows = [leak_alert(data.processes, data.window), oom_alert_row(data.processes, data.window)]
    flags = window_flags(data.window)
    if isinstance(data.system, SystemPart):
        rows += [pct_alert(data.system.result, flags), days_alert(data.system.result, flags)]
    else:
        reason = f"no data: {data.system.reason}"
        alerts = ("--alert-pct P", "--alert-days D")
        rows += [
            [f"analyze_system.py{flags} {alert}", str(EXIT_NO_DATA), reason] for alert in alerts
        ]
    columns = (Column("command"), Column("exit status"), Column("because"))
    cells = [
        [Cell(row[0], css="command"), Cell(row[1], css=status_css(row[1])), Cell(row[2])]
        for row in rows
    ]
    lead = (
        "This report's own exit status is 0 whatever the alerts: they belong to the analyses'"
        " own flags. On these snapshots they would give:"
    )
    return paragraph(lead) + table_html(Table(columns, cells, css="small alerts"))


# --- The page ------------------------------------------------------------------------------

SECTIONS = (
    ("analysed", "What was analysed"),
    ("oom", "OOM kills"),  # only when there are some
    ("system", "System memory"),
    ("system-plots", "System plots"),
    ("leaks", "Leaks: sustained growth"),
    ("programs", "Programs by growth"),
    ("top", "Top PIDs by RSS spread"),
    ("alerts", "What the alerts would give"),
)


def span_text(data: ReportData) -> str:
    """The first and last snapshot of either analysis, for the page's heading."""
    moments: list[pd.Timestamp] = []
    if isinstance(data.system, SystemPart):
        moments += [data.system.result.summary.first, data.system.result.summary.last]
    if isinstance(data.processes, ProcessPart):
        moments += [pd.Timestamp(moment) for moment in data.processes.result.span]
    if not moments:
        return ""
    first, last = min(moments), max(moments)
    duration = format_duration((last - first).total_seconds())
    return f"{when(first)} to {when(last)} UTC ({duration})"


def render_report(data: ReportData) -> str:
    """The whole page, one self-contained HTML document."""
    findings = oom_findings(data)
    bodies = {
        "analysed": analysed_html(data),
        "oom": oom_html(findings) if findings is not None and findings.kills else "",
        "system": system_html(data.system),
        "system-plots": system_plots_html(data.system),
        "leaks": leaks_html(data.processes),
        "programs": programs_html(data.processes),
        "top": top_html(data.processes),
        "alerts": alerts_html(data),
    }
    shown = [(anchor, title) for anchor, title in SECTIONS if bodies[anchor]]
    nav = "".join(f'<a href="#{anchor}">{esc(title)}</a>' for anchor, title in shown)
    sections = "\n".join(section(anchor, title, bodies[anchor]) for anchor, title in shown)
    title = f"Memory report: {data.dumps_dir}"
    return (
        "<!DOCTYPE html>\n<html lang='en'>\n<head>\n<meta charset='utf-8'>\n"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>\n"
        f"<title>{esc(title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n"
        f"<header><h1>Memory report</h1><p class='lead'>{esc(span_text(data))}</p>"
        f"<p class='lead'><code>{esc(data.dumps_dir)}</code></p></header>\n"
        f"<nav>{nav}</nav>\n<main>\n{sections}\n</main>\n"
        f"<script>{SCRIPT}</script>\n</body>\n</html>\n"
    )


STYLE = """
:root { --ink: #1d1d1f; --muted: #5f6368; --rule: #d9dce1; --band: #f5f6f8;
  --ram: #1f6fb4; --leak: LEAK; }
* { box-sizing: border-box; }
body { margin: 0 auto; padding: 1.5rem 2rem 4rem; max-width: 76rem; color: var(--ink);
  font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", sans-serif; }
h1 { font-size: 1.7rem; margin: 0 0 .2rem; }
h2 { font-size: 1.3rem; margin: 2.5rem 0 .8rem; padding-bottom: .3rem;
  border-bottom: 2px solid var(--ram); }
h3 { font-size: 1.05rem; margin: 1.5rem 0 .5rem; }
.lead { margin: 0; color: var(--muted); }
code, .cmd, .path, .command { font-family: ui-monospace, "SFMono-Regular", "DejaVu Sans Mono",
  Menlo, Consolas, monospace; font-size: .86em; }
nav { position: sticky; top: 0; z-index: 1; background: #fff; margin: 1rem 0 0;
  padding: .5rem 0; border-bottom: 1px solid var(--rule); display: flex; flex-wrap: wrap;
  gap: .3rem 1.2rem; font-size: .92rem; }
nav a { color: var(--ram); text-decoration: none; }
nav a:hover { text-decoration: underline; }
section { scroll-margin-top: 4.5rem; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: .5rem 1.5rem;
  margin: 0; }
dl.facts dt { font-weight: 600; }
dl.facts dd { margin: 0; min-width: 0; }
.table-wrap { overflow-x: auto; margin: .4rem 0 1rem; }
table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
table.small { width: auto; }
th, td { padding: .3rem .6rem; text-align: left; vertical-align: top; }
th { border-bottom: 2px solid var(--ink); font-weight: 600; white-space: nowrap; }
th small { display: block; font-weight: 400; color: var(--muted); }
tr.row td { border-top: 1px solid var(--rule); }
tbody:nth-of-type(even) tr.row { background: var(--band); }
.num { text-align: right; white-space: nowrap; }
td.cmd, td.path { overflow-wrap: anywhere; min-width: 12rem; }
td.command, .nowrap { white-space: nowrap; }
td.status { white-space: nowrap; }
td.status.alert { color: var(--leak); font-weight: 700; }
td.thumb { width: 40%; min-width: 12rem; }
td.thumb img.plot { width: 100%; }
code.file { display: block; font-size: .75rem; color: var(--muted); }
tr.plot-row td { padding: .2rem 0 1.2rem; }
figure { margin: .5rem 0 1.5rem; }
img.plot { display: block; width: 100%; max-width: 1500px; height: auto;
  border: 1px solid var(--rule); }
figcaption { font-size: .85rem; color: var(--muted); margin-top: .3rem; }
figcaption b { color: var(--ink); font-weight: 600; }
.forecast { font-size: 1.05rem; padding: .6rem .9rem; background: var(--band);
  border-left: 4px solid var(--ram); }
.verdict { font-weight: 600; }
.verdict.leaking { color: var(--leak); }
.method, .note { color: var(--muted); }
.missing { padding: .6rem .9rem; background: #fff6e5; border-left: 4px solid #d9731a; }
ul.definitions { padding-left: 0; list-style: none; }
ul.definitions li { margin: .35rem 0; }
.swatch { display: inline-block; width: .9em; height: .9em; border-radius: 2px;
  margin-right: .45em; vertical-align: -.1em; }
th.sorter { cursor: pointer; user-select: none; }
th.sorter:hover > span, th.sorter:focus-visible > span { color: var(--ram); }
th.sorter > span::after { content: " ↕"; color: #b0b4ba; font-weight: 400; }
th.sorter[aria-sort="ascending"] > span::after { content: " ▲"; color: var(--ram); }
th.sorter[aria-sort="descending"] > span::after { content: " ▼"; color: var(--ram); }
.js img.plot { cursor: zoom-in; }
.overlay { position: fixed; inset: 0; z-index: 10; display: flex; flex-direction: column;
  overflow: auto; background: rgba(20, 20, 24, .88); cursor: zoom-out; padding: 1rem; }
.overlay[hidden] { display: none; }
.overlay img { margin: auto; max-width: none; background: #fff; }
.overlay p { margin: .5rem auto 0; color: #eee; font-size: .9rem; }
@media print {
  body { max-width: none; padding: 0; font-size: 10pt; }
  nav, .overlay { display: none !important; }
  h2 { margin-top: 1.2rem; }
  h2, h3, .verdict, .method { break-after: avoid; }
  tr, figure, table.small, dl.facts dd { break-inside: avoid; }
  .swatch { print-color-adjust: exact; -webkit-print-color-adjust: exact; }
  thead { display: table-header-group; }
  .table-wrap { overflow: visible; }
  td.command { white-space: normal; }
  img.plot { max-width: 100%; }
  th.sorter > span::after, th.nosort small { content: none !important; display: none; }
  tbody:nth-of-type(even) tr.row { background: none; }
}
""".replace("LEAK", LEAK_COLOR)

SCRIPT = """
(function () {
  "use strict";
  document.documentElement.classList.add("js");
  function key(body, index) {
    var cell = body.rows[0].cells[index];
    var sort = cell.getAttribute("data-sort");
    return sort === null ? cell.textContent : Number(sort);
  }
  function sortBy(table, th, index) {
    var numeric = th.classList.contains("num");
    var now = th.getAttribute("aria-sort");
    var down = now ? now === "ascending" : numeric;
    Array.prototype.forEach.call(th.parentNode.cells, function (h) {
      h.removeAttribute("aria-sort");
    });
    th.setAttribute("aria-sort", down ? "descending" : "ascending");
    var bodies = Array.prototype.slice.call(table.tBodies);
    bodies.sort(function (a, b) {
      var x = key(a, index), y = key(b, index);
      var order = numeric ? x - y : String(x).localeCompare(String(y));
      return down ? -order : order;
    });
    bodies.forEach(function (body) { table.appendChild(body); });
  }
  document.querySelectorAll("table.sortable").forEach(function (table) {
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, index) {
      if (th.classList.contains("nosort")) { return; }
      th.classList.add("sorter");
      th.tabIndex = 0;
      th.title = "sort by this column";
      th.addEventListener("click", function () { sortBy(table, th, index); });
      th.addEventListener("keydown", function (event) {
        if (event.key === "Enter" || event.key === " ") {
          event.preventDefault();
          sortBy(table, th, index);
        }
      });
    });
  });
  var overlay = document.createElement("div");
  overlay.className = "overlay";
  overlay.hidden = true;
  var caption = document.createElement("p");
  overlay.appendChild(caption);
  document.body.appendChild(overlay);
  function close() {
    overlay.hidden = true;
    var big = overlay.querySelector("img");
    if (big) { overlay.removeChild(big); }
  }
  overlay.addEventListener("click", close);
  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape") { close(); }
  });
  document.querySelectorAll("img.plot").forEach(function (img) {
    img.addEventListener("click", function () {
      close();
      var big = document.createElement("img");
      big.src = img.src;
      big.alt = img.alt;
      overlay.insertBefore(big, caption);
      caption.textContent = img.alt + " (full size; click or Esc to close)";
      overlay.hidden = false;
    });
  });
})();
"""
