"""Where MemTotal went: a breakdown of /proc/meminfo into parts that sum to MemTotal, and
what changed between two periods.

The parts follow the kernel's Documentation/filesystems/proc.rst (meminfo). Its counters
overlap and "may not add up", so the breakdown is built to sum exactly: every part but the
last is one field (or one sum), and `Unaccounted_MB` is MemTotal minus all of them. That
remainder is memory the kernel hands out without a meminfo line of its own: drivers' and
GPUs' allocations (alloc_pages, vmalloc counted in VmallocUsed only where a driver says so),
ZFS's ARC, ballooned pages, hugepages reserved up front. A field an old kernel lacks counts
as 0 and so folds into it.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import numpy.typing as npt
import pandas as pd

from utils.core.text import signed
from utils.core.units import DAY_S
from utils.parser import parse_time_arg
from utils.read.snapshot_specs import BREAKDOWN_FIELDS


@dataclass(frozen=True)
class Part:
    """One column of memory_breakdown.csv."""

    column: str
    label: str  # for the console and the report
    short: str  # for the plot's legend
    color: str


# In memory_breakdown.csv's order; the plot stacks them in its own order.
PARTS: tuple[Part, ...] = (
    Part("Free_MB", "free", "free", "#e8eef5"),
    Part("PageCache_MB", "page cache (files)", "page cache", "#9cc3e6"),
    Part("Shmem_MB", "Shmem (tmpfs, shared memory)", "Shmem (tmpfs)", "#7b3fa0"),
    Part("Anon_MB", "processes' private memory (AnonPages)", "processes (anon)", "#1f6fb4"),
    Part("SlabReclaimable_MB", "slab, reclaimable", "slab, reclaimable", "#a8d5a2"),
    Part("SlabUnreclaimable_MB", "slab, unreclaimable", "slab, unreclaimable", "#2a8f5a"),
    Part("KernelStack_MB", "kernel stacks", "kernel stacks", "#b9770e"),
    Part("PageTables_MB", "page tables", "page tables", "#f0b27a"),
    Part("Unaccounted_MB", "unaccounted (drivers, GPU, ZFS ARC, ...)", "unaccounted", "#d6338a"),
)
BREAKDOWN_COLUMNS: tuple[str, ...] = tuple(part.column for part in PARTS)
LABELS = {part.column: part.label for part in PARTS}
SHORT_LABELS = {part.column: part.short for part in PARTS}
BREAKDOWN_CSV = "memory_breakdown.csv"


def compute_breakdown(raw: pd.DataFrame) -> pd.DataFrame:
    """The parts of MemTotal per snapshot (MiB), in BREAKDOWN_COLUMNS order; each row sums
    to MemTotal. A missing field counts as 0: it folds into Unaccounted_MB (PageCache_MB
    keeps Shmem when Shmem is missing, since Cached holds it)."""

    def field(name: str) -> pd.Series:
        values = raw[name] if name in raw else pd.Series(np.nan, index=raw.index)
        return values.astype(np.float64).fillna(0.0)

    shmem = field("Shmem_MB")
    parts = {
        "Free_MB": field("MemFree_MB"),
        "PageCache_MB": field("Buffers_MB") + field("Cached_MB") + field("SwapCached_MB") - shmem,
        "Shmem_MB": shmem,
        "Anon_MB": field("AnonPages_MB"),
        "SlabReclaimable_MB": field("SReclaimable_MB"),
        "SlabUnreclaimable_MB": field("SUnreclaim_MB"),
        "KernelStack_MB": field("KernelStack_MB"),
        "PageTables_MB": field("PageTables_MB"),
    }
    frame = pd.DataFrame(parts, index=raw.index)
    frame["Unaccounted_MB"] = raw["MemTotal_MB"].astype(np.float64) - frame.sum(axis=1)
    return frame


def missing_fields(raw: pd.DataFrame) -> list[str]:
    """The breakdown's fields that some snapshot lacks, and so fold into Unaccounted_MB
    there. Not Shmem: without it tmpfs stays in PageCache_MB, where Cached holds it."""
    return [
        name.removesuffix("_MB")
        for name in BREAKDOWN_FIELDS
        if name != "Shmem_MB" and (name not in raw or bool(raw[name].isna().any()))
    ]


# --- What changed ---------------------------------------------------------------------


@dataclass(frozen=True)
class Period:
    """An inclusive span of UTC time, as --compare and the default name it."""

    start: datetime
    end: datetime
    name: str  # "2026-03-02", or "2026-03-02 10:00:00 to 12:00:00"


@dataclass(frozen=True)
class Change:
    column: str
    before_mb: float  # the median over the first period
    after_mb: float  # ... and over the second
    # of the rise of RAM_Used_Available_MB; None when it did not rise beyond its noise
    share_pct: float | None

    @property
    def change_mb(self) -> float:
        return self.after_mb - self.before_mb


@dataclass(frozen=True)
class Comparison:
    first: Period
    last: Period
    rise_mb: float | None  # RAM_Used_Available_MB's change (None without MemAvailable)
    changes: list[Change]  # largest change (either sign) first
    # the rise's noise: the larger of its spreads (interquartile ranges) inside each period
    noise_mb: float | None = None


def default_periods(times: pd.DatetimeIndex) -> tuple[Period, Period] | None:
    """The first whole UTC day against the last; for a collection without two whole days,
    its first and last quarter (so that a soak test compares its start with its end).
    None with fewer than two snapshots. A day is whole when the snapshots run from its
    first interval to its last (a day sampled at 00:00 ... 23:50 every 10 minutes is)."""
    if len(times) < 2:
        return None
    first, last = times[0].to_pydatetime(), times[-1].to_pydatetime()
    seconds = times.to_numpy().astype("datetime64[s]").astype(np.int64)
    slack = timedelta(seconds=float(np.median(np.diff(seconds))))
    day = timedelta(seconds=DAY_S)
    start_day = _midnight(first)
    if start_day < first:
        start_day += day
    end_day = _midnight(last + slack)  # the midnight after the last whole day
    # Of the whole days, the first and the last that hold snapshots (an outage may take a
    # whole day).
    days = sorted({_midnight(moment) for moment in times.to_pydatetime()})
    held = [moment for moment in days if start_day <= moment < end_day]
    if len(held) >= 2:
        return day_period(held[0]), day_period(held[-1])
    quarter = (last - first) / 4
    return span_period(first, first + quarter), span_period(last - quarter, last)


def _midnight(moment: datetime) -> datetime:
    return datetime.combine(moment.date(), datetime.min.time())


PERIOD_SEPARATOR = ".."


def parse_period(text: str) -> Period:
    """`YYYY-MM-DD[ HH:MM[:SS]]` (the whole day, minute or second it names), or
    `START..END` with both in that form (END's day or minute to its end); UTC. Raises
    ValueError with a readable message."""
    start_text, separator, end_text = text.partition(PERIOD_SEPARATOR)
    if not separator:
        end_text = start_text
    start = parse_time_arg(start_text, end=False)
    end = parse_time_arg(end_text, end=True)
    if end < start:
        raise ValueError(f"the period {text!r} ends before it starts")
    if not separator and len(start_text.strip()) == len("YYYY-MM-DD"):
        return day_period(start)
    return span_period(start, end)


def add_compare_arg(parser: argparse.ArgumentParser, what: str) -> None:
    """--compare FROM TO, as both analyses take it; `what` says what it compares."""
    parser.add_argument(
        "--compare",
        nargs=2,
        type=period_arg,
        metavar=("FROM", "TO"),
        help=f"{what} between two periods, each a UTC day (2026-03-02) or START..END"
        " (2026-03-02 10:00..2026-03-02 12:00); default: the first whole day against the last",
    )


def period_arg(text: str) -> Period:
    """--compare's type: a period, or argparse's one-line usage error."""
    try:
        return parse_period(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def day_period(day: datetime) -> Period:
    end = day + timedelta(seconds=DAY_S) - timedelta(microseconds=1)
    return Period(day, end, f"{day:%Y-%m-%d}")


def span_period(start: datetime, end: datetime) -> Period:
    tail = f"{end:%H:%M:%S}" if start.date() == end.date() else f"{end:%Y-%m-%d %H:%M:%S}"
    return Period(start, end, f"{start:%Y-%m-%d %H:%M:%S} to {tail}")


def in_period(index: pd.DatetimeIndex, period: Period) -> npt.NDArray[np.bool_]:
    times = index.to_numpy()
    start, end = np.datetime64(period.start, "us"), np.datetime64(period.end, "us")
    return np.asarray((times >= start) & (times <= end), dtype=bool)


def compare(breakdown: pd.DataFrame, used_mb: pd.Series, first: Period, last: Period) -> Comparison:
    """The medians of each part over the two periods (both hold snapshots), largest change
    first, each as a share of the rise of `used_mb` (MemTotal - MemAvailable) where that
    rise stands above its noise (a share of a rise the noise could make is no information)."""
    index = pd.DatetimeIndex(breakdown.index)
    one, two = in_period(index, first), in_period(index, last)
    before = breakdown[one].median()
    after = breakdown[two].median()
    used_one, used_two = used_mb[one].median(), used_mb[two].median()
    rise = None if np.isnan(used_one) or np.isnan(used_two) else float(used_two - used_one)
    noise = None if rise is None else max(_spread_mb(used_mb[one]), _spread_mb(used_mb[two]))
    shared = rise is not None and noise is not None and rise > 0 and rise > noise
    changes = []
    for column in BREAKDOWN_COLUMNS:
        delta = float(after[column] - before[column])
        share = delta / rise * 100 if shared and rise else None
        changes.append(Change(column, float(before[column]), float(after[column]), share))
    changes.sort(key=lambda change: -abs(change.change_mb))
    return Comparison(first, last, rise, changes, noise)


def _spread_mb(values: pd.Series) -> float:
    """How far values move inside a period: their interquartile range (0 for one value).
    Robust: a nightly job's hour does not widen it, a trend across the period does."""
    known = values.dropna()
    if known.size < 2:
        return 0.0
    low, high = np.percentile(known.to_numpy(dtype=np.float64), [25, 75])
    return float(high - low)


def format_comparison(comparison: Comparison) -> list[str]:
    """The console section: the rise of used memory, then each part's change, largest
    first (free, the rise's mirror image, is left out)."""
    lines = [f"What changed: {comparison.first.name} against {comparison.last.name} (medians)"]
    rows = []
    if comparison.rise_mb is not None:
        noise = comparison.noise_mb
        within = noise is not None and 0 < comparison.rise_mb <= noise
        note = f"within its noise ({noise:,.0f} MiB): no shares" if within else ""
        rows.append(("RAM used (MemTotal - MemAvailable)", signed(comparison.rise_mb), note))
    for change in comparison.changes:
        if change.column != "Free_MB":
            share = "" if change.share_pct is None else f"{change.share_pct:z.0f}% of the rise"
            rows.append((LABELS[change.column], signed(change.change_mb), share))
    label_width = max(len(row[0]) for row in rows)
    number_width = max(len(row[1]) for row in rows)
    for label, number, share in rows:
        line = f"  {label:<{label_width}}  {number:>{number_width}} MiB  {share}"
        lines.append(line.rstrip())
    return lines


def periods_with_data(times: pd.DatetimeIndex, limit: int = 6) -> str:
    """The UTC days that hold snapshots, as runs (`2026-03-01 to 2026-03-03, 2026-03-05`)."""
    days = sorted({moment.date() for moment in times})
    runs: list[list[object]] = []
    for day in days:
        if runs and (day - runs[-1][1]).days == 1:  # type: ignore[operator]
            runs[-1][1] = day
        else:
            runs.append([day, day])
    texts = [f"{a}" if a == b else f"{a} to {b}" for a, b in runs]
    more = f" and {len(texts) - limit} more" if len(texts) > limit else ""
    return ", ".join(texts[:limit]) + more


def check_periods(times: pd.DatetimeIndex, periods: Sequence[Period]) -> str | None:
    """Why --compare cannot be done (a period with no snapshot), or None."""
    index = pd.DatetimeIndex(times)
    empty = [period for period in periods if not in_period(index, period).any()]
    if not empty:
        return None
    which = "; ".join(period.name + _between(index, period) for period in empty)
    verb = "holds" if len(empty) == 1 else "hold"
    return f"--compare: {which} {verb} no snapshot; the snapshots are on {periods_with_data(index)}"


def _between(index: pd.DatetimeIndex, period: Period) -> str:
    """` (in a gap from ... to ...)` when snapshots lie on both sides of the period."""
    times = index.to_numpy()
    before = times[times < np.datetime64(period.start, "us")]
    after = times[times > np.datetime64(period.end, "us")]
    if len(before) == 0 or len(after) == 0:
        return ""
    start, end = pd.Timestamp(before[-1]), pd.Timestamp(after[0])
    return f" (in a gap in collection from {start:%Y-%m-%d %H:%M:%S} to {end:%Y-%m-%d %H:%M:%S})"
