"""The system analysis's PNGs: RAM and swap used, the three definitions of "used", memory
pressure and the breakdown of MemTotal, each a time series with its outages and OOM kills."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
import numpy.typing as npt
import pandas as pd
from matplotlib.artist import Artist
from matplotlib.axes import Axes

from utils.judge import breakdown as parts
from utils.judge.system_metrics import USED_DEFINITIONS, SystemResult
from utils.outputs import bands, plotting
from utils.outputs.plotting import PlotCall
from utils.reduce.counters import OomInterval


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
    # The swap axis first: its labels narrow the plot, and both axes' series then choose
    # between points and a band by the same width.
    swapped = _draw_swap_axis(axes, metrics, threshold)
    for line in drawn:
        plotting.plot_series(axes, line, threshold)
    if not drawn:
        axes.text(0.5, 0.5, NO_PSI, transform=axes.transAxes, ha="center", color="#555555")
    plotting.shade_gaps(axes, times, threshold)
    if kills is not None:
        plotting.mark_ooms(axes, kills)
    plotting.style_time_axis(axes, times)
    plotting.style_value_axis(axes, "time stalled on memory (%)")
    highest = max((float(np.nanmax(line.values)) for line in drawn), default=0.0)
    axes.set_ylim(0, max(1.0, highest * 1.1))
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
        line = plotting.Line(times, values, f"{label} (pages/s, right)", color)
        band = bands.band_for(times, values, plotting.width_px(right), threshold)
        # Thinner and lighter than the pressure: the stalls are what this plot is about.
        if band is not None:
            plotting.draw_band(right, band, line, linewidth=0.9, opacity=SWAP_OPACITY)
            continue
        x, y = plotting.break_at_gaps(times, values, threshold)
        right.plot(x, y, color=color, linewidth=0.9, alpha=0.7, label=line.label)
    # A page now and then is no traffic: the axis shows at least SWAP_AXIS_MIN, as the
    # stalls' shows at least 1%, so that a trickle is drawn as one.
    top = max(float(np.nanmax(rates)) * 1.1, SWAP_AXIS_MIN)
    right.set_ylim(0, top)
    right.set_ylabel("swapped (pages/s)")
    right.yaxis.set_major_formatter(plotting.StepFormatter())
    return right


TWIN_AXIS_RIGHT = 0.91
SWAP_OPACITY = 0.5
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
