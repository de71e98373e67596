"""service_<name>.png: a service's memory over time, its anon + swap (what its leak verdict
judges) and its limit where it has one; for the flagged services, those rising toward their
limit and the largest (utils.judge.services.plotted). And the service PNGs an earlier run drew
that this one did not."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from utils.core.text import plural
from utils.judge.services import BASIS_FOOTPRINT, ServiceFindings, ServicePlot
from utils.outputs import plotting
from utils.outputs.plotting import PlotCall, PlotWorker
from utils.reduce.programs import safe_file_part

SERVICE_PLOT_NAME = "service_{name}.png"
_SERVICE_PLOT_RE = re.compile(r"service_.*\.png")
FOOTPRINT_COLOR = "#7d3c98"
LIMIT_COLOR = "#c0392b"


def plot_names(plots: Sequence[ServicePlot]) -> list[str]:
    """A file name per plot: the service's name made safe, `_2`, `_3` ... after a name an
    earlier plot of the run took (two cgroups may share a last path component)."""
    names: list[str] = []
    for plot in plots:
        base = "root" if plot.cgroup == "/" else safe_file_part(plot.service)
        name, count = base, 1
        while SERVICE_PLOT_NAME.format(name=name) in names:
            count += 1
            name = f"{base}_{count}"
        names.append(SERVICE_PLOT_NAME.format(name=name))
    return names


# From this rate on (100 MiB/h), a leak reads better per hour: a soak test's.
HOURLY_FROM_MB_PER_DAY = 2400.0


def _rate_text(mb_per_day: float) -> str:
    if mb_per_day < HOURLY_FROM_MB_PER_DAY:
        return f"{mb_per_day:,.1f} MiB/day"
    return f"{mb_per_day / 24:,.1f} MiB/h"


def draw_service(plot: ServicePlot, path: Path) -> Path:
    """One service's memory, its judged memory and its limit over time."""
    times = plot.times
    threshold = plotting.gap_threshold_s(times)
    figure, axes = plotting.new_figure()
    memory = plotting.Line(times, plot.memory_mb, "memory (with page cache)", plotting.RAM_COLOR)
    plotting.plot_series(axes, memory, threshold)
    judged = "anon + swap" if plot.basis == BASIS_FOOTPRINT else "memory"
    if plot.basis == BASIS_FOOTPRINT:
        foot = plotting.Line(times, plot.footprint_mb, judged, FOOTPRINT_COLOR)
        plotting.plot_series(axes, foot, threshold)
    top = float(np.nanmax(np.r_[plot.memory_mb, plot.footprint_mb, 1.0]))
    if plot.limit_mb is not None:
        axes.axhline(plot.limit_mb, color=LIMIT_COLOR, linestyle="--", linewidth=1.2, label="limit")
        top = max(top, plot.limit_mb)
    plotting.shade_gaps(axes, times, threshold)
    plotting.style_time_axis(axes, times)
    plotting.style_value_axis(axes, "MiB")
    axes.set_ylim(0, top * 1.08)
    plotting.add_legend(axes)
    if plot.rate_mb_per_day is not None:
        verdict = f"{judged} leaks {_rate_text(plot.rate_mb_per_day)}"
    elif plot.judged:
        verdict = f"{judged}: no sustained growth"
    else:
        verdict = f"{judged}: watched too short to judge"
    subtitle = f"{plot.cgroup} · {verdict} · {plotting.subtitle_for(times, threshold)}"
    who = "The root cgroup (the whole machine)" if plot.cgroup == "/" else f"Service {plot.service}"
    plotting.set_titles(axes, f"{who}: memory over time", subtitle)
    return plotting.save_figure(figure, path)


def service_plot_calls(found: ServiceFindings | None, out_dir: Path) -> list[PlotCall]:
    """A call for the plot worker per service plot of a run, in found.plots' order."""
    if found is None:
        return []
    names = plot_names(found.plots)
    return [
        (draw_service, (plot, out_dir / name))
        for plot, name in zip(found.plots, names, strict=True)
    ]


def draw_service_plots(
    found: ServiceFindings | None, out_dir: Path, worker: PlotWorker
) -> tuple[list[Path], list[str]]:
    """Every service plot of a run, and what was drawn as lines for the console."""
    calls = service_plot_calls(found, out_dir)
    if not calls:
        return [], []
    drawn = worker.draw(calls)
    return drawn, [f"Wrote {plural(len(drawn), 'service plot')}: {out_dir}/service_<name>.png"]


def stale_service_plots(out_dir: Path, keep: Sequence[Path]) -> list[Path]:
    """The service_<name>.png files not in `keep`, which an earlier run drew."""
    kept = {path.name for path in keep}
    return sorted(
        Path(entry.path)
        for entry in os.scandir(out_dir)
        if entry.name not in kept and _SERVICE_PLOT_RE.fullmatch(entry.name)
    )
