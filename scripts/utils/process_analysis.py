"""Process analysis: per-PID RSS spread (the original README's table), per-instance
sustained growth (the leak finder), the programs that grew and the OOM killer's victims.

This facade only orchestrates: discover the files once, read them into the records
(utils.reduce.process_records reduces each batch as it is read), compute each thing the
judges need once (the instance table, the floors, the group totals), then hand a
ProcessResult, which holds none of the records, to the outputs.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import NamedTuple

import pandas as pd

from utils.console import EXIT_ALERT, Phase, Session, UsageError
from utils.core import allocator
from utils.core.text import plural
from utils.judge.alerts import leak_alert_holds, oom_alert, oom_alert_holds, oom_kill_count
from utils.judge.breakdown import check_periods, default_periods
from utils.judge.gaps import usual_interval_s
from utils.judge.leaks import (
    Judged,
    LeakSurvey,
    find_leaks,
    leak_plots,
    planned_floor_level,
)
from utils.judge.oom import OomFindings, find_victims, kill_moments
from utils.judge.process_result import PlotData, ProcessOptions, ProcessResult
from utils.judge.program_growth import (
    ProgramFindings,
    ProgramSeries,
    grown,
    program_growth,
    program_series,
)
from utils.judge.program_leaks import judged_lives, program_leaks
from utils.judge.service_alerts import service_alerts
from utils.judge.services import ServiceFindings, find_services
from utils.judge.spreads import pid_plots, rss_spread, spread_ranking
from utils.parser import (
    CGROUP_PREFIX,
    PROCESS_PREFIX,
    SYS_PREFIX,
    NoDataError,
    Source,
    Where,
    find_sources,
    list_dir,
)
from utils.read.cgroup_specs import CGROUP_SPEC, cgroup_frame
from utils.read.day_workers import DayWorkers
from utils.read.snapshot_specs import SYSTEM_SPEC, process_spec, system_frame
from utils.read.threaded_reader import BATCH_BYTES, Progress, Reader, Warn, discover_and_read
from utils.reduce.counters import OOM_FIELDS, OomInterval, oom_intervals
from utils.reduce.day_summaries import SummaryPlace, place_of
from utils.reduce.group_totals import GroupTotals
from utils.reduce.limit_hits import with_limit_hits
from utils.reduce.log_kills import with_kernel_logs
from utils.reduce.process_records import Floors, InstanceTable, ProcessRecords
from utils.reduce.summary_kinds import cgroup_batches, process_runs, system_columns

# The scripts' and the report's way in: the options and the result are the facade's too.
__all__ = [
    "ProcessOptions",
    "ProcessResult",
    "compute_processes",
    "compute_rss_spread",
    "load_all_records",
    "process_result",
]


class ReadPlan(NamedTuple):
    """How the snapshots are read: the bytes parsed at once, and where the day summaries
    are kept (None: none)."""

    batch_bytes: int = BATCH_BYTES
    place: SummaryPlace | None = None
    workers: DayWorkers | None = None  # worker processes that read whole days


READ_PLAN = ReadPlan()


def load_all_records(
    files: Sequence[Source],
    warn: Warn,
    progress: Progress | None = None,
    options: ProcessOptions | None = None,
    how: ReadPlan = READ_PLAN,
) -> ProcessRecords:
    """Read every process snapshot (bad files are reported through warn and left out) as
    `options` (None: the defaults) ask: rows whose CMD contains its --match, floors as fine
    as its leak finder may need on these files, totals by its --group-by, and each
    instance's USER for the Prometheus labels. The closed days that have a day summary at
    `how.place` are taken from it, and those that have none get one."""
    options = ProcessOptions() if options is None else options
    records = ProcessRecords(
        options.match,
        planned_floor_level(files, options.growth),
        group_by=options.group_by,
        read_users=options.read_users,
    )
    spec = process_spec(options.group_by, options.read_users)
    reader = Reader(spec, warn, progress, how.batch_bytes, workers=how.workers)
    for runs in process_runs(files, records, reader, how.place):
        records.add(runs)
    records.end_reading()
    return records


def compute_rss_spread(records: ProcessRecords, table: InstanceTable | None = None) -> pd.DataFrame:
    """Per PID: min_RSS, max_RSS, spread = max - min (MiB) and the earliest CMD, largest
    spread first, equal spreads by PID ascending (utils.judge.spreads); table is
    records.instances() when the caller has it."""
    return rss_spread(records.instances() if table is None else table, records.commands)


def compute_processes(
    where: Where, options: ProcessOptions, session: Session, workers: DayWorkers | None = None
) -> ProcessResult:
    """Discover, read (the days in `workers`, if any, ended once read) and compute;
    NoDataError when there is nothing to analyse."""
    records, ooms, services = read_inputs(where, options, session, workers)
    if workers is not None:
        workers.close()  # before the plots: their memory is the tree's
    with session.timer.phase("growth"):  # the services are judged by the leak finder too
        plot_top = options.top_n if options.plots else 0
        findings = find_services(services, options.growth, plot_top)
    return process_result(records, options, session.timer.phase, ooms, findings)


def read_inputs(
    where: Where, options: ProcessOptions, session: Session, workers: DayWorkers | None = None
) -> tuple[ProcessRecords, list[OomInterval] | None, pd.DataFrame]:
    """The process records, the OOM intervals and the cgroup rows. The listing and the
    sources found in it are let go on return, not held through the tables (a year's
    listing is a name per file, its sources a path and a time each)."""
    with session.timer.phase("discovery"):
        # Listed once, for the process and the sys_mem files.
        where = where._replace(entries=list_dir(where.dumps_dir))
    place = place_of(where, session.diagnostics.note)
    records = discover_and_read(
        where,
        PROCESS_PREFIX,
        session,
        lambda files, warn, progress: load_all_records(
            files, warn, progress, options, ReadPlan(place=place, workers=workers)
        ),
        lambda loaded: loaded.snapshots_read == 0,
    )
    with session.timer.phase("reading"):
        warn = session.diagnostics.warn
        files = find_sources(where.dumps_dir, SYS_PREFIX, where.window, warn, where.entries)
        counters = system_columns(
            files, Reader(SYSTEM_SPEC, warn, workers=workers), place, OOM_FIELDS
        )
        frame = system_frame(counters)
        ooms = oom_intervals(frame) if files else None
        times = frame.index.to_numpy() if files else records.times
        del counters, frame  # a year's sys_mem rows: not held through the tables below
        ooms = with_kernel_logs(ooms, times, options.kernel_logs, where.dumps_dir, warn)
        found = find_sources(where.dumps_dir, CGROUP_PREFIX, where.window, warn, where.entries)
        services = cgroup_frame(
            cgroup_batches(found, Reader(CGROUP_SPEC, warn, workers=workers), place)
        )
        ooms = with_limit_hits(ooms, services)
    return records, ooms, services


def process_result(
    records: ProcessRecords,
    options: ProcessOptions,
    phase: Phase,
    ooms: list[OomInterval] | None = None,
    services: ServiceFindings | None = None,
) -> ProcessResult:
    """The tables of loaded records (and the victims of the OOM kills the sys_mem files
    count); NoDataError when nothing is left to analyse. `phase(name)` times the ranking
    and the victims ("computing") and the leak finder ("growth")."""
    table = records.instances()  # once: every judge below reads this one
    span = time_range(records, table)
    if span is None:
        raise NoDataError(f"no command line contains {options.match!r}")
    with phase("computing"):
        ranking = spread_ranking(table, records.commands, options.top_n)
        findings = None if ooms is None else find_victims(records, table, ooms)
        programs = programs_of(records, table, options)
    with phase("growth"):
        interval_s = usual_interval_s(records.times)
        judged = Judged.of(records, table, interval_s, options.growth)
        records.release_floors()
        allocator.trim()  # the floors of the instances not judged were let go
        survey = find_leaks(records, judged, interval_s, options.growth)
        lives = judged_lives(records, table, survey.min_span_s)
    top = ranking.top
    plots = PlotData()
    if options.plots:
        plots = plot_data(records, judged.floors, (top, survey, findings), programs, options)
    return ProcessResult(
        options=options,
        snapshots_read=records.snapshots_read,
        times=records.times,
        pids=ranking.pids,
        top=top,
        survey=survey,
        span=span,
        alerts=alerts_of(options, survey, ooms) + service_alerts(options, services),
        ooms=findings,
        programs=None if programs is None else programs[0],
        plots=plots,
        services=services,
        program_leaks=tuple(program_leaks(survey.leaks, lives)),
    )


def time_range(records: ProcessRecords, table: InstanceTable) -> tuple[datetime, datetime] | None:
    """The first and last snapshot with a kept row; None when no row was kept."""
    if len(table.number) == 0:
        return None
    return (
        records.times[int(table.first_rank.min())].astype(datetime),
        records.times[int(table.last_rank.max())].astype(datetime),
    )


def programs_of(
    records: ProcessRecords, table: InstanceTable, options: ProcessOptions
) -> tuple[ProgramFindings, GroupTotals] | None:
    """The program totals over the two periods, with the totals they were computed from
    (the plots read them too); UsageError when a --compare period holds no snapshot."""
    times = pd.DatetimeIndex(records.times)
    periods = options.compare or default_periods(times)
    if periods is None:
        return None
    problem = check_periods(times, periods)
    if problem is not None:
        raise UsageError(problem)
    totals, bases = records.pss.applied(records.group_totals())  # PSS where every row has it
    return program_growth(records, table, totals, periods, bases), totals


def alerts_of(
    options: ProcessOptions, survey: LeakSurvey, ooms: list[OomInterval] | None
) -> list[str]:
    """The lines of --fail-on-leak and --fail-on-oom that hold."""
    alerts = []
    if options.fail_on_leak and leak_alert_holds(len(survey.leaks)):
        count = len(survey.leaks)
        verb = "leaks" if count == 1 else "leak"
        alerts.append(f"{plural(count, 'process instance')} {verb}; exit status {EXIT_ALERT}")
    if options.fail_on_oom and ooms and oom_alert_holds(oom_kill_count(ooms)):
        alerts.append(f"{oom_alert(ooms)}; exit status {EXIT_ALERT}")
    return alerts


def plot_data(
    records: ProcessRecords,
    floors: Floors,
    found: tuple[pd.DataFrame, LeakSurvey, OomFindings | None],
    programs: tuple[ProgramFindings, GroupTotals] | None,
    options: ProcessOptions,
) -> PlotData:
    """The series each plot draws: the top PIDs', the leaks' with their judged floors, and
    the totals of the programs that grew most; each victim's kill marked."""
    top, survey, findings = found
    kills = [] if findings is None else findings.kills
    killed = {kill.pid: kill.moment for kill in kills if kill.pid}
    series: tuple[ProgramSeries, ...] = ()
    if programs is not None:
        shown = grown(programs[0])[: options.program_plots]
        series = program_series(records.times, programs[1], shown)
    records.read_rows_of([*top["PID"].tolist(), *(leak.pid for leak in survey.leaks)])
    return PlotData(
        pids=pid_plots(records, top, killed),
        leaks=leak_plots(records, floors, survey.leaks, kill_moments(findings)),
        programs=series,
    )
