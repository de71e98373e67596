"""System analysis: load the sys_mem snapshots, compute the metrics, summarise and plot."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import NamedTuple

import matplotlib.ticker as mticker
import numpy as np
import numpy.typing as npt
import pandas as pd
from matplotlib.artist import Artist
from matplotlib.axes import Axes

from utils.console import Session, UsageError
from utils.core.atomic_files import write_text_atomically
from utils.core.text import format_duration, plural
from utils.judge import breakdown as parts
from utils.judge.breakdown import BREAKDOWN_FIELDS, Comparison, Period
from utils.judge.forecast import Forecast, describe, forecast_available, to_json_dict
from utils.judge.oom import oom_alert, oom_kill_count
from utils.outputs import plotting
from utils.outputs.plotting import PlotCall
from utils.parser import (
    DISPLAY_FORMAT,
    SYS_PREFIX,
    Source,
    Where,
)
from utils.read.snapshot_specs import (
    OPTIONAL_FIELDS,
    RAW_FIELDS,
    read_system_frame,
    system_spec,
)
from utils.read.threaded_reader import Progress, Warn, discover_and_read
from utils.reduce.counters import OomInterval, oom_intervals, rate_frame

# The optional fields the breakdown reads besides the counters (every sys_mem field it needs).
SYSTEM_SPEC = system_spec(BREAKDOWN_FIELDS)

METRICS_CSV = "system_metrics.csv"
FORECAST_JSON = "forecast.json"


class UsedDefinition(NamedTuple):
    """One way tools define "used" RAM, as a column of system_metrics.csv."""

    column: str
    label: str  # short, for the console and the legend
    formula: str
    needs: str | None  # the optional field it needs, if any
    color: str


USED_DEFINITIONS: tuple[UsedDefinition, ...] = (
    UsedDefinition(
        "RAM_Used_MB",
        "htop",
        "MemTotal - MemFree - Buffers - Cached - SReclaimable",
        None,
        plotting.RAM_COLOR,
    ),
    UsedDefinition(
        "RAM_Used_Shmem_MB", "htop + Shmem", "the htop method + Shmem", "Shmem_MB", "#7b3fa0"
    ),
    UsedDefinition(
        "RAM_Used_Available_MB",
        "MemTotal - MemAvailable",
        "MemTotal - MemAvailable",
        "MemAvailable_MB",
        "#2a8f5a",
    ),
)


# --- Loading -------------------------------------------------------------------


def load_system_frame(
    files: Sequence[Source], warn: Warn, progress: Progress | None = None
) -> pd.DataFrame:
    """The raw fields, one row per readable snapshot, indexed by UTC time in order."""
    return read_system_frame(files, SYSTEM_SPEC, warn, progress)


def compute_metrics(raw: pd.DataFrame) -> pd.DataFrame:
    """The original README's formulas, all in MiB from the _MB columns, then two more
    definitions of
    "used" RAM; a definition whose field is missing is empty (NaN) there:

    RAM Used (htop method) = MemTotal - MemFree - Buffers - Cached - SReclaimable
    Swap Used = SwapTotal - SwapFree
    RAM Used % = RAM Used / MemTotal * 100
    RAM Used (available) = MemTotal - MemAvailable (procps free 4.0.1+, sysstat sar -r)
    RAM Used (htop + Shmem) = RAM Used + Shmem (tmpfs and shared memory: in Cached, but
        not droppable)
    """
    ram_used = (
        raw["MemTotal_MB"]
        - raw["MemFree_MB"]
        - raw["Buffers_MB"]
        - raw["Cached_MB"]
        - raw["SReclaimable_MB"]
    )
    optional = {name: raw.get(name, pd.Series(np.nan, index=raw.index)) for name in OPTIONAL_FIELDS}
    metrics = pd.DataFrame(
        {
            "RAM_Used_MB": ram_used,
            "Swap_Used_MB": raw["SwapTotal_MB"] - raw["SwapFree_MB"],
            "RAM_Used_Pct": ram_used / raw["MemTotal_MB"] * 100,
            "RAM_Used_Available_MB": raw["MemTotal_MB"] - optional["MemAvailable_MB"],
            "RAM_Used_Shmem_MB": ram_used + optional["Shmem_MB"],
        },
        index=raw.index,
    )
    extra = pd.DataFrame(optional, index=raw.index)
    return pd.concat([metrics, raw[list(RAW_FIELDS)], extra, rate_frame(raw)], axis=1)


def load_and_compute_metrics(
    files: Sequence[Source], warn: Warn, progress: Progress | None = None
) -> pd.DataFrame:
    """Metrics and the raw fields they use, one row per snapshot, indexed by UTC time."""
    return compute_metrics(load_system_frame(files, warn, progress))


class SystemData(NamedTuple):
    """What the system analysis computes from: the metrics, the breakdown of MemTotal,
    and the OOM kills."""

    metrics: pd.DataFrame
    ooms: list[OomInterval] | None  # None: no snapshot has an oom_kill counter
    breakdown: pd.DataFrame | None = None
    breakdown_missing: tuple[str, ...] = ()  # fields some snapshot lacks (counted as 0)


def load_system_data(
    files: Sequence[Source], warn: Warn, progress: Progress | None = None
) -> SystemData:
    raw = load_system_frame(files, warn, progress)
    missing = tuple(parts.missing_fields(raw))
    return SystemData(
        compute_metrics(raw), oom_intervals(raw), parts.compute_breakdown(raw), missing
    )


def missing_field_notes(metrics: pd.DataFrame) -> list[str]:
    """One line naming every optional field some snapshots lack (as psutil warns once for
    all), and what that leaves empty."""
    lacking: list[tuple[str, int, str]] = []
    for definition in USED_DEFINITIONS:
        if definition.needs is not None:
            missing = int(metrics[definition.needs].isna().sum())
            if missing:
                lacking.append((definition.needs.removesuffix("_MB"), missing, definition.column))
    if not lacking:
        return []
    fields = ", ".join(
        f"{name} from {missing:,} ({KERNEL_SINCE[name]})" for name, missing, _ in lacking
    )
    columns = " and ".join(column for _, _, column in lacking)
    verb = "is" if len(lacking) == 1 else "are"
    return [
        f"fields missing from snapshots (of {len(metrics):,}): {fields}; {columns} {verb}"
        " empty there"
    ]


KERNEL_SINCE = {"MemAvailable": "Linux before 3.14", "Shmem": "Linux before 2.6.32"}


# --- Summary -------------------------------------------------------------------


@dataclass(frozen=True)
class MetricStats:
    label: str
    unit: str
    minimum: float  # NaN when the metric is empty throughout
    mean: float
    maximum: float


@dataclass(frozen=True)
class SystemSummary:
    first: pd.Timestamp
    last: pd.Timestamp
    snapshots: int
    gaps: list[plotting.Gap]
    gap_threshold_s: float | None
    stats: list[MetricStats]
    forecast: Forecast
    ooms: list[OomInterval] | None = None  # None: the dumps carry no OOM counter


# The summary's rows: the three definitions of "used" RAM side by side, then the rest.
SUMMARY_ROWS: tuple[tuple[str, str, str], ...] = (
    *((f"RAM used ({d.label})", "MiB", d.column) for d in USED_DEFINITIONS),
    ("RAM used (htop)", "%", "RAM_Used_Pct"),
    ("Swap used", "MiB", "Swap_Used_MB"),
)


def summarize(
    metrics: pd.DataFrame, trend_days: float, ooms: list[OomInterval] | None = None
) -> SystemSummary:
    times = metrics.index.to_numpy()
    threshold = plotting.gap_threshold_s(times)
    stats = [
        MetricStats(
            label,
            unit,
            float(metrics[column].min()),
            float(metrics[column].mean()),
            float(metrics[column].max()),
        )
        for label, unit, column in SUMMARY_ROWS
    ]
    available = metrics["MemAvailable_MB"].to_numpy(np.float64)
    return SystemSummary(
        first=metrics.index[0],
        last=metrics.index[-1],
        snapshots=len(metrics),
        gaps=plotting.find_gaps(times, threshold),
        gap_threshold_s=threshold,
        stats=stats,
        forecast=forecast_available(times, available, trend_days),
        ooms=ooms,
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


# At most this many intervals with OOM kills are listed in the summary (all are plotted).
OOM_LISTED = 5
NO_OOM_COUNTER = (
    "unknown: the dumps carry no OOM counter (an older collector, or Linux before 4.13)"
)


def oom_summary_lines(ooms: list[OomInterval] | None) -> list[str]:
    """The summary's OOM line, and one per interval with kills (the latest OOM_LISTED)."""
    if ooms is None:
        return [f"  OOM kills {NO_OOM_COUNTER}"]
    if not ooms:
        return ["  OOM kills none"]
    lines = [f"  OOM kills {oom_kill_count(ooms):,}, in {plural(len(ooms), 'interval')}:"]
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
    return f"{after:{DISPLAY_FORMAT}} to {end}: {plural(oom.kills, 'kill')}{reboot}"


# --- The result ---------------------------------------------------------------


@dataclass(frozen=True)
class SystemOptions:
    """What the user asked of the analysis (the defaults are the script's constants)."""

    trend_days: float
    alert_pct: float | None = None  # alert when the latest RAM used % is at least this
    alert_days: float | None = None  # alert when MemAvailable reaches 0 within this
    fail_on_oom: bool = False  # alert when the OOM killer killed in the window
    compare: tuple[Period, Period] | None = None  # --compare; None: the first and last day


@dataclass(frozen=True)
class SystemResult:
    """Everything the system analysis found; rendered as console text, CSV, JSON, PNGs
    and HTML by the functions below and by the report."""

    metrics: pd.DataFrame  # one row per snapshot, indexed by UTC time: the CSV and the plots
    summary: SystemSummary
    notes: list[str]  # fields the kernel lacks, and what that leaves empty
    alerts: list[str]  # the alerts asked for that hold, one line each
    latest_pct: float  # RAM used (htop) % at the last snapshot
    breakdown: pd.DataFrame | None = None  # memory_breakdown.csv, one row per snapshot
    comparison: Comparison | None = None  # what changed; None with under two snapshots

    @property
    def ooms(self) -> list[OomInterval] | None:
        return self.summary.ooms


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
    notes = list(result.notes)
    if data.breakdown_missing:
        notes.append(
            "the breakdown of MemTotal counts as 0, and so as unaccounted, what some snapshots"
            f" lack: {', '.join(data.breakdown_missing)}"
        )
    return replace(result, breakdown=data.breakdown, comparison=comparison, notes=notes)


def pct_fact(summary: SystemSummary, latest_pct: float) -> str:
    """What --alert-pct is judged on, as every alert and the report say it."""
    return (
        f"RAM used (htop) is {latest_pct:.2f}% of MemTotal at the last snapshot"
        f" ({summary.last:{DISPLAY_FORMAT}} UTC)"
    )


def zero_fact(forecast: Forecast) -> str | None:
    """What --alert-days is judged on, as every alert and the report say it; None when
    MemAvailable does not fall."""
    days = forecast.days_to_zero
    if days is None:
        return None
    fast, slow = forecast.days_to_zero_low, forecast.days_to_zero_high
    bounds = (
        "" if fast is None else f" ({fast:,.1f} to {'more' if slow is None else f'{slow:,.1f}'})"
    )
    return (
        f"{forecast.basis} reaches 0 in about {days:,.1f} days{bounds}, around"
        f" {forecast.zero_date} UTC"
    )


def check_alerts(summary: SystemSummary, latest_pct: float, options: SystemOptions) -> list[str]:
    """A line for each alert asked for that holds."""
    raised = []
    if options.alert_pct is not None and latest_pct >= options.alert_pct:
        raised.append(
            f"{pct_fact(summary, latest_pct)}, at or above --alert-pct {options.alert_pct:g}"
        )
    days, fact = summary.forecast.days_to_zero, zero_fact(summary.forecast)
    if options.alert_days is not None and days is not None and days <= options.alert_days:
        raised.append(f"{fact}, within --alert-days {options.alert_days:g}")
    if options.fail_on_oom and summary.ooms:
        raised.append(oom_alert(summary.ooms))
    return raised


def compute_system(where: Where, options: SystemOptions, session: Session) -> SystemResult:
    """Discover, read and compute; NoDataError when there is nothing to analyse."""
    data = discover_and_read(
        where, SYS_PREFIX, session, load_system_data, lambda loaded: loaded.metrics.empty
    )
    with session.timer.phase("computing"):
        return with_breakdown(system_result_of(data.metrics, options, data.ooms), data, options)


# --- Output --------------------------------------------------------------------


def write_metrics_csv(metrics: pd.DataFrame, path: Path) -> Path:
    """`timestamp` (UTC) first, then the original README's metrics, the other definitions
    of "used",
    then the raw fields; 3 decimals; a missing value is empty."""
    return write_text_atomically(path, metrics_csv_text(metrics))


def metrics_csv_text(metrics: pd.DataFrame) -> str:
    """system_metrics.csv as text: byte for byte what `to_csv(index=False,
    float_format="%.3f")` writes with the timestamps as the first column. pandas formats
    every value through a Python call and its missing-value checks; here a whole row is
    one %-format (docs/performance.md)."""
    stamps = pd.DatetimeIndex(metrics.index).strftime(DISPLAY_FORMAT).tolist()
    names = [str(name) for name in metrics.columns]
    values = metrics.to_numpy(np.float64)
    row_format = ",".join(["%s"] + ["%.3f"] * len(names))
    lines = [",".join(["timestamp", *names])]
    lines.extend(map(row_format.__mod__, zip(stamps, *values.T.tolist(), strict=True)))
    # A missing value is empty, as pandas writes it ("%.3f" would write nan): only the
    # rows that hold one are formatted value by value.
    for row in np.flatnonzero(np.isnan(values).any(axis=1)).tolist():
        cells = ["" if np.isnan(value) else f"{value:.3f}" for value in values[row].tolist()]
        lines[row + 1] = ",".join([stamps[row], *cells])
    return "\n".join(lines) + "\n"


def write_forecast_json(forecast: Forecast, path: Path) -> Path:
    """The forecast for other tools (see forecast.to_json_dict)."""
    return write_text_atomically(path, json.dumps(to_json_dict(forecast), indent=2) + "\n")


class MetricLine(NamedTuple):
    """A column of the metrics, drawn as a line the legend names."""

    column: str
    label: str
    color: str


class PlotSpec(NamedTuple):
    """One time-series PNG of the system analysis."""

    name: str
    title: str
    ylabel: str
    lines: tuple[MetricLine, ...]
    reference: str | None = None  # a raw field drawn as a dashed level (its largest value)
    top: float | None = None  # a fixed top of the value axis
    when_zero: str | None = None  # said in the plot when the reference is 0
    marks_ooms: bool = False  # a line at each OOM kill


PLOT_SPECS: tuple[PlotSpec, ...] = (
    PlotSpec(
        "ram_used_htop.png",
        "RAM used (htop method)",
        "RAM used (MiB)",
        (MetricLine("RAM_Used_MB", USED_DEFINITIONS[0].formula, plotting.RAM_COLOR),),
        reference="MemTotal_MB",
        marks_ooms=True,
    ),
    PlotSpec(
        "swap_used.png",
        "Swap used",
        "Swap used (MiB)",
        (MetricLine("Swap_Used_MB", "SwapTotal - SwapFree", plotting.SWAP_COLOR),),
        reference="SwapTotal_MB",
        when_zero="no swap configured",
    ),
    PlotSpec(
        "ram_vs_swap.png",
        "RAM vs swap used",
        "Memory used (MiB)",
        (
            MetricLine("RAM_Used_MB", "RAM used (htop)", plotting.RAM_COLOR),
            MetricLine("Swap_Used_MB", "Swap used", plotting.SWAP_COLOR),
        ),
        marks_ooms=True,
    ),
    PlotSpec(
        "ram_used_pct.png",
        "RAM used, % of MemTotal",
        "RAM used (% of MemTotal)",
        (MetricLine("RAM_Used_Pct", "RAM used / MemTotal", plotting.RAM_COLOR),),
        top=100.0,
        marks_ooms=True,
    ),
    PlotSpec(
        "ram_used_definitions.png",
        "RAM used, three definitions",
        "RAM used (MiB)",
        tuple(MetricLine(d.column, d.label, d.color) for d in USED_DEFINITIONS),
        reference="MemTotal_MB",
        marks_ooms=True,
    ),
)
PRESSURE_PLOT = "memory_pressure.png"
PRESSURE_TITLE = "Memory pressure: time stalled, and swap traffic"
BREAKDOWN_PLOT = "memory_breakdown.png"
BREAKDOWN_TITLE = "Where MemTotal went: a breakdown of /proc/meminfo"
PLOT_NAMES: tuple[str, ...] = (
    *(spec.name for spec in PLOT_SPECS),
    PRESSURE_PLOT,
    BREAKDOWN_PLOT,
)
PLOT_TITLES: dict[str, str] = {
    **{spec.name: spec.title for spec in PLOT_SPECS},
    PRESSURE_PLOT: PRESSURE_TITLE,
    BREAKDOWN_PLOT: BREAKDOWN_TITLE,
}


def plot_calls(result: SystemResult, out_dir: Path) -> list[PlotCall]:
    """The time-series PNGs to draw, in PLOT_NAMES order (see plotting.PlotWorker)."""
    metrics, kills = result.metrics, oom_moments(result.ooms)
    calls: list[PlotCall] = [(draw_plot, (spec, metrics, out_dir, kills)) for spec in PLOT_SPECS]
    calls.append((draw_pressure, (metrics, out_dir, kills)))
    if result.breakdown is not None:
        calls.append((draw_breakdown, (result.breakdown, out_dir, kills)))
    return calls


def oom_moments(ooms: list[OomInterval] | None) -> npt.NDArray[np.datetime64]:
    """When the OOM kills fell: the middle of each interval that holds some."""
    return np.array([oom.middle for oom in ooms or []], dtype="datetime64[s]")


def plot_system(result: SystemResult, out_dir: Path) -> list[Path]:
    """The time-series PNGs, in PLOT_NAMES order, drawn here: a forked plot worker would
    save less time than its memory is worth on a host short of memory
    (docs/performance.md)."""
    return [job(*args) for job, args in plot_calls(result, out_dir)]


def drawn_lines(spec: PlotSpec, metrics: pd.DataFrame) -> list[MetricLine]:
    """The spec's lines that have a value: a definition the kernel cannot give has none."""
    return [line for line in spec.lines if metrics[line.column].notna().any()]


def draw_plot(
    spec: PlotSpec,
    metrics: pd.DataFrame,
    out_dir: Path,
    kills: npt.NDArray[np.datetime64] | None = None,
) -> Path:
    """One PNG of PLOT_SPECS: its lines, reference level, outages, OOM kills and titles."""
    times = metrics.index.to_numpy()
    threshold = plotting.gap_threshold_s(times)
    figure, axes = plotting.new_figure()
    for line in drawn_lines(spec, metrics):
        values = metrics[line.column].to_numpy(np.float64)
        plotting.plot_series(axes, plotting.Line(times, values, line.label, line.color), threshold)
    top = spec.top
    if spec.reference is not None:
        level = float(metrics[spec.reference].max())
        if level > 0:
            name = spec.reference.removesuffix("_MB")
            plotting.draw_reference(axes, level, f"{name} {level:,.0f} MiB")
        elif spec.when_zero is not None:
            axes.text(0.5, 0.5, spec.when_zero, transform=axes.transAxes, ha="center")
            top = 1.0
    plotting.shade_gaps(axes, times, threshold)
    if spec.marks_ooms and kills is not None:
        plotting.mark_ooms(axes, kills)
    plotting.style_time_axis(axes, times)
    plotting.style_value_axis(axes, spec.ylabel, top)
    if top is None:  # headroom above the highest line
        axes.set_ylim(0, axes.get_ylim()[1] * 1.05)
    plotting.add_legend(axes)
    plotting.set_titles(axes, spec.title, plotting.subtitle_for(times, threshold))
    return plotting.save_figure(figure, out_dir / spec.name)


def draw_pressure(
    metrics: pd.DataFrame, out_dir: Path, kills: npt.NDArray[np.datetime64] | None = None
) -> Path:
    """memory_pressure.png: PSI some and full as the % of each interval stalled on memory,
    and swap-in and swap-out in pages/s on a second axis where swap was used."""
    times = metrics.index.to_numpy()
    threshold = plotting.gap_threshold_s(times)
    figure, axes = plotting.new_figure()
    pressure = [("PSI_Some_Pct", "some (a task stalled)", "#b9770e"),
                ("PSI_Full_Pct", "full (all stalled)", "#c0392b")]  # fmt: skip
    drawn = [
        plotting.Line(times, metrics[column].to_numpy(np.float64), label, color)
        for column, label, color in pressure
        if metrics[column].notna().any()
    ]
    for line in drawn:
        plotting.plot_series(axes, line, threshold)
    if not drawn:
        axes.text(0.5, 0.5, NO_PSI, transform=axes.transAxes, ha="center", color="#555555")
    swapped = _draw_swap_axis(axes, metrics, threshold)
    plotting.shade_gaps(axes, times, threshold)
    if kills is not None:
        plotting.mark_ooms(axes, kills)
    plotting.style_time_axis(axes, times)
    plotting.style_value_axis(axes, "time stalled on memory (%)")
    highest = max((float(np.nanmax(line.values)) for line in drawn), default=0.0)
    axes.set_ylim(0, max(1.0, highest * 1.1))
    axes.yaxis.set_major_formatter(mticker.StrMethodFormatter("{x:,.1f}"))
    plotting.add_legend(axes, *([swapped] if swapped is not None else []))
    peaks = [f"{line.label.split()[0]} at most {np.nanmax(line.values):,.2f} %" for line in drawn]
    subtitle = " · ".join([plotting.subtitle_for(times, threshold), *peaks, "PSI, Linux 4.20+"])
    plotting.set_titles(axes, PRESSURE_TITLE, subtitle)
    return plotting.save_figure(figure, out_dir / PRESSURE_PLOT)


NO_PSI = "no pressure stall information in these dumps (Linux before 4.20, or psi=0)"


def _draw_swap_axis(axes: Axes, metrics: pd.DataFrame, threshold: float | None) -> Axes | None:
    """Swap-in and swap-out, pages/s, on a right-hand axis; None when no swap moved."""
    rates = metrics[["SwapIn_Pages_s", "SwapOut_Pages_s"]].to_numpy(np.float64)
    if not np.isfinite(rates).any() or np.nanmax(rates) <= 0:
        return None
    figure = axes.get_figure()
    assert figure is not None
    figure.subplots_adjust(right=TWIN_AXIS_RIGHT)  # room for the right-hand labels
    right = axes.twinx()
    right.spines[["top"]].set_visible(False)
    times = metrics.index.to_numpy()
    for values, label, color in ((rates[:, 0], "swap-in", "#1f6fb4"),
                                 (rates[:, 1], "swap-out", "#7d3c98")):  # fmt: skip
        x, y = plotting.break_at_gaps(times, values, threshold)
        # Thinner and lighter than the pressure: the stalls are what this plot is about.
        right.plot(x, y, color=color, linewidth=0.9, alpha=0.7, label=f"{label} (pages/s, right)")
    # A page now and then is no traffic: the axis shows at least SWAP_AXIS_MIN, as the
    # stalls' shows at least 1%, so that a trickle is drawn as one.
    top = max(float(np.nanmax(rates)) * 1.1, SWAP_AXIS_MIN)
    right.set_ylim(0, top)
    right.set_ylabel("swapped (pages/s)")
    decimals = 0 if top >= 10 else 1 if top >= 1 else 2 if top >= 0.1 else 3
    right.yaxis.set_major_formatter(mticker.StrMethodFormatter(f"{{x:,.{decimals}f}}"))
    return right


TWIN_AXIS_RIGHT = 0.91
SWAP_AXIS_MIN = 10.0  # pages/s: 40 KiB/s with 4 KiB pages


# The plot's stack, bottom up: what processes and the kernel hold, then the caches, free on
# top (light), so that the boundary under "free" is what is in use.
STACK_ORDER: tuple[str, ...] = (
    "Anon_MB",
    "Shmem_MB",
    "KernelStack_MB",
    "PageTables_MB",
    "SlabUnreclaimable_MB",
    "Unaccounted_MB",
    "SlabReclaimable_MB",
    "PageCache_MB",
    "Free_MB",
)


def draw_breakdown(
    breakdown: pd.DataFrame, out_dir: Path, kills: npt.NDArray[np.datetime64] | None = None
) -> Path:
    """memory_breakdown.png: the parts of MemTotal stacked over time (a negative
    unaccounted remainder, where meminfo's counters overlap, is drawn as 0)."""
    times = breakdown.index.to_numpy()
    threshold = plotting.gap_threshold_s(times)
    figure, axes = plotting.new_figure()
    series = []
    for column in STACK_ORDER:
        x, y = plotting.break_at_gaps(times, breakdown[column].to_numpy(np.float64), threshold)
        series.append(np.clip(y, 0, None))
    colors = {part.column: part.color for part in parts.PARTS}
    stack = axes.stackplot(
        x,
        *series,
        labels=[parts.SHORT_LABELS[column] for column in STACK_ORDER],
        colors=[colors[column] for column in STACK_ORDER],
        linewidth=0,
    )
    plotting.shade_gaps(axes, times, threshold)
    if kills is not None:
        plotting.mark_ooms(axes, kills)
    plotting.style_time_axis(axes, times)
    total = float(np.nanmax(breakdown.sum(axis=1).to_numpy(np.float64)))
    plotting.style_value_axis(axes, "MiB", top=total * 1.02)
    _stack_legend(axes, stack)
    last = breakdown.iloc[-1]
    subtitle = (
        plotting.subtitle_for(times, threshold)
        + f" · last: processes {last['Anon_MB']:,.0f}, Shmem {last['Shmem_MB']:,.0f},"
        f" slab {last['SlabUnreclaimable_MB'] + last['SlabReclaimable_MB']:,.0f},"
        f" unaccounted {last['Unaccounted_MB']:,.0f} MiB"
    )
    plotting.set_titles(axes, BREAKDOWN_TITLE, subtitle)
    return plotting.save_figure(figure, out_dir / BREAKDOWN_PLOT)


def _stack_legend(axes: Axes, stack: Sequence[Artist]) -> None:
    """Below the plot, top-down as the stack reads; the gaps and kills after it."""
    handles, labels = axes.get_legend_handles_labels()
    others = [(h, label) for h, label in zip(handles, labels, strict=True) if h not in stack]
    ordered = [(h, str(h.get_label())) for h in stack[::-1]] + others
    axes.legend(
        [h for h, _ in ordered],
        [label for _, label in ordered],
        loc="upper center",
        bbox_to_anchor=(0.5, -0.12),
        ncol=6,
        frameon=False,
        fontsize="small",
    )
