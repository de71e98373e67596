"""Process analysis: per-PID RSS spread (the original README's table), per-instance
sustained growth (the leak finder), and their plots.

The rows are never held as a table: process_records reduces each batch of files as it is
read (compact rows for the plots, per-instance aggregates, 6-hour floors).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import NamedTuple

import numpy as np
import numpy.typing as npt
import pandas as pd
from matplotlib.axes import Axes

from utils.console import EXIT_ALERT, Phase, Session, UsageError
from utils.core.atomic_files import write_table_csv
from utils.core.text import aligned_table, format_duration, plural, shorten
from utils.core.units import DAY_S
from utils.judge.breakdown import Period, check_periods, default_periods
from utils.judge.growth import (
    FloorTable,
    Growth,
    GrowthParams,
    InstanceSpans,
    coarsened,
    floor_level,
    min_span_for,
    span_text,
    survey,
)
from utils.judge.oom import OomFindings, find_victims, format_findings, kill_moments
from utils.judge.program_growth import ProgramFindings, format_programs, program_growth
from utils.outputs import plotting
from utils.outputs.plotting import PlotCall
from utils.parser import (
    DISPLAY_FORMAT,
    PROCESS_PREFIX,
    SYS_PREFIX,
    Bundle,
    DumpsDirError,
    NoDataError,
    Source,
    Where,
    find_sources,
    to_epoch_s,
)
from utils.read.threaded_reader import (
    BATCH_BYTES,
    Kind,
    Progress,
    Reader,
    TableSpec,
    Warn,
    discover_and_read,
)
from utils.reduce.buckets import BUCKET_S
from utils.reduce.counters import OomInterval, oom_intervals
from utils.reduce.process_records import MILLI, Floors, InstanceTable, ProcessRecords
from utils.system_analysis import load_system_frame, oom_alert

# The original README's columns, and what newer dumps add: anon + swap and the start time.
PROCESS_SPEC = TableSpec(
    columns=(("PID", Kind.INT), ("PPID", Kind.INT), ("RSS_MB", Kind.FLOAT), ("CMD", Kind.TEXT)),
    optional=("ANON_MB", "SWAP_MB"),
    optional_text=("STARTED",),
)
# --group-by user reads USER as well (a categorical: one string per user and batch)...
PROCESS_SPEC_WITH_USER = TableSpec(
    columns=(*PROCESS_SPEC.columns, ("USER", Kind.TEXT)),
    optional=PROCESS_SPEC.optional,
    optional_text=PROCESS_SPEC.optional_text,
)
# ... and the Prometheus labels too, but where a file lacks it the label is empty: the flag
# never turns a file the analysis reads into a bad one.
PROCESS_SPEC_USER_LABEL = TableSpec(
    columns=PROCESS_SPEC.columns,
    optional=PROCESS_SPEC.optional,
    optional_text=(*PROCESS_SPEC.optional_text, "USER"),
)
SPREAD_COLUMNS: tuple[str, ...] = ("PID", "min_RSS", "max_RSS", "spread", "CMD")
LEAK_COLUMNS: tuple[str, ...] = (
    "PID",
    "first_seen",
    "last_seen",
    "since",
    "growth_MB_per_day",
    "growth_MB",
    "confidence",
    "CMD",
    "basis",
)
# What the leak finder judged: the memory the process owns wherever the kernel keeps it
# (RssAnon + VmSwap) where every row has it, else RSS (dumps of an older collector).
BASIS_FOOTPRINT = "anon+swap"
BASIS_RSS = "RSS"
LEAKS_CSV = "leaks.csv"
PLOT_NAME = "rss_pid_{pid}.png"
LEAK_PLOT_NAME = "leak_{pid}_{first:%Y%m%d_%H%M%S}.png"
_PLOT_NAME_RE = re.compile(r"rss_pid_([0-9]+)\.png")
_LEAK_PLOT_NAME_RE = re.compile(r"leak_[0-9]+_[0-9]{8}_[0-9]{6}\.png")
_TABLE_NAME_RE = re.compile(r"top[0-9]+_rss_spread\.csv")
# The dumps carry 3 decimals: spreads are compared at that precision (exactly, as
# integer thousandths), so that 0.3 - 0.1 and 0.2 - 0.0 are the same spread and ties
# fall to the lower PID.
DECIMALS = 3
CONSOLE_CMD_WIDTH = 60
TITLE_CMD_WIDTH = 70
LEAK_COLOR = "#c0392b"
FOOTPRINT_COLOR = "#7d3c98"
FLOOR_COLOR = "#555555"

Series = tuple[npt.NDArray[np.datetime64], npt.NDArray[np.float64]]


def load_all_records(
    files: Sequence[Source],
    warn: Warn,
    progress: Progress | None = None,
    match: str | None = None,
    batch_bytes: int = BATCH_BYTES,
) -> ProcessRecords:
    """Read every process snapshot (bad files are reported through warn and left out), with
    floors as fine as the leak finder's defaults may need on these files."""
    level = planned_floor_level(files, GrowthParams())
    return read_into(ProcessRecords(match, level), files, warn, progress, batch_bytes)


def read_into(
    records: ProcessRecords,
    files: Sequence[Source],
    warn: Warn,
    progress: Progress | None = None,
    batch_bytes: int = BATCH_BYTES,
) -> ProcessRecords:
    """Read every process snapshot into records (made with its --match and floor level)."""
    if records.group_by == "user":
        spec = PROCESS_SPEC_WITH_USER
    else:
        spec = PROCESS_SPEC_USER_LABEL if records.read_users else PROCESS_SPEC
    reader = Reader(spec, warn, progress, batch_bytes)
    for runs in reader.reduced(files, records.reduce):
        records.add(runs)
    return records


def planned_floor_level(files: Sequence[Source], params: GrowthParams) -> int:
    """The finest floors the leak finder may judge on, from the names of the files alone
    (read before any file is): the collection's span, and the interval of its loose files
    (a bundle's members are not listed before it is read: its whole day counts)."""
    stamps: list[int] = []
    loose: list[int] = []
    for source in files:
        if isinstance(source, Bundle):
            start = to_epoch_s(source.timestamp)
            stamps += [start, start + DAY_S - 1]
        else:
            stamps.append(source.epoch_s)
            loose.append(source.epoch_s)
    if not stamps:
        return 0
    steps = np.diff(np.array(sorted(loose), dtype=np.int64))
    steps = steps[steps > 0]
    interval = float(np.median(steps)) if steps.size else None
    min_span = min_span_for(params, float(max(stamps) - min(stamps)), interval or 1.0)
    return floor_level(min_span, interval)


def compute_rss_spread(records: ProcessRecords) -> pd.DataFrame:
    """Per PID: min_RSS, max_RSS, spread = max - min (MiB) and the earliest CMD,
    largest spread first, equal spreads by PID ascending.

    As in the original README, the key is the PID alone: when the kernel reuses a PID, the two
    processes (two instances) share one row, with the earlier one's CMD.
    """
    table = records.instances()
    if len(table.pid) == 0:
        return pd.DataFrame({name: [] for name in SPREAD_COLUMNS})
    order = np.lexsort((table.first_rank, table.pid))  # each PID's earliest instance first
    pid = table.pid[order]
    starts = np.flatnonzero(np.r_[True, pid[1:] != pid[:-1]])
    low = np.minimum.reduceat(table.min_milli[order], starts)
    high = np.maximum.reduceat(table.max_milli[order], starts)
    spread = high - low
    ranking = np.lexsort((pid[starts], -spread))
    return pd.DataFrame(
        {
            "PID": pid[starts][ranking],
            "min_RSS": low[ranking] / MILLI,
            "max_RSS": high[ranking] / MILLI,
            "spread": spread[ranking] / MILLI,
            "CMD": [records.commands[code] for code in table.cmd[order][starts][ranking]],
        }
    )


def top_spreads(spreads: pd.DataFrame, n: int) -> pd.DataFrame:
    return spreads.head(n).reset_index(drop=True)


# --- Growth (leaks) ----------------------------------------------------------------


@dataclass(frozen=True)
class Leak:
    """A process instance whose memory shows sustained growth."""

    pid: int
    first_seen: datetime  # UTC, the instance's first and last snapshot
    last_seen: datetime
    since: datetime  # where the growth starts
    growth_mb_per_day: float
    growth_mb: float  # fitted growth from `since` to `last_seen`
    confidence: float  # 0..1, how clean the trend is
    cmd: str  # of the instance's first row
    instance: int  # for the plots: the instance's number in the records...
    first_rank: int  # ... and its first and last snapshot read
    last_rank: int
    start_mb: float  # the fitted line's level at `since`
    bucket_s: float  # the length of the floors it was judged on: its time scale
    basis: str = BASIS_RSS  # what was judged: BASIS_FOOTPRINT or BASIS_RSS
    user: str | None = None  # of its first row; None: USER not read (not in leaks.csv)


@dataclass(frozen=True)
class LeakSurvey:
    """The leaking instances, and how many of all instances were watched long enough to be
    judged at all (for at least min_span_s)."""

    leaks: list[Leak]
    judged: int
    instances: int
    min_span_s: float


def find_leaks(records: ProcessRecords, params: GrowthParams) -> LeakSurvey:
    """The instances with sustained growth, highest rate first (equal rates, at the
    CSV's 3 decimals, by PID), and how many were judged."""
    table = records.instances()
    interval_s = plotting.usual_interval_s(records.times)
    if len(table.pid) == 0 or interval_s is None:
        return LeakSurvey([], 0, len(table.pid), min_span_for(params, 0.0, interval_s or 1.0))
    times_s = records.times.astype(np.int64)
    floors = judged_floors(records, table)
    survey_ = survey(
        FloorTable(
            instance=np.searchsorted(table.number, floors.instance),
            bucket=floors.bucket,
            floor_mb=floors.low_milli / MILLI,
            samples=floors.samples,
            level=records.level,
        ),
        InstanceSpans(
            first_s=times_s[table.first_rank],
            last_s=times_s[table.last_rank],
            samples=table.samples,
            collection_s=float(times_s[-1] - times_s[0]),
        ),
        interval_s,
        params,
    )
    leaks = [_leak(records, table, growth) for growth in survey_.growths]
    leaks.sort(key=lambda leak: (-round(leak.growth_mb_per_day, DECIMALS), leak.pid))
    return LeakSurvey(leaks, survey_.judged, survey_.instances, survey_.min_span_s)


def footprint_judged(table: InstanceTable) -> npt.NDArray[np.bool_]:
    """Per instance: is its anon + swap judged (every kept row has it), not its RSS?

    Leaked pages are never touched again, so under memory pressure they are the first the
    kernel swaps out: RSS then stops rising while the leak goes on (atop(1) on RGROW: it
    "can also be negative ... when part of the process is paged out"). RssAnon + VmSwap is
    the anonymous memory the process owns, in RAM or in swap; file-backed pages, which the
    kernel drops and reads again at will, are left out."""
    judged: npt.NDArray[np.bool_] = (table.foot_samples == table.samples) & (table.samples > 0)
    return judged


def judged_floors(records: ProcessRecords, table: InstanceTable) -> Floors:
    """The floors the leak finder fits: anon + swap for the instances footprint_judged
    picks, RSS for the rest; by instance, then bucket."""
    footed = np.zeros(records.instance_count, bool)
    footed[table.number[footprint_judged(table)]] = True
    rss, foot = records.floors(), records.foot_floors()
    use_rss, use_foot = ~footed[rss.instance], footed[foot.instance]
    parts = [np.concatenate([a[use_rss], b[use_foot]]) for a, b in zip(rss, foot, strict=True)]
    order = np.lexsort((parts[1], parts[0]))
    return Floors(*(part[order] for part in parts))


def _leak(records: ProcessRecords, table: InstanceTable, growth: Growth) -> Leak:
    at = growth.instance
    return Leak(
        pid=int(table.pid[at]),
        first_seen=records.times[table.first_rank[at]].astype(datetime),
        last_seen=records.times[table.last_rank[at]].astype(datetime),
        since=np.datetime64(growth.since_s, "s").astype(datetime),
        growth_mb_per_day=growth.rate_mb_per_day,
        growth_mb=growth.growth_mb,
        confidence=growth.confidence,
        cmd=records.commands[int(table.cmd[at])],
        instance=int(table.number[at]),
        first_rank=int(table.first_rank[at]),
        last_rank=int(table.last_rank[at]),
        start_mb=growth.start_mb,
        bucket_s=growth.bucket_s,
        basis=BASIS_FOOTPRINT if footprint_judged(table)[at] else BASIS_RSS,
        user=records.user_of(int(table.number[at])),
    )


# --- The result ---------------------------------------------------------------


@dataclass(frozen=True)
class ProcessOptions:
    """What the user asked of the analysis (the defaults are the script's constants)."""

    top_n: int
    match: str | None
    growth: GrowthParams
    fail_on_leak: bool = False
    fail_on_oom: bool = False
    group_by: str = "program"  # --group-by: program totals by "program" or "user"
    compare: tuple[Period, Period] | None = None  # None: the first and the last day
    read_users: bool = False  # each leak's user, for the Prometheus labels


@dataclass(frozen=True)
class ProcessResult:
    """Everything the process analysis found; rendered as console text, CSVs, PNGs and
    HTML by the functions below and by the report."""

    records: ProcessRecords  # the series to plot
    options: ProcessOptions
    pids: int  # PIDs seen (after --match)
    top: pd.DataFrame  # the original README's table: the top N by RSS spread
    survey: LeakSurvey  # the leaks, highest rate first, and what was judged
    span: tuple[datetime, datetime]  # first and last snapshot with a row (after --match)
    alerts: list[str]
    ooms: OomFindings | None = None  # None: the dumps carry no OOM counter
    programs: ProgramFindings | None = None  # None: under two snapshots

    @property
    def leaks(self) -> list[Leak]:
        return self.survey.leaks

    @property
    def instances(self) -> int:
        """Process instances seen (after --match), judged or not."""
        return self.survey.instances


def process_result(
    records: ProcessRecords,
    options: ProcessOptions,
    phase: Phase,
    ooms: list[OomInterval] | None = None,
) -> ProcessResult:
    """The tables of loaded records (and the victims of the OOM kills the sys_mem files
    count); NoDataError when nothing is left to analyse. `phase(name)` times the ranking
    and the victims ("computing") and the leak finder ("growth")."""
    span = records.time_range()
    if span is None:
        raise NoDataError(f"no command line contains {options.match!r}")
    with phase("computing"):
        spreads = compute_rss_spread(records)
        findings = None if ooms is None else find_victims(records, ooms)
        programs = programs_of(records, options)
    with phase("growth"):
        leaks = find_leaks(records, options.growth)
    alerts = []
    if options.fail_on_leak and leaks.leaks:
        alerts.append(f"{len(leaks.leaks)} process instance(s) leak; exit status {EXIT_ALERT}")
    if options.fail_on_oom and ooms:
        alerts.append(f"{oom_alert(ooms)}; exit status {EXIT_ALERT}")
    return ProcessResult(
        records=records,
        options=options,
        pids=len(spreads),
        top=top_spreads(spreads, options.top_n),
        survey=leaks,
        span=span,
        alerts=alerts,
        ooms=findings,
        programs=programs,
    )


def programs_of(records: ProcessRecords, options: ProcessOptions) -> ProgramFindings | None:
    """The program totals over the two periods; UsageError when a --compare period holds
    no snapshot."""
    times = pd.DatetimeIndex(records.times)
    periods = options.compare or default_periods(times)
    if periods is None:
        return None
    problem = check_periods(times, periods)
    if problem is not None:
        raise UsageError(problem)
    return program_growth(records, *periods)


def compute_processes(where: Where, options: ProcessOptions, session: Session) -> ProcessResult:
    """Discover, read and compute; NoDataError when there is nothing to analyse."""
    records = discover_and_read(
        where,
        PROCESS_PREFIX,
        session,
        lambda files, warn, progress: read_into(
            ProcessRecords(
                options.match,
                planned_floor_level(files, options.growth),
                group_by=options.group_by,
                read_users=options.read_users,
            ),
            files,
            warn,
            progress,
        ),
        lambda loaded: loaded.snapshots_read == 0,
    )
    with session.timer.phase("reading"):
        ooms = read_oom_intervals(where, session.diagnostics.warn)
    return process_result(records, options, session.timer.phase, ooms)


def read_oom_intervals(where: Where, warn: Warn) -> list[OomInterval] | None:
    """The OOM kills the sys_mem files of the window count (their bad files are named as
    the system analysis names them); None when none of them has the counter."""
    try:
        files = find_sources(where.dumps_dir, SYS_PREFIX, where.window, warn)
    except DumpsDirError:  # the process files were read from it: gone meanwhile
        return None
    return oom_intervals(load_system_frame(files, warn)) if files else None


def format_result(result: ProcessResult) -> list[str]:
    """The console text of a result: the original README's table, then the leaks."""
    match = result.options.match
    matching = f" whose command line contains {match!r}" if match is not None else ""
    first, last = result.span
    lines = [
        f"Top {len(result.top)} of {result.pids:,} PIDs{matching} by RSS spread (MiB),"
        f" {result.records.snapshots_read:,} snapshots from {first:{DISPLAY_FORMAT}}"
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
    return [*lines, judged_sentence(result), "", *format_leak_table(result.leaks), *ooms]


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
        f"Sustained growth (leaks) in {len(found.leaks)} of the {found.judged:,} process"
        f" instances judged (of {found.instances:,}: {judged}), fastest first"
    )


# --- Output --------------------------------------------------------------------


def format_top_table(top: pd.DataFrame) -> list[str]:
    """An aligned console table; command lines shortened here only, never in the CSV."""
    numbers = [
        (str(row.PID), f"{row.min_RSS:,.3f}", f"{row.max_RSS:,.3f}", f"{row.spread:,.3f}")
        for row in top.itertuples()
    ]
    header = ("PID", "min_RSS", "max_RSS", "spread")
    commands = [shorten(str(cmd), CONSOLE_CMD_WIDTH) for cmd in top["CMD"]]
    return aligned_table(header, numbers, "CMD", commands)


def write_spread_csv(top: pd.DataFrame, path: Path) -> Path:
    """Exactly the columns PID,min_RSS,max_RSS,spread,CMD; MiB with 3 decimals."""
    return write_table_csv(path, top[list(SPREAD_COLUMNS)], DECIMALS)


class Timeline(NamedTuple):
    """Every snapshot read, and the gap between two that means the collector was down."""

    times: npt.NDArray[np.datetime64]
    threshold_s: float | None

    @classmethod
    def of(cls, records: ProcessRecords) -> Timeline:
        return cls(records.times, plotting.gap_threshold_s(records.times))

    def shade(self, axes: Axes, series_times: npt.NDArray[np.datetime64]) -> None:
        """Shade the outages of the collector within a series' span."""
        inside = (self.times >= series_times[0]) & (self.times <= series_times[-1])
        plotting.shade_gaps(axes, self.times[inside], self.threshold_s)


class PidPlot(NamedTuple):
    """What one per-PID plot shows (picklable: it may be drawn in the plot worker)."""

    pid: int
    cmd: str
    series: Series
    swap_mb: npt.NDArray[np.float64] | None = None  # at the series' times, where any was used
    kills: npt.NDArray[np.datetime64] | None = None  # when the OOM killer ended it


def plot_pid(plot: PidPlot, timeline: Timeline, out_dir: Path) -> Path:
    """RSS over time of one PID; the line breaks where the PID was not seen, and
    stretches with no snapshots at all (collector down) are shaded."""
    pid, cmd = plot.pid, plot.cmd
    times, rss_mb = plot.series
    low, high = float(rss_mb.min()), float(rss_mb.max())
    figure, axes = plotting.new_figure()
    line = plotting.Line(times, rss_mb, f"RSS of PID {pid}", plotting.RAM_COLOR)
    plotting.plot_series(axes, line, timeline.threshold_s)
    top = high
    swap = "" if plot.swap_mb is None else f" · most swap {np.nanmax(plot.swap_mb):,.1f} MiB"
    if plot.swap_mb is not None:
        swapped = plotting.Line(times, plot.swap_mb, "in swap (VmSwap)", plotting.SWAP_COLOR)
        plotting.plot_series(axes, swapped, timeline.threshold_s)
        top = max(top, float(np.nanmax(plot.swap_mb)))
        if plot.kills is None:
            plotting.add_legend(axes)
    timeline.shade(axes, times)
    if plot.kills is not None:
        plotting.mark_ooms(axes, plot.kills)
        plotting.add_legend(axes)
    plotting.style_time_axis(axes, times)
    plotting.style_value_axis(axes, "RSS (MiB)" if plot.swap_mb is None else "MiB")
    axes.set_ylim(0, max(top * 1.08, 1.0))
    subtitle = (
        f"min {low:,.1f} · max {high:,.1f} · spread {high - low:,.1f} MiB"
        f"{swap} · {len(times):,} samples"
    )
    plotting.set_titles(axes, f"PID {pid}: {shorten(cmd, TITLE_CMD_WIDTH)}", subtitle)
    return plotting.save_figure(figure, out_dir / PLOT_NAME.format(pid=int(pid)))


def top_plots(
    records: ProcessRecords,
    top: pd.DataFrame,
    out_dir: Path,
    ooms: OomFindings | None = None,
) -> list[PlotCall]:
    """One PNG per PID of the table; the gap threshold comes from all snapshots read."""
    timeline = Timeline.of(records)
    killed = {kill.pid: kill.moment for kill in (ooms.kills if ooms else []) if kill.pid}
    return [
        (plot_pid, (pid_plot(records, int(pid), str(cmd), killed), timeline, out_dir))
        for pid, cmd in zip(top["PID"], top["CMD"], strict=True)
    ]


def pid_plot(
    records: ProcessRecords,
    pid: int,
    cmd: str,
    killed: Mapping[int, np.datetime64] | None = None,
) -> PidPlot:
    """A PID's RSS, its swap where a row shows some in use, and its OOM kill if any."""
    times, rss, _, swap = records.pid_memory(pid)
    used = bool((np.nan_to_num(swap) > 0).any())
    moment = (killed or {}).get(pid)
    kills = None if moment is None else np.array([moment], dtype="datetime64[s]")
    return PidPlot(pid, cmd, (times, rss), swap if used else None, kills)


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


def leaks_frame(leaks: Sequence[Leak]) -> pd.DataFrame:
    """The rows of leaks.csv: exactly LEAK_COLUMNS, times as text."""
    return pd.DataFrame(
        {
            "PID": [leak.pid for leak in leaks],
            "first_seen": [f"{leak.first_seen:{DISPLAY_FORMAT}}" for leak in leaks],
            "last_seen": [f"{leak.last_seen:{DISPLAY_FORMAT}}" for leak in leaks],
            "since": [f"{leak.since:{DISPLAY_FORMAT}}" for leak in leaks],
            "growth_MB_per_day": [leak.growth_mb_per_day for leak in leaks],
            "growth_MB": [leak.growth_mb for leak in leaks],
            "confidence": [leak.confidence for leak in leaks],
            "CMD": [leak.cmd for leak in leaks],
            "basis": [leak.basis for leak in leaks],
        },
        columns=list(LEAK_COLUMNS),
    )


def write_leaks_csv(leaks: Sequence[Leak], path: Path) -> Path:
    """Exactly LEAK_COLUMNS: times `YYYY-MM-DD HH:MM:SS` UTC, numbers with 3 decimals, CMD
    whole; only the header when nothing is flagged."""
    return write_table_csv(path, leaks_frame(leaks), DECIMALS)


class LeakPlot(NamedTuple):
    """What one leak plot shows (picklable: it may be drawn in the plot worker)."""

    pid: int
    cmd: str
    series: Series  # the instance's RSS
    footprint_mb: npt.NDArray[np.float64] | None  # its anon + swap at those times, if judged
    floor_start: npt.NDArray[np.datetime64]  # the buckets it was judged on...
    floor_mb: npt.NDArray[np.float64]  # ... and the lowest RSS (or anon + swap) in each
    bucket_s: float
    since: np.datetime64
    start_mb: float  # the fitted line's level at `since`
    rate_mb_per_day: float
    growth_mb: float
    confidence: float
    kills: npt.NDArray[np.datetime64] | None = None  # when the OOM killer ended it


def leak_plots(
    records: ProcessRecords, leaks: Sequence[Leak], ooms: OomFindings | None = None
) -> list[LeakPlot]:
    floors = judged_floors(records, records.instances())
    killed = kill_moments(ooms)
    plots: list[LeakPlot] = []
    for leak in leaks:
        times, rss, foot, _ = records.pid_memory(leak.pid, leak.first_rank, leak.last_rank)
        low, high = np.searchsorted(floors.instance, [leak.instance, leak.instance + 1])
        own = coarsened(
            FloorTable(
                instance=np.zeros(int(high - low), np.int64),
                bucket=floors.bucket[low:high],
                floor_mb=floors.low_milli[low:high] / MILLI,
                samples=floors.samples[low:high],
                level=records.level,
            ),
            np.array([leak.bucket_s]),
        )
        starts_ms = np.rint(own.bucket * leak.bucket_s * 1000).astype(np.int64)
        plots.append(
            LeakPlot(
                pid=leak.pid,
                cmd=leak.cmd,
                series=(times, rss),
                footprint_mb=foot if leak.basis == BASIS_FOOTPRINT else None,
                floor_start=starts_ms.astype("datetime64[ms]"),
                floor_mb=own.floor_mb,
                bucket_s=leak.bucket_s,
                since=np.datetime64(leak.since, "s"),
                start_mb=leak.start_mb,
                rate_mb_per_day=leak.growth_mb_per_day,
                growth_mb=leak.growth_mb,
                confidence=leak.confidence,
                kills=killed.get(leak.instance),
            )
        )
    return plots


def rate_text(mb_per_day: float, bucket_s: float) -> str:
    """A leak's rate as its time scale reads best: MiB/day for one judged on 6-hour floors,
    MiB/h for one judged on shorter ones (a soak test)."""
    if bucket_s >= BUCKET_S:
        return f"{mb_per_day:,.1f} MiB/day"
    return f"{mb_per_day / 24:,.1f} MiB/h"


def _leak_lines(axes: Axes, leak: LeakPlot, timeline: Timeline) -> tuple[str, float]:
    """Draw the RSS, and the anon + swap when that was judged; what was judged, and the
    highest value drawn."""
    times, rss_mb = leak.series
    line = plotting.Line(times, rss_mb, f"RSS of PID {leak.pid}", plotting.RAM_COLOR)
    plotting.plot_series(axes, line, timeline.threshold_s)
    if leak.footprint_mb is None:
        return BASIS_RSS, float(rss_mb.max())
    footprint = plotting.Line(
        times, leak.footprint_mb, "anon + swap (RssAnon + VmSwap)", FOOTPRINT_COLOR
    )
    plotting.plot_series(axes, footprint, timeline.threshold_s)
    return BASIS_FOOTPRINT, max(float(rss_mb.max()), float(np.nanmax(leak.footprint_mb)))


def plot_leak(leak: LeakPlot, timeline: Timeline, out_dir: Path) -> Path:
    """An instance's RSS (and anon + swap, when that was judged: RSS may stay flat while
    the footprint rises, in swap), the floors it was judged on and the fitted growth from
    `since`."""
    times = leak.series[0]
    figure, axes = plotting.new_figure()
    judged, top = _leak_lines(axes, leak, timeline)
    bucket = np.timedelta64(round(leak.bucket_s * 1000), "ms")
    axes.hlines(
        leak.floor_mb,
        np.maximum(leak.floor_start, times[0]),
        np.minimum(leak.floor_start + bucket, times[-1]),
        colors=FLOOR_COLOR,
        linewidth=2.2,
        label=f"lowest {judged} per {format_duration(leak.bucket_s)}",
    )
    fit_end_mb = leak.start_mb + leak.growth_mb
    axes.plot(
        [leak.since, times[-1]],
        [leak.start_mb, fit_end_mb],
        color=LEAK_COLOR,
        linestyle="--",
        linewidth=1.8,
        label=f"growth {rate_text(leak.rate_mb_per_day, leak.bucket_s)}",
    )
    timeline.shade(axes, times)
    if leak.kills is not None:
        plotting.mark_ooms(axes, leak.kills)
    plotting.style_time_axis(axes, times)
    plotting.style_value_axis(axes, "RSS (MiB)" if leak.footprint_mb is None else "MiB")
    axes.set_ylim(0, max(top, fit_end_mb) * 1.08)
    plotting.add_legend(axes)
    since, last = pd.Timestamp(leak.since), pd.Timestamp(times[-1])
    clock = "%Y-%m-%d %H:%M" if leak.bucket_s >= BUCKET_S else "%Y-%m-%d %H:%M:%S"
    subtitle = (
        f"{judged} grows {rate_text(leak.rate_mb_per_day, leak.bucket_s)} since"
        f" {since:{clock}} UTC:"
        f" +{leak.growth_mb:,.0f} MiB by {last:{clock}}"
        f" · confidence {leak.confidence:.2f} · {len(times):,} samples"
    )
    plotting.set_titles(axes, f"PID {leak.pid}: {shorten(leak.cmd, TITLE_CMD_WIDTH)}", subtitle)
    name = LEAK_PLOT_NAME.format(pid=leak.pid, first=pd.Timestamp(times[0]))
    return plotting.save_figure(figure, out_dir / name)


def leak_plot_calls(
    records: ProcessRecords,
    leaks: Sequence[Leak],
    out_dir: Path,
    ooms: OomFindings | None = None,
) -> list[PlotCall]:
    """One PNG per flagged instance."""
    timeline = Timeline.of(records)
    return [(plot_leak, (leak, timeline, out_dir)) for leak in leak_plots(records, leaks, ooms)]


def remove_stale_outputs(out_dir: Path, keep: Sequence[Path], keep_csv: str) -> list[Path]:
    """Delete what an earlier run left that this one did not write: rss_pid_<PID>.png and
    leak_<PID>_<time>.png files not in `keep`, and top<N>_rss_spread.csv of another N,
    so the folder matches the tables."""
    kept = {path.name for path in keep}
    removed: list[Path] = []
    for entry in os.scandir(out_dir):
        plot = _PLOT_NAME_RE.fullmatch(entry.name) or _LEAK_PLOT_NAME_RE.fullmatch(entry.name)
        stale_plot = plot is not None and entry.name not in kept
        stale_table = _TABLE_NAME_RE.fullmatch(entry.name) is not None and entry.name != keep_csv
        if stale_plot or stale_table:
            Path(entry.path).unlink(missing_ok=True)
            removed.append(Path(entry.path))
    return sorted(removed)
