"""The system analysis, stage by stage: discover and read the sys_mem snapshots, compute the
metrics and judge them (judge/system_metrics.py, judge/alerts.py), then hand the result to
the outputs (outputs/system_console.py, outputs/system_tables.py; the scripts draw with
outputs/system_plots.py, so that a run without plots never loads matplotlib).

This module only says what is read and in which order the stages run; the names the entry
scripts, the report and the process analysis take from it are re-exported below.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

from utils.console import Session, UsageError
from utils.judge import breakdown as parts
from utils.judge.alerts import check_alerts, oom_alert, pct_fact, zero_fact
from utils.judge.breakdown import BREAKDOWN_CSV
from utils.judge.system_metrics import (
    SUMMARY_ROWS,
    USED_DEFINITIONS,
    SystemOptions,
    SystemResult,
    breakdown_note,
    compute_metrics,
    missing_field_notes,
    summarize,
)
from utils.outputs.system_console import describe_forecast, format_summary
from utils.outputs.system_tables import (
    FORECAST_JSON,
    METRICS_CSV,
    write_forecast_json,
    write_metrics_csv,
)
from utils.parser import CGROUP_PREFIX, SYS_PREFIX, Source, TimeWindow, Where, find_sources
from utils.read.cgroup_specs import CGROUP_SPEC, cgroup_frame
from utils.read.snapshot_specs import SYSTEM_SPEC, system_frame
from utils.read.threaded_reader import Progress, Reader, Warn, discover_and_read
from utils.reduce.counters import OomInterval, oom_intervals
from utils.reduce.day_summaries import SummaryPlace, place_of
from utils.reduce.limit_hits import unnamed_kills, with_limit_hits
from utils.reduce.log_kills import with_kernel_logs
from utils.reduce.summary_kinds import system_batches

__all__ = [
    "FORECAST_JSON",
    "METRICS_CSV",
    "SUMMARY_ROWS",
    "SYSTEM_SPEC",
    "USED_DEFINITIONS",
    "SystemData",
    "SystemOptions",
    "SystemResult",
    "compute_system",
    "describe_forecast",
    "format_summary",
    "load_and_compute_metrics",
    "load_system_frame",
    "oom_alert",
    "pct_fact",
    "write_system_files",
    "zero_fact",
]


def load_system_frame(
    files: Sequence[Source],
    warn: Warn,
    progress: Progress | None = None,
    place: SummaryPlace | None = None,
) -> pd.DataFrame:
    """The raw fields, one row per readable snapshot, indexed by UTC time in order; the
    closed days that have a day summary at `place` are taken from it."""
    return system_frame(system_batches(files, Reader(SYSTEM_SPEC, warn, progress), place))


class SystemData(NamedTuple):
    """What one read of the snapshots yields: the metrics, the breakdown of MemTotal, and
    the OOM kills."""

    metrics: pd.DataFrame  # one row per snapshot, indexed by UTC time
    ooms: list[OomInterval] | None  # None: no snapshot has an oom_kill counter
    breakdown: pd.DataFrame | None = None
    breakdown_missing: tuple[str, ...] = ()  # fields some snapshot lacks (counted as 0)


def load_and_compute_metrics(
    files: Sequence[Source],
    warn: Warn,
    progress: Progress | None = None,
    place: SummaryPlace | None = None,
) -> SystemData:
    """Read the snapshots once, then compute from the raw fields the metrics (`.metrics`:
    the metrics and the raw fields they use), the OOM kills and the breakdown."""
    raw = load_system_frame(files, warn, progress, place)
    missing = tuple(parts.missing_fields(raw))
    return SystemData(
        compute_metrics(raw), oom_intervals(raw), parts.compute_breakdown(raw), missing
    )


def system_result_of(
    metrics: pd.DataFrame, options: SystemOptions, ooms: list[OomInterval] | None
) -> SystemResult:
    summary = summarize(metrics, options.trend_days, ooms)
    latest_pct = float(metrics["RAM_Used_Pct"].iloc[-1])
    return SystemResult(
        metrics=metrics,
        summary=summary,
        notes=missing_field_notes(metrics),
        alerts=check_alerts(summary, latest_pct, options),
        latest_pct=latest_pct,
    )


def with_breakdown(result: SystemResult, data: SystemData, options: SystemOptions) -> SystemResult:
    """The result with the breakdown of MemTotal and what changed; UsageError when a
    --compare period holds no snapshot."""
    if data.breakdown is None:
        return result
    index = pd.DatetimeIndex(data.breakdown.index)
    periods = options.compare or parts.default_periods(index)
    comparison = None
    if periods is not None:
        problem = parts.check_periods(index, periods)
        if problem is not None:
            raise UsageError(problem)
        used = data.metrics["RAM_Used_Available_MB"]
        comparison = parts.compare(data.breakdown, used, *periods)
    notes = [*result.notes, *breakdown_note(data.breakdown_missing)]
    return replace(result, breakdown=data.breakdown, comparison=comparison, notes=notes)


def compute_system(where: Where, options: SystemOptions, session: Session) -> SystemResult:
    """Discover, read and compute; NoDataError when there is nothing to analyse."""
    place = place_of(where, session.diagnostics.note)
    data = discover_and_read(
        where,
        SYS_PREFIX,
        session,
        lambda files, warn, progress: load_and_compute_metrics(files, warn, progress, place),
        lambda loaded: loaded.metrics.empty,
    )
    with session.timer.phase("computing"):
        times = data.metrics.index.to_numpy()
        warn = session.diagnostics.warn
        ooms = with_kernel_logs(data.ooms, times, options.kernel_logs, where.dumps_dir, warn)
        ooms = with_limit_hits(ooms, cgroups_around(ooms, where, warn))
        return with_breakdown(system_result_of(data.metrics, options, ooms), data, options)


def cgroups_around(ooms: list[OomInterval] | None, where: Where, warn: Warn) -> pd.DataFrame:
    """The cgroup_mem rows around each interval with a kill no log named (whose cgroups'
    OOM_EVENTS tell a memcg kill from host pressure), read raw, one window per UTC day that has
    such kills (a day bundle is opened once); none where every kill is named."""
    windows: list[TimeWindow] = []
    for oom in ooms or ():
        if unnamed_kills(oom):
            after, before = _moment(oom.after), _moment(oom.before)
            last = windows[-1] if windows else None
            if last is not None and last.since is not None and last.since.date() == after.date():
                windows[-1] = TimeWindow(last.since, before)
            else:
                windows.append(TimeWindow(after, before))
    frames = [cgroup_frame([])]
    for window in windows:
        found = find_sources(where.dumps_dir, CGROUP_PREFIX, window, warn, where.entries)
        frames.append(cgroup_frame(Reader(CGROUP_SPEC, warn).batches(found)))
    return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]


def _moment(moment: np.datetime64) -> datetime:
    return pd.Timestamp(moment).to_pydatetime()


def write_system_files(result: SystemResult, out_dir: Path) -> list[Path]:
    """system_metrics.csv, forecast.json and memory_breakdown.csv (when the snapshots give
    one), in out_dir, created if missing."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = [
        write_metrics_csv(result.metrics, out_dir / METRICS_CSV),
        write_forecast_json(result.summary.forecast, out_dir / FORECAST_JSON),
    ]
    if result.breakdown is not None:
        written.append(write_metrics_csv(result.breakdown, out_dir / BREAKDOWN_CSV))
    return written
