"""The system analysis on the console: the span, the gaps, the OOM kills, the metrics'
summary and the forecast."""

from __future__ import annotations

import numpy as np
import pandas as pd

from utils.core.text import format_duration, plural
from utils.judge.alerts import oom_kill_count
from utils.judge.forecast import Forecast, describe
from utils.judge.oom import host_pressure_kills, kill_sentence, logged_kill
from utils.judge.system_metrics import SystemSummary
from utils.parser import DISPLAY_FORMAT
from utils.reduce.counters import OomInterval
from utils.reduce.limit_hits import unnamed_kills

# At most this many intervals with OOM kills are listed in the summary (all are plotted).
OOM_LISTED = 5
NO_OOM_COUNTER = (
    "unknown: the dumps carry no OOM counter (an older collector, or Linux before 4.13)"
)


def describe_forecast(forecast: Forecast) -> str:
    if forecast.samples == 0:
        return f"{forecast.basis} is in none of these snapshots (Linux before 3.14): no forecast"
    return describe(forecast)


def format_summary(summary: SystemSummary) -> list[str]:
    span_s = (summary.last - summary.first).total_seconds()
    lines = [
        f"System memory: {summary.snapshots:,} snapshots (times in UTC)",
        f"  first     {summary.first:{DISPLAY_FORMAT}}",
        f"  last      {summary.last:{DISPLAY_FORMAT}}",
        f"  duration  {format_duration(span_s)}",
    ]
    if summary.gaps and summary.gap_threshold_s is not None:
        longest = max(summary.gaps, key=lambda gap: gap.seconds)
        start = pd.Timestamp(longest.start)
        lines.append(
            f"  gaps      {len(summary.gaps)} longer than"
            f" {format_duration(summary.gap_threshold_s)}; longest"
            f" {format_duration(longest.seconds)} after {start:{DISPLAY_FORMAT}}"
        )
    lines += oom_summary_lines(summary.ooms)
    labels = [f"{stat.label}, {stat.unit}" for stat in summary.stats]
    width = max(len(label) for label in labels) + 2
    lines += ["", f"  {'':<{width}}{'min':>12}{'mean':>12}{'max':>12}"]
    for label, stat in zip(labels, summary.stats, strict=True):
        values = "".join(
            f"{value:>12,.1f}" if np.isfinite(value) else f"{'n/a':>12}"
            for value in (stat.minimum, stat.mean, stat.maximum)
        )
        lines.append(f"  {label:<{width}}{values}")
    lines += ["", describe_forecast(summary.forecast)]
    return lines


def oom_summary_lines(ooms: list[OomInterval] | None) -> list[str]:
    """The summary's OOM line, and one per interval with kills (the latest OOM_LISTED)."""
    if ooms is None:
        return [f"  OOM kills {NO_OOM_COUNTER}"]
    if not ooms:
        return ["  OOM kills none"]
    kills = [logged_kill(oom, v) for oom in ooms for v in [*oom.logged, *oom.filed]]
    total = oom_kill_count(ooms)
    not_host = total - host_pressure_kills(kills) - (total - len(kills))
    not_host += sum(unnamed_kills(oom) for oom in ooms if oom.limit_hits)
    cause = f" ({not_host:,} not host pressure: a cgroup's own limit, or a userspace killer)"
    head = f"  OOM kills {total:,}, in {plural(len(ooms), 'interval')}"
    lines = [f"{head}{cause if not_host else ''}:"]
    for oom in ooms[-OOM_LISTED:]:
        lines.append(f"            {oom_interval_text(oom)}")
    if len(ooms) > OOM_LISTED:
        lines.append(f"            and {len(ooms) - OOM_LISTED:,} earlier")
    return lines


def oom_interval_text(oom: OomInterval) -> str:
    """`2026-03-01 10:00:00 to 10:10:00: 2 kills` (the date again when it changes)."""
    after, before = pd.Timestamp(oom.after), pd.Timestamp(oom.before)
    end = f"{before:%H:%M:%S}" if after.date() == before.date() else f"{before:{DISPLAY_FORMAT}}"
    reboot = ", across a reboot" if oom.reboot else ""
    victims = [*oom.logged, *oom.filed]
    whys = [kill_sentence(logged_kill(oom, victim)) for victim in victims]
    if oom.limit_hits and unnamed_kills(oom):
        hit = ", ".join(oom.limit_hits)
        whys.append(f"memcg limit of {hit} hit: {plural(unnamed_kills(oom), 'victim')} unnamed")
    why = "; ".join(whys)
    return f"{after:{DISPLAY_FORMAT}} to {end}: {plural(oom.kills, 'kill')}{reboot}" + (
        f": {why}" if why else ""
    )
