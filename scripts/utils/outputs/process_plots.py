"""The process analysis's PNGs: rss_pid_<PID>.png for each PID of the spread table,
leak_<PID>_<first seen>.png for each flagged instance and program_<name>.png for the
programs that grew most, all drawn from the series the result carries; and the PNGs of an
earlier run this one did not draw."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
import numpy.typing as npt
import pandas as pd
from matplotlib.axes import Axes

from utils.core.text import format_duration, plural, shorten, signed
from utils.judge.leaks import BASIS_FOOTPRINT, BASIS_RSS, LeakPlot
from utils.judge.process_result import ProcessResult
from utils.judge.program_basis import PSS_BASES, basis_words
from utils.judge.program_growth import ProgramSeries
from utils.judge.spreads import PidPlot
from utils.outputs import plotting
from utils.outputs.plotting import PlotCall
from utils.reduce.buckets import BUCKET_S
from utils.reduce.programs import safe_file_part

PLOT_NAME = "rss_pid_{pid}.png"
LEAK_PLOT_NAME = "leak_{pid}_{first:%Y%m%d_%H%M%S}.png"
_PLOT_NAME_RE = re.compile(r"rss_pid_([0-9]+)\.png")
_LEAK_PLOT_NAME_RE = re.compile(r"leak_[0-9]+_[0-9]{8}_[0-9]{6}\.png")
_PROGRAM_PLOT_NAME_RE = re.compile(r"program_.*\.png")
TITLE_CMD_WIDTH = 70
LEAK_COLOR = "#c0392b"
FOOTPRINT_COLOR = "#7d3c98"
FLOOR_COLOR = "#555555"


class Timeline(NamedTuple):
    """Every snapshot read, and the gap between two that means the collector was down."""

    times: npt.NDArray[np.datetime64]
    threshold_s: float | None

    @classmethod
    def of(cls, result: ProcessResult) -> Timeline:
        return cls(result.times, plotting.gap_threshold_s(result.times))

    def shade(self, axes: Axes, series_times: npt.NDArray[np.datetime64]) -> None:
        """Shade the outages of the collector within a series' span."""
        inside = (self.times >= series_times[0]) & (self.times <= series_times[-1])
        plotting.shade_gaps(axes, self.times[inside], self.threshold_s)


class PlotCalls(NamedTuple):
    """A result's plots, by kind, as calls for the plot worker."""

    pids: list[PlotCall]
    leaks: list[PlotCall]
    programs: list[PlotCall]


def plot_calls(result: ProcessResult, out_dir: Path) -> PlotCalls:
    """Every plot of a result; the gap threshold comes from all snapshots read."""
    timeline = Timeline.of(result)
    return PlotCalls(
        top_plots(result, out_dir, timeline),
        leak_plot_calls(result, out_dir, timeline),
        [(draw_program, (series, out_dir)) for series in result.plots.programs],
    )


def top_plots(
    result: ProcessResult, out_dir: Path, timeline: Timeline | None = None
) -> list[PlotCall]:
    """One PNG per PID of the spread table."""
    timeline = timeline or Timeline.of(result)
    return [(plot_pid, (plot, timeline, out_dir)) for plot in result.plots.pids]


def leak_plot_calls(
    result: ProcessResult, out_dir: Path, timeline: Timeline | None = None
) -> list[PlotCall]:
    """One PNG per flagged instance."""
    timeline = timeline or Timeline.of(result)
    return [(plot_leak, (leak, timeline, out_dir)) for leak in result.plots.leaks]


def plot_pid(plot: PidPlot, timeline: Timeline, out_dir: Path) -> Path:
    """RSS over time of one PID; the line breaks where the PID was not seen, and
    stretches with no snapshots at all (collector down) are shaded."""
    pid, cmd = plot.pid, plot.cmd
    times, rss_mb = plot.series
    low, high = float(rss_mb.min()), float(rss_mb.max())
    figure, axes = plotting.new_figure()
    line = plotting.Line(times, rss_mb, f"RSS of PID {pid}", plotting.RAM_COLOR)
    # A band needs the legend that says what it is.
    banded = plotting.plot_series(axes, line, timeline.threshold_s) is not None
    top = high
    swap = "" if plot.swap_mb is None else f" · most swap {np.nanmax(plot.swap_mb):,.1f} MiB"
    if plot.swap_mb is not None:
        swapped = plotting.Line(times, plot.swap_mb, "in swap (VmSwap)", plotting.SWAP_COLOR)
        plotting.plot_series(axes, swapped, timeline.threshold_s)
        top = max(top, float(np.nanmax(plot.swap_mb)))
        if plot.kills is None and not banded:
            plotting.add_legend(axes)
    timeline.shade(axes, times)
    if plot.kills is not None:
        plotting.mark_ooms(axes, plot.kills)
    if plot.kills is not None or banded:
        plotting.add_legend(axes)
    plotting.style_time_axis(axes, times)
    plotting.style_value_axis(axes, "RSS (MiB)" if plot.swap_mb is None else "MiB")
    axes.set_ylim(0, max(top * 1.08, 1.0))
    subtitle = (
        f"min {low:,.1f} · max {high:,.1f} · spread {high - low:,.1f} MiB"
        f"{swap} · {plural(len(times), 'sample')}"
    )
    plotting.set_titles(axes, f"PID {pid}: {shorten(cmd, TITLE_CMD_WIDTH)}", subtitle)
    return plotting.save_figure(figure, out_dir / PLOT_NAME.format(pid=int(pid)))


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
        f" · confidence {leak.confidence:.2f} · {plural(len(times), 'sample')}"
    )
    plotting.set_titles(axes, f"PID {leak.pid}: {shorten(leak.cmd, TITLE_CMD_WIDTH)}", subtitle)
    name = LEAK_PLOT_NAME.format(pid=leak.pid, first=pd.Timestamp(times[0]))
    return plotting.save_figure(figure, out_dir / name)


def program_plot_name(program: str) -> str:
    return f"program_{safe_file_part(program)}.png"


def draw_program(series: ProgramSeries, out_dir: Path) -> Path:
    """program_<name>.png: the program's total over time."""
    program, times, values = series
    threshold = plotting.gap_threshold_s(times)
    figure, axes = plotting.new_figure()
    basis = basis_words(program.basis) if program.basis in PSS_BASES else program.basis
    label = f"total of {program.program} ({basis})"
    plotting.plot_series(axes, plotting.Line(times, values, label, plotting.RAM_COLOR), threshold)
    plotting.shade_gaps(axes, times, threshold)
    plotting.style_time_axis(axes, times)
    plotting.style_value_axis(axes, "MiB")
    plotting.add_legend(axes)
    subtitle = (
        f"{plural(program.instances, 'instance')}, at most {program.max_concurrent:,} at once"
        f" · {signed(program.growth_mb, 1)} MiB between the periods compared"
    )
    plotting.set_titles(axes, f"Program {program.program}: memory over time", subtitle)
    return plotting.save_figure(figure, out_dir / program_plot_name(program.program))


def stale_plots(out_dir: Path, keep: Sequence[Path]) -> list[Path]:
    """The rss_pid_<PID>.png, leak_<PID>_<time>.png and program_<name>.png files not in
    `keep`, which an earlier run drew."""
    kept = {path.name for path in keep}
    names = (_PLOT_NAME_RE, _LEAK_PLOT_NAME_RE, _PROGRAM_PLOT_NAME_RE)
    return sorted(
        Path(entry.path)
        for entry in os.scandir(out_dir)
        if entry.name not in kept and any(name.fullmatch(entry.name) for name in names)
    )
