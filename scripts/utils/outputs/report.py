"""The HTML report: both analyses' results on one self-contained page.

render_report() is a pure function of ReportData: no file is read but the page's template
and nothing is fetched. This module decides what the page says, as blocks of text, tables
and figures (utils.outputs.report_page); templates/report.html.j2 lays them out, with its
style and its few lines of script inline and the plots embedded as base64 PNGs, so the
page opens offline from wherever it was copied to, in any current browser. The template
escapes every piece of text (above all the command lines from the dumps). The script only
adds: sortable table headers and a plot at full size on click; without it the page reads
the same, with the plots at the column's width.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from utils.console import EXIT_ALERT, EXIT_NO_DATA, EXIT_OK
from utils.core.text import format_duration, plural
from utils.judge.alerts import (
    DAYS_ALERT,
    PCT_ALERT,
    alert_days,
    leak_alert_holds,
    oom_alert_holds,
    pct_fact,
    zero_fact,
)
from utils.judge.growth import LEAST_RISE_MB
from utils.judge.growth import span_text as judged_span_text
from utils.judge.oom import OomFindings
from utils.judge.process_result import ProcessResult
from utils.judge.program_leaks import program_leak_sentence
from utils.judge.system_metrics import SUMMARY_ROWS, USED_DEFINITIONS, SystemResult
from utils.outputs.plotting import Gap, find_gaps, gap_threshold_s
from utils.outputs.process_console import judged_sentence
from utils.outputs.process_plots import LEAK_COLOR
from utils.outputs.process_tables import LEAKS_CSV
from utils.outputs.report_answers import answers_block
from utils.outputs.report_page import (
    Block,
    Cell,
    Code,
    Column,
    Definitions,
    Facts,
    Figure,
    Heading,
    Page,
    Paragraph,
    Section,
    Swatch,
    Table,
    Text,
    figure,
    one_decimal,
    render_page,
    three_decimals,
    thumbnail_cell,
    time_cell,
    when,
)
from utils.outputs.report_services import days_alert_row, services_blocks
from utils.outputs.report_tables import (
    changes_blocks,
    gaps_blocks,
    oom_blocks,
    program_blocks,
    skipped_blocks,
)
from utils.outputs.system_console import describe_forecast
from utils.outputs.system_plots import PLOT_TITLES
from utils.parser import DISPLAY_FORMAT, TimeWindow

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
    service_plots: tuple[Plot, ...] = ()  # one per plot of result.services, in its order


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


def plot_figure(plot: Plot, title: str, note: str = "") -> Figure:
    return figure(plot.name, plot.png, title, note)


def missing(what: str, part: Missing) -> Paragraph:
    return Paragraph(f"No {what}: {part.reason}.", "missing")


# --- What was analysed ---------------------------------------------------------------


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
        services = result.services
        if services is not None:
            start, end = (
                datetime.fromtimestamp(s, UTC).replace(tzinfo=None) for s in services.span_s
            )
            rows.append(snapshot_row("cgroup_mem", services.snapshots, start, end))
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


def analysed_blocks(data: ReportData) -> tuple[Block, ...]:
    rows = snapshot_rows(data)
    snapshots = Table(SNAPSHOT_COLUMNS, rows, css="small") if rows else Text("none")
    made = f"{data.made_at:{DISPLAY_FORMAT}} UTC"
    facts = (
        ("Dumps dir", (Code(str(data.dumps_dir)),)),
        ("Snapshots", (snapshots,)),
        ("Selected", (Text(filters_text(data)),)),
        ("Gaps", gaps_blocks(*gaps_of(data))),
        ("Bad files skipped", skipped_blocks(data.skipped, data.dumps_dir)),
        ("Made by", (Code(data.command, "command"),)),
        ("Made at", (Text(made),)),
    )
    return (Facts(facts),)


# --- The system analysis ---------------------------------------------------------------


def summary_table(result: SystemResult) -> Table:
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
    return Table(columns, rows, css="small summary")


def definitions() -> Definitions:
    """The three definitions of "used", in the plots' colours and with the legend's names."""
    return Definitions(
        tuple(
            Swatch(d.color, d.label, d.column, d.formula, USED_MEANING[d.column])
            for d in USED_DEFINITIONS
        )
    )


def system_blocks(part: SystemPart | Missing) -> tuple[Block, ...]:
    if isinstance(part, Missing):
        return (missing("system analysis", part),)
    result = part.result
    notes = [Paragraph(f"Note: {note}", "note") for note in result.notes]
    return (
        Paragraph(describe_forecast(result.summary.forecast), "forecast"),
        summary_table(result),
        *notes,
        *changes_blocks(result.comparison),
        Heading('What "used" means'),
        definitions(),
    )


def system_plots_blocks(part: SystemPart | Missing) -> tuple[Block, ...]:
    if isinstance(part, Missing):
        return (missing("system plots", part),)
    return tuple(plot_figure(plot, PLOT_TITLES.get(plot.name, plot.name)) for plot in part.plots)


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


def leak_method(result: ProcessResult) -> str:
    """How the leak finder judges, in one paragraph of the report."""
    growth = result.options.growth
    absolute = (
        f", and {growth.min_rise_mb:g} MiB over the shorter of its span and 2 days"
        if growth.min_rise_mb
        else ""
    )
    return (
        "Each process instance's lowest memory per 6 hours (per shorter buckets for one"
        " watched under 2 days): its anonymous memory in RAM and in swap (RssAnon + VmSwap),"
        " or its RSS in dumps without them; fitted with a line from when its growth starts;"
        " an instance watched"
        f" for at least {judged_span_text(result.survey.min_span_s)} that grows at least"
        f" {growth.min_rate_mb_per_day:g} MiB/day, by at least {growth.min_rise_share:.0%} of"
        f" its size (never under {LEAST_RISE_MB:g} MiB) and well beyond its floors' noise"
        f"{absolute}, steadily, is flagged."
    )


def leaks_blocks(part: ProcessPart | Missing) -> tuple[Block, ...]:
    if isinstance(part, Missing):
        return (missing("leak table", part),)
    result = part.result
    method = leak_method(result)
    verdict = judged_sentence(result) + "."
    if not result.leaks:
        return Paragraph(verdict, "verdict"), Paragraph(method, "method")
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
        plot_figure(plot, f"PID {leak.pid}", f"{leak.growth_mb_per_day:,.1f} MiB/day")
        for plot, leak in zip(part.leak_plots, result.leaks, strict=True)
    ]
    table = Table(LEAK_COLUMNS, rows, figures, sorted_by=4)
    programs = tuple(Paragraph(program_leak_sentence(p), "verdict") for p in result.program_leaks)
    return Paragraph(verdict, "verdict leaking"), Paragraph(method, "method"), table, *programs


def spread_rows(top: pd.DataFrame) -> list[tuple[int, float, float, float, str]]:
    """The rows of the original README's table: PID, min_RSS, max_RSS, spread, CMD."""
    return [
        (int(pid), float(low), float(high), float(spread), str(cmd))
        for pid, low, high, spread, cmd in zip(
            top["PID"], top["min_RSS"], top["max_RSS"], top["spread"], top["CMD"], strict=True
        )
    ]


def top_blocks(part: ProcessPart | Missing) -> tuple[Block, ...]:
    if isinstance(part, Missing):
        return (missing("RSS spread table", part),)
    result = part.result
    match = result.options.match
    matching = f" whose command line contains {match!r}" if match is not None else ""
    lead = (
        f"The top {len(result.top)} of {plural(result.pids, 'PID')}{matching} by RSS spread"
        " (max - min RSS; a reused PID shares one row), largest first"
        f" (top{result.options.top_n}_rss_spread.csv)."
    )
    rows = [
        [
            Cell(str(pid), pid),
            *(Cell(three_decimals(value), value) for value in values),
            Cell(cmd, css="cmd"),
            thumbnail_cell(plot.name, plot.png, f"PID {pid}"),
        ]
        for (pid, *values, cmd), plot in zip(spread_rows(result.top), part.pid_plots, strict=True)
    ]
    table = Table(TOP_COLUMNS, rows, sorted_by=3)
    return Paragraph(lead), table


def services_part(part: ProcessPart | Missing) -> tuple[Block, ...]:
    """The Services section: the services of the cgroup snapshots."""
    if isinstance(part, Missing):
        return (missing("services", part),)
    found = part.result.services
    drawn = () if found is None else found.plots
    thumbnails = {
        plot.cgroup: thumbnail_cell(png.name, png.png, plot.service)
        for plot, png in zip(drawn, part.service_plots, strict=False)
    }
    return services_blocks(found, thumbnails)


# --- Programs -----------------------------------------------------------------------------


def programs_blocks(part: ProcessPart | Missing) -> tuple[Block, ...]:
    if isinstance(part, Missing):
        return (missing("program totals", part),)
    return program_blocks(part.result.programs)


# --- The OOM killer ----------------------------------------------------------------------


def oom_findings(data: ReportData) -> OomFindings | None:
    """The process analysis' OOM victims, when it ran and the dumps carry the counter."""
    return data.processes.result.ooms if isinstance(data.processes, ProcessPart) else None


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
    because = []
    if leak_alert_holds(leaks):
        because.append(f"{plural(leaks, 'process instance')} {'leaks' if leaks == 1 else 'leak'}")
    services = part.result.services
    if services is not None and leak_alert_holds(len(services.leaks)):
        names = ", ".join(service.service for service in services.leaks)
        because.append(f"services leak as a whole: {names}")
    if because:
        return [command, str(EXIT_ALERT), "; ".join(because)]
    return [command, str(EXIT_OK), "no process instance shows sustained growth"]


def pct_alert(result: SystemResult, flags: str) -> list[str]:
    return [
        f"analyze_system.py{flags} {PCT_ALERT.flag} {PCT_ALERT.metavar}",
        f"{EXIT_ALERT} for {PCT_ALERT.holds_for(result.latest_pct)}, else {EXIT_OK}",
        pct_fact(result.summary, result.latest_pct),
    ]


def days_alert(result: SystemResult, flags: str) -> list[str]:
    command = f"analyze_system.py{flags} {DAYS_ALERT.flag} {DAYS_ALERT.metavar}"
    forecast = result.summary.forecast
    days, fact = alert_days(forecast), zero_fact(forecast)
    if days is None or fact is None:
        return [command, f"{EXIT_OK} for any {DAYS_ALERT.metavar}", describe_forecast(forecast)]
    return [command, f"{EXIT_ALERT} for {DAYS_ALERT.holds_for(days)}, else {EXIT_OK}", fact]


def oom_alert_row(part: ProcessPart | Missing, window: TimeWindow) -> list[str]:
    command = f"analyze_processes.py{window_flags(window)} --fail-on-oom"
    if isinstance(part, Missing):
        return [command, str(EXIT_NO_DATA), f"no data: {part.reason}"]
    findings = part.result.ooms
    if findings is None:
        return [command, str(EXIT_OK), "the dumps carry no OOM counter"]
    if oom_alert_holds(len(findings.kills)):
        return [command, str(EXIT_ALERT), f"{plural(len(findings.kills), 'OOM kill')}"]
    return [command, str(EXIT_OK), "no OOM kill in the window"]


def status_css(status: str) -> str:
    return "status alert" if status == str(EXIT_ALERT) else "status"


def alert_rows(data: ReportData) -> list[list[str]]:
    """Each alert's row: the command, the exit status it would give, and why."""
    rows = [leak_alert(data.processes, data.window), oom_alert_row(data.processes, data.window)]
    if isinstance(data.processes, ProcessPart):
        service_row = days_alert_row(data.processes.result.services, window_flags(data.window))
        rows += [] if service_row is None else [service_row]
    flags = window_flags(data.window)
    if isinstance(data.system, SystemPart):
        rows += [pct_alert(data.system.result, flags), days_alert(data.system.result, flags)]
    else:
        reason = f"no data: {data.system.reason}"
        alerts = ("--alert-pct P", "--alert-days D")
        rows += [
            [f"analyze_system.py{flags} {alert}", str(EXIT_NO_DATA), reason] for alert in alerts
        ]
    return rows


def alerts_blocks(rows: list[list[str]]) -> tuple[Block, ...]:
    columns = (Column("command"), Column("exit status"), Column("because"))
    cells = [
        [Cell(row[0], css="command"), Cell(row[1], css=status_css(row[1])), Cell(row[2])]
        for row in rows
    ]
    lead = (
        "This report's own exit status is 0 whatever the alerts: they belong to the analyses'"
        " own flags. On these snapshots they would give:"
    )
    return Paragraph(lead), Table(columns, cells, css="small alerts")


# --- The page ------------------------------------------------------------------------------

SECTIONS = (
    ("answers", "The answers"),
    ("analysed", "What was analysed"),
    ("oom", "OOM kills"),  # only when there are some
    ("system", "System memory"),
    ("system-plots", "System plots"),
    ("leaks", "Leaks: sustained growth"),
    ("programs", "Programs by growth"),
    ("services", "Services"),
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
    alerts = alert_rows(data)
    system = data.system.result if isinstance(data.system, SystemPart) else None
    processes = data.processes.result if isinstance(data.processes, ProcessPart) else None
    oom_section = findings is not None and bool(findings.kills)
    bodies = {
        "answers": (answers_block(system, processes, alerts, oom_section),),
        "analysed": analysed_blocks(data),
        "oom": oom_blocks(findings) if findings is not None and oom_section else (),
        "system": system_blocks(data.system),
        "system-plots": system_plots_blocks(data.system),
        "leaks": leaks_blocks(data.processes),
        "programs": programs_blocks(data.processes),
        "services": services_part(data.processes),
        "top": top_blocks(data.processes),
        "alerts": alerts_blocks(alerts),
    }
    sections = tuple(
        Section(anchor, title, bodies[anchor]) for anchor, title in SECTIONS if bodies[anchor]
    )
    title = f"Memory report: {data.dumps_dir}"
    return render_page(Page(title, span_text(data), str(data.dumps_dir), sections, LEAK_COLOR))
