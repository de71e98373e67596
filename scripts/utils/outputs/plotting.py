"""Time-series PNGs shared by both analyses.

Figures are made with matplotlib's object-oriented API (`Figure`, drawn by the Agg
canvas when saved), never pyplot: pyplot keeps every figure alive until it is closed,
and a batch of per-PID plots would leak.
"""

from __future__ import annotations

import collections
import gc
import multiprocessing
import os
import signal
import threading
import time
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from types import TracebackType
from typing import Any, NamedTuple

import matplotlib
import matplotlib.dates as mdates
import matplotlib.ticker as mticker
import numpy as np
import numpy.typing as npt
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image

from utils.core import allocator
from utils.core.atomic_files import replace_atomically
from utils.core.text import plural
from utils.judge.gaps import GAP_FACTOR, Gap, find_gaps, gap_threshold_s, usual_interval_s
from utils.outputs.bands import Band, band_for, band_label

# Where the gaps lie is judged once, in judge/gaps.py, for the summaries and the plots
# alike; the plots' callers may still take those names from here.
__all__ = [
    "GAP_FACTOR",
    "Gap",
    "find_gaps",
    "gap_threshold_s",
    "usual_interval_s",
]

# FreeType's hinting bends glyph outlines to the pixel grid, a help on a screen's small type
# and nothing a reader of a 150-dpi PNG sees; without it each glyph renders faster
# (docs/performance.md). Set here, where every plot of the project is made.
matplotlib.rcParams["text.hinting"] = "no_hinting"

FIGSIZE_IN = (10.0, 5.0)
DPI = 150
# Figure fractions: room for the two title lines above and the legend below.
MARGINS = {"left": 0.085, "right": 0.975, "top": 0.86, "bottom": 0.17}
# Few points are hard to see as a bare line: mark each one.
MARKERS_UP_TO = 60
RAM_COLOR = "#1f6fb4"
SWAP_COLOR = "#d9731a"
REFERENCE_COLOR = "#555555"

Times = npt.NDArray[np.datetime64]
Values = npt.NDArray[np.float64]


def break_at_gaps(times: Times, values: Values, threshold_s: float | None) -> tuple[Times, Values]:
    """Insert a NaN midway across every gap, so a plotted line breaks there instead
    of drawing a straight segment across an outage."""
    if threshold_s is None or len(times) < 2:
        return times, values
    after = np.nonzero(np.diff(times) / np.timedelta64(1, "s") > threshold_s)[0] + 1
    if len(after) == 0:
        return times, values
    midpoints = times[after - 1] + (times[after] - times[after - 1]) / 2
    return (
        np.insert(times, after, midpoints),
        np.insert(values.astype(np.float64), after, np.nan),
    )


def new_figure() -> tuple[Figure, Axes]:
    # Fixed margins rather than a layout engine: constrained layout draws every
    # figure twice, and the fixed frame keeps all plots of a run aligned alike.
    # At the saved resolution from the start: the legend's width, measured before saving,
    # and the saving then share one renderer and its cache of text sizes.
    # White whatever a matplotlibrc says: the PNGs are written without an alpha channel.
    figure = Figure(figsize=FIGSIZE_IN, dpi=DPI, facecolor="white")
    FigureCanvasAgg(figure)  # the figure's canvas, drawn to when saved
    figure.subplots_adjust(**MARGINS)
    axes = figure.subplots()
    axes.grid(True, alpha=0.3)
    axes.spines[["top", "right"]].set_visible(False)
    return figure, axes


def style_time_axis(axes: Axes, times: Times) -> None:
    """A date axis that reads well from an hour to several months, no rotated labels."""
    # matplotlib.dates has no type hints for these two.
    locator = mdates.AutoDateLocator(minticks=3, maxticks=8)  # type: ignore[no-untyped-call]
    # Steps of 2 as well: a 10-second demo otherwise gets 5-second ticks, one or two of them.
    locator.intervald[mdates.SECONDLY] = [1, 2, 5, 10, 15, 30]
    locator.intervald[mdates.MINUTELY] = [1, 2, 5, 10, 15, 30]
    axes.xaxis.set_major_locator(locator)
    # Ticks seconds apart (a soak test) read as clock times, 01:48:15, rather than a bare
    # "15" whose minute only the offset label names.
    formatter = mdates.ConciseDateFormatter(  # type: ignore[no-untyped-call]
        locator, formats=["%Y", "%b", "%d", "%H:%M", "%H:%M", "%H:%M:%S"]
    )
    axes.xaxis.set_major_formatter(formatter)
    axes.set_xlabel("Time (UTC)")
    if len(times) and times.min() == times.max():
        # One moment: matplotlib would pad it to four years; show an hour around it.
        half_hour = np.timedelta64(30, "m")
        around = [times[0] - half_hour, times[0] + half_hour]
        low, high = mdates.date2num(around)  # type: ignore[no-untyped-call]
        axes.set_xlim(low, high)


def style_value_axis(axes: Axes, label: str, top: float | None = None) -> None:
    """Values start at zero, where memory does; thousands are separated."""
    axes.set_ylabel(label)
    axes.set_ylim(0, top)
    axes.yaxis.set_major_formatter(StepFormatter())


# Ticks closer than this many decimals apart are not told apart anyway.
MAX_TICK_DECIMALS = 6


class StepFormatter(mticker.Formatter):
    """Thousands separated, with as many decimals as the ticks' step needs: a 1.1 MiB
    process's axis reads 0.0, 0.2 ... 1.2, not 0, 0, 0, 1, 1, 1; a GiB axis has none.
    matplotlib's Axis calls set_locs with the ticks before it formats them."""

    def __init__(self) -> None:
        self.decimals = 0

    def set_locs(self, locs: list[float]) -> None:
        super().set_locs(locs)
        self.decimals = tick_decimals(locs)

    def __call__(self, x: float, pos: int | None = None) -> str:
        return f"{x:,.{self.decimals}f}"


def tick_decimals(locs: Sequence[float]) -> int:
    """The fewest decimals (up to MAX_TICK_DECIMALS) that write every tick exactly, to a
    millionth of their step: 0.25-apart ticks need 2, 0.2-apart 1, 500-apart 0."""
    ticks = np.asarray(locs, dtype=np.float64)
    ticks = ticks[np.isfinite(ticks)]
    steps = np.diff(np.unique(ticks))
    if not len(steps):
        return 0
    tolerance = float(steps.min()) * 1e-6
    for decimals in range(MAX_TICK_DECIMALS):
        if np.all(np.abs(np.round(ticks, decimals) - ticks) <= tolerance):
            return decimals
    return MAX_TICK_DECIMALS


def set_titles(axes: Axes, title: str, subtitle: str) -> None:
    """A bold title and a grey line of context under it, both at the top left."""
    figure = axes.get_figure()
    assert isinstance(figure, Figure)
    # parse_math=False: a "$" in a command line is text, not mathtext.
    figure.text(0.012, 0.975, title, fontsize=12, fontweight="bold", va="top", parse_math=False)
    figure.text(
        0.012, 0.915, subtitle, fontsize=9, color=REFERENCE_COLOR, va="top", parse_math=False
    )


class Line(NamedTuple):
    """A time series to draw, as the legend names it."""

    times: Times
    values: Values
    label: str
    color: str


def plot_series(axes: Axes, line: Line, threshold_s: float | None) -> Band | None:
    """The line, broken across gaps longer than threshold_s; each sample marked when few; drawn
    as a band (bands.py) when it holds more points than the axes have pixels across. The band
    drawn, if any."""
    band = band_for(line.times, line.values, width_px(axes), threshold_s)
    if band is not None:
        draw_band(axes, band, line)
        return band
    x, y = break_at_gaps(line.times, line.values, threshold_s)
    marker = "o" if len(line.times) <= MARKERS_UP_TO else None
    axes.plot(
        x, y, color=line.color, linewidth=1.4, marker=marker, markersize=3.5, label=line.label
    )
    return None


# Light enough that a second series' band and line read through it; its edge, as light, keeps
# a peak of a few minutes visible when the band there is a pixel wide.
BAND_ALPHA = 0.3
BAND_EDGE_WIDTH = 0.8


def width_px(axes: Axes) -> float:
    """How many pixels across the axes are in the saved PNG."""
    figure = axes.get_figure()
    assert isinstance(figure, Figure)
    return float(axes.get_position().width * figure.get_figwidth() * DPI)


def draw_band(
    axes: Axes, band: Band, line: Line, linewidth: float = 1.4, opacity: float = 1.0
) -> None:
    """The band from lowest to highest, light, in the line's colour, and its median as the
    line (both fainter for a secondary series, opacity below 1); the legend says once, in grey,
    what a band and its line are."""
    axes.fill_between(band.times, band.lowest, band.highest, color=line.color,
                      alpha=BAND_ALPHA * opacity, linewidth=BAND_EDGE_WIDTH)  # fmt: skip
    axes.plot(band.times, band.median, color=line.color, linewidth=linewidth, alpha=opacity,
              label=line.label)  # fmt: skip
    label = band_label(band.bucket_hours)
    if label not in axes.get_legend_handles_labels()[1]:
        empty = np.array([], dtype=np.float64)
        proxy = axes.fill_between(empty, empty, color=REFERENCE_COLOR, alpha=BAND_ALPHA)
        proxy.set_label(label)
        proxy.set_gid(BAND_GID)


BAND_GID = "band"  # marks the legend's entry that says what a band is


def shade_gaps(axes: Axes, times: Times, threshold_s: float | None) -> None:
    """A light band over each stretch with no snapshots, so an outage reads as one."""
    for number, gap in enumerate(find_gaps(times, threshold_s)):
        label = "no snapshots" if number == 0 else None
        start, end = mdates.date2num([gap.start, gap.end])  # type: ignore[no-untyped-call]
        axes.axvspan(start, end, color=REFERENCE_COLOR, alpha=0.08, lw=0, label=label)


OOM_COLOR = "#c0392b"


def mark_ooms(axes: Axes, moments: Times, within: Times | None = None) -> None:
    """A dotted vertical line at each OOM kill (the middle of the interval it fell in),
    labelled once; only those within the span of `within`, when given."""
    if within is not None and len(within):
        moments = moments[(moments >= within.min()) & (moments <= within.max())]
    for number, moment in enumerate(moments):
        x = mdates.date2num(moment)  # type: ignore[no-untyped-call]
        label = "OOM kill" if number == 0 else None
        axes.axvline(x, color=OOM_COLOR, linestyle=":", linewidth=1.6, label=label)


def draw_reference(axes: Axes, level: float, label: str) -> None:
    """A dashed horizontal line such as MemTotal, labelled in the legend."""
    axes.axhline(level, color=REFERENCE_COLOR, linestyle="--", linewidth=1.1, label=label)


def add_legend(axes: Axes, *more: Axes) -> None:
    """Below the plot, where it never hides a line (with the lines of twin axes, if any), what
    a band is said once and last; in two rows, the plot a row shorter, when one is too wide."""
    entries: dict[str, Artist] = {}
    for each in (axes, *more):
        for handle, label in zip(*each.get_legend_handles_labels(), strict=True):
            entries.setdefault(label, handle)
    ordered = sorted(entries.items(), key=lambda entry: entry[1].get_gid() == BAND_GID)
    figure = axes.get_figure()
    assert isinstance(figure, Figure)
    handles, labels = [handle for _, handle in ordered], [label for label, _ in ordered]
    legend = figure.legend(handles, labels, loc="lower center", ncols=len(labels), **LEGEND_STYLE)
    if legend.get_window_extent().width <= figure.bbox.width * LEGEND_MOST_WIDTH:
        return
    legend.remove()
    figure.legend(handles, labels, loc="lower center", ncols=-(-len(labels) // 2), **LEGEND_STYLE)
    figure.subplots_adjust(bottom=MARGINS["bottom"] + LEGEND_ROW)


LEGEND_STYLE: dict[str, Any] = {"fontsize": 9, "frameon": False}
# A row wider than this fraction of the figure runs into its edges.
LEGEND_MOST_WIDTH = 0.98
# A row of the legend, as a fraction of the figure's height.
LEGEND_ROW = 0.04


# zlib's level and strategy for the PNGs (Pillow's default is 6, the default strategy): the
# same pixels; the fast level skips zlib's longer match search, and the filtered strategy suits
# rows that the PNG filters leave mostly zero; a slightly larger file for much less encoding
# (docs/performance.md).
PNG_COMPRESS_LEVEL = 1
PNG_COMPRESS_TYPE = 1  # zlib's Z_FILTERED


def save_figure(figure: Figure, path: Path) -> Path:
    """Write the PNG under a temporary name, then rename: a reader never sees half a file."""
    image = rendered(figure)
    saved = replace_atomically(
        path,
        lambda temp: image.save(
            temp,
            format="png",
            compress_level=PNG_COMPRESS_LEVEL,
            compress_type=PNG_COMPRESS_TYPE,
            dpi=(DPI, DPI),
        ),
    )
    # A figure is a web of reference cycles: without this, a batch of plots piles up
    # figures (tens of MiB) until the garbage collector happens to run. The collection
    # alone frees them: figure.clear() first would only rebuild empty axes to throw away.
    gc.collect()
    return saved


def rendered(figure: Figure) -> Image.Image:
    """The figure drawn by its Agg canvas (new_figure's), as an RGB image: every figure here
    is opaque (new_figure makes it white), so its alpha channel says nothing, and RGB is a
    quarter less to encode. Pillow encodes it, as matplotlib's own savefig would."""
    canvas = figure.canvas
    assert isinstance(canvas, FigureCanvasAgg)
    with warnings.catch_warnings():
        # Glyphs the default font lacks (CJK, emoji in command lines) are drawn as
        # boxes; matplotlib's warning about each one would only clutter the console.
        warnings.filterwarnings("ignore", message=r"Glyph \d+ .*missing from font")
        canvas.draw()  # type: ignore[no-untyped-call]
    pixels = canvas.buffer_rgba()  # type: ignore[no-untyped-call]
    return Image.frombuffer("RGBA", canvas.get_width_height(), pixels).convert("RGB")


def subtitle_for(times: Times, threshold_s: float | None) -> str:
    parts = [plural(len(times), "snapshot")]
    gaps = find_gaps(times, threshold_s)
    if gaps:
        parts.append(f"{plural(len(gaps), 'gap')} with no snapshots")
    return " · ".join(parts)


# --- A second process for drawing ------------------------------------------------

PARENT_CHECK_S = 0.5
# Plots handed to the worker at a time: the one it draws and the next, so it never waits.
WORKER_QUEUE = 2

PlotJob = Callable[..., Path]
# A plot to draw: a picklable module-level function and its arguments.
PlotCall = tuple[PlotJob, tuple[object, ...]]


def _worker_init() -> None:
    # Forked from an analysis that holds its results: its objects are left out of this
    # process's collections, which would otherwise write to every page holding one and
    # so copy them.
    gc.freeze()
    # Ctrl-C, and SIGTERM from timeout, pkill or systemd, reach the whole process
    # group; the parent handles them and stops us (after the current plot, so no
    # temporary file is left).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    # If the parent is killed outright, nothing tells a pool worker to stop:
    # watch for it, so no orphan is left behind.
    parent = os.getppid()

    def exit_with_parent() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_CHECK_S)
        os._exit(0)

    threading.Thread(target=exit_with_parent, daemon=True).start()


def _ready() -> bool:
    return True


class PlotWorker:
    """One forked process that draws a batch of PNGs with this one, each taking the
    next plot as it is free.

    matplotlib holds the GIL while it draws, so threads do not help, but on two
    cores a second process halves the plotting time. Start it before any thread
    and before the data is loaded: the fork then shares the imported libraries
    and holds none of the rows. Where it cannot start (no fork, a process limit)
    or dies, everything is drawn here instead.
    """

    def __init__(self, enabled: bool = True) -> None:
        self._pool: ProcessPoolExecutor | None = None
        if enabled:
            self._start()

    def _start(self) -> None:
        try:
            pool = ProcessPoolExecutor(
                max_workers=1,
                mp_context=multiprocessing.get_context("fork"),
                initializer=_worker_init,
            )
        except (OSError, ValueError, NotImplementedError, ImportError):
            return  # no fork or no semaphores here: draw in this process
        try:
            pool.submit(_ready).result(timeout=30)  # fork now, not once threads run
        except (OSError, BrokenProcessPool, TimeoutError):
            pool.shutdown(wait=False, cancel_futures=True)
            return
        self._pool = pool

    def __enter__(self) -> PlotWorker:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def _hand_over(
        self,
        jobs: Sequence[PlotCall],
        pending: collections.deque[int],
        remote: dict[int, Future[Path]],
    ) -> None:
        """Submit pending jobs from the front while the worker has fewer than WORKER_QUEUE
        (one drawing, one waiting keeps it busy); the last pending one stays for this process."""
        busy = sum(not future.done() for future in remote.values())
        while self._pool is not None and len(pending) > 1 and busy < WORKER_QUEUE:
            index = pending.popleft()
            try:
                remote[index] = self._pool.submit(jobs[index][0], *jobs[index][1])
            except BrokenProcessPool:  # the worker died: the rest is drawn here
                pending.appendleft(index)
                self._pool.shutdown(wait=False, cancel_futures=True)
                self._pool = None
            busy += 1

    def draw(self, jobs: Sequence[PlotCall]) -> list[Path]:
        """Every job(*args), the worker taking them from the front and this process from the
        back until they meet, so that the two finish together however long each plot takes;
        the paths in order. Give all the plots of a run at once."""
        # The result drawn and matplotlib's modules live until the run ends: out of the
        # collector's sight, the collection after each figure walks that figure alone.
        allocator.freeze()
        if self._pool is None or len(jobs) < 2:
            return [job(*args) for job, args in jobs]
        pending = collections.deque(range(len(jobs)))
        remote: dict[int, Future[Path]] = {}
        paths: dict[int, Path] = {}
        while pending:
            self._hand_over(jobs, pending, remote)
            index = pending.pop()
            paths[index] = jobs[index][0](*jobs[index][1])
        for index, future in remote.items():
            try:
                paths[index] = future.result()
            except BrokenProcessPool:  # the worker was killed: draw it here
                paths[index] = jobs[index][0](*jobs[index][1])
        return [paths[index] for index in range(len(jobs))]
