"""System analysis: load the sys_mem snapshots, compute the metrics, summarise and plot."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.axes import Axes

from utils import plotting
from utils.console import replace_atomically
from utils.dumps import Kind, Progress, TableSpec, Warn, iter_batches
from utils.parser import DISPLAY_FORMAT, DumpFile

# The raw fields the metrics are computed from (MiB, as the collector writes them).
RAW_FIELDS: tuple[str, ...] = (
    "MemTotal_MB",
    "MemFree_MB",
    "Buffers_MB",
    "Cached_MB",
    "SReclaimable_MB",
    "SwapTotal_MB",
    "SwapFree_MB",
)
METRIC_COLUMNS: tuple[str, ...] = ("RAM_Used_MB", "Swap_Used_MB", "RAM_Used_Pct")
# MemTotal divides: it must be above 0. A sys_mem file holds one snapshot, one row.
SYSTEM_SPEC = TableSpec(
    columns=tuple(
        (name, Kind.POSITIVE if name == "MemTotal_MB" else Kind.FLOAT) for name in RAW_FIELDS
    ),
    rows_per_file=1,
)

METRICS_CSV = "system_metrics.csv"
PLOT_NAMES: tuple[str, ...] = (
    "ram_used_htop.png",
    "swap_used.png",
    "ram_vs_swap.png",
    "ram_used_pct.png",
)


# --- Loading -------------------------------------------------------------------


def load_system_frame(
    files: Sequence[DumpFile], warn: Warn, progress: Progress | None = None
) -> pd.DataFrame:
    """The raw fields, one row per readable snapshot, indexed by UTC time in order."""
    batches = list(iter_batches(files, SYSTEM_SPEC, warn, progress))
    if not batches:
        return pd.DataFrame(columns=list(RAW_FIELDS), index=pd.DatetimeIndex([]), dtype="float64")
    raw = pd.concat([batch.frame for batch in batches], ignore_index=True)
    snapshot = np.concatenate([batch.snapshot for batch in batches])
    times = pd.DatetimeIndex([files[index].timestamp for index in snapshot])
    return raw.set_axis(times, axis=0)


def compute_metrics(raw: pd.DataFrame) -> pd.DataFrame:
    """The seed's formulas, all in MiB from the _MB columns:

    RAM Used (htop method) = MemTotal - MemFree - Buffers - Cached - SReclaimable
    Swap Used = SwapTotal - SwapFree
    RAM Used % = RAM Used / MemTotal * 100
    """
    ram_used = (
        raw["MemTotal_MB"]
        - raw["MemFree_MB"]
        - raw["Buffers_MB"]
        - raw["Cached_MB"]
        - raw["SReclaimable_MB"]
    )
    metrics = pd.DataFrame(
        {
            "RAM_Used_MB": ram_used,
            "Swap_Used_MB": raw["SwapTotal_MB"] - raw["SwapFree_MB"],
            "RAM_Used_Pct": ram_used / raw["MemTotal_MB"] * 100,
        },
        index=raw.index,
    )
    return pd.concat([metrics, raw[list(RAW_FIELDS)]], axis=1)


def load_and_compute_metrics(
    files: Sequence[DumpFile], warn: Warn, progress: Progress | None = None
) -> pd.DataFrame:
    """Metrics and the raw fields they use, one row per snapshot, indexed by UTC time."""
    return compute_metrics(load_system_frame(files, warn, progress))


# --- Summary -------------------------------------------------------------------


@dataclass(frozen=True)
class MetricStats:
    label: str
    unit: str
    minimum: float
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


def format_duration(seconds: float) -> str:
    """`29 d 23 h 50 min`, `2 h 5 min`, `45 s`: as a person says a span."""
    whole = round(seconds)
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{days} d"] if days else []
    if hours or (days and minutes):
        parts.append(f"{hours} h")
    if minutes:
        parts.append(f"{minutes} min")
    if secs and not days:
        parts.append(f"{secs} s")
    return " ".join(parts) or "0 s"


def summarize(metrics: pd.DataFrame) -> SystemSummary:
    times = metrics.index.to_numpy()
    threshold = plotting.gap_threshold_s(times)
    rows = (
        ("RAM used (htop)", "MiB", "RAM_Used_MB"),
        ("Swap used", "MiB", "Swap_Used_MB"),
        ("RAM used", "%", "RAM_Used_Pct"),
    )
    stats = [
        MetricStats(
            label,
            unit,
            float(metrics[column].min()),
            float(metrics[column].mean()),
            float(metrics[column].max()),
        )
        for label, unit, column in rows
    ]
    return SystemSummary(
        first=metrics.index[0],
        last=metrics.index[-1],
        snapshots=len(metrics),
        gaps=plotting.find_gaps(times, threshold),
        gap_threshold_s=threshold,
        stats=stats,
    )


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
    lines += ["", f"  {'':<22}{'min':>12}{'mean':>12}{'max':>12}"]
    for stat in summary.stats:
        values = "".join(f"{value:>12,.1f}" for value in (stat.minimum, stat.mean, stat.maximum))
        lines.append(f"  {stat.label + ', ' + stat.unit:<22}{values}")
    return lines


# --- Output --------------------------------------------------------------------


def write_metrics_csv(metrics: pd.DataFrame, path: Path) -> Path:
    """`timestamp` (UTC) first, then the metrics, then the raw fields; 3 decimals."""
    table = metrics.copy()
    table.insert(0, "timestamp", pd.DatetimeIndex(metrics.index).strftime(DISPLAY_FORMAT))
    return replace_atomically(
        path,
        lambda temp: table.to_csv(temp, index=False, float_format="%.3f", lineterminator="\n"),
    )


def plot_system(metrics: pd.DataFrame, out_dir: Path) -> list[Path]:
    """The four time-series PNGs, in PLOT_NAMES order."""
    times = metrics.index.to_numpy()
    threshold = plotting.gap_threshold_s(times)
    subtitle = plotting.subtitle_for(times, threshold)
    ram = metrics["RAM_Used_MB"].to_numpy(np.float64)
    swap = metrics["Swap_Used_MB"].to_numpy(np.float64)
    mem_total = float(metrics["MemTotal_MB"].max())
    swap_total = float(metrics["SwapTotal_MB"].max())
    paths: list[Path] = []

    figure, axes = plotting.new_figure()
    formula = "MemTotal - MemFree - Buffers - Cached - SReclaimable"
    plotting.plot_series(axes, times, ram, threshold, formula, plotting.RAM_COLOR)
    plotting.draw_reference(axes, mem_total, f"MemTotal {mem_total:,.0f} MiB")
    _finish(axes, times, threshold, "RAM used (MiB)")
    plotting.set_titles(axes, "RAM used (htop method)", subtitle)
    paths.append(plotting.save_figure(figure, out_dir / PLOT_NAMES[0]))

    figure, axes = plotting.new_figure()
    plotting.plot_series(axes, times, swap, threshold, "SwapTotal - SwapFree", plotting.SWAP_COLOR)
    if swap_total > 0:
        plotting.draw_reference(axes, swap_total, f"SwapTotal {swap_total:,.0f} MiB")
    else:
        axes.text(0.5, 0.5, "no swap configured", transform=axes.transAxes, ha="center")
    _finish(axes, times, threshold, "Swap used (MiB)", top=None if swap_total else 1.0)
    plotting.set_titles(axes, "Swap used", subtitle)
    paths.append(plotting.save_figure(figure, out_dir / PLOT_NAMES[1]))

    figure, axes = plotting.new_figure()
    plotting.plot_series(axes, times, ram, threshold, "RAM used (htop)", plotting.RAM_COLOR)
    plotting.plot_series(axes, times, swap, threshold, "Swap used", plotting.SWAP_COLOR)
    _finish(axes, times, threshold, "Memory used (MiB)")
    plotting.set_titles(axes, "RAM vs swap used", subtitle)
    paths.append(plotting.save_figure(figure, out_dir / PLOT_NAMES[2]))

    figure, axes = plotting.new_figure()
    pct = metrics["RAM_Used_Pct"].to_numpy(np.float64)
    plotting.plot_series(axes, times, pct, threshold, "RAM used / MemTotal", plotting.RAM_COLOR)
    _finish(axes, times, threshold, "RAM used (% of MemTotal)", top=100.0)
    plotting.set_titles(axes, "RAM used, % of MemTotal", subtitle)
    paths.append(plotting.save_figure(figure, out_dir / PLOT_NAMES[3]))
    return paths


def _finish(
    axes: Axes,
    times: plotting.Times,
    threshold: float | None,
    ylabel: str,
    top: float | None = None,
) -> None:
    plotting.shade_gaps(axes, times, threshold)
    plotting.style_time_axis(axes, times)
    plotting.style_value_axis(axes, ylabel, top)
    if top is None:  # headroom above the highest line
        axes.set_ylim(0, axes.get_ylim()[1] * 1.05)
    plotting.add_legend(axes)
