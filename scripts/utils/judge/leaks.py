"""The leak finder over the records: which process instances show sustained growth, judged
on their floors by utils.judge.growth; and what the plot of each flagged one shows.

Each function takes what the facade computed once per run (the instance table, which
instances have their footprint judged, the floors): none of them recomputes another's input.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from utils.core import allocator
from utils.core.units import DAY_S
from utils.judge.growth import (
    FloorTable,
    Growth,
    GrowthParams,
    InstanceSpans,
    coarsened,
    floor_level,
    min_span_for,
    short_instances,
    survey,
)
from utils.judge.spreads import DECIMALS, Series
from utils.parser import Bundle, Source, to_epoch_s
from utils.reduce.process_records import MILLI, Floors, InstanceTable, ProcessRecords

# What the leak finder judged: the memory the process owns wherever the kernel keeps it
# (RssAnon + VmSwap) where every row has it, else RSS (dumps of an older collector).
BASIS_FOOTPRINT = "anon+swap"
BASIS_RSS = "RSS"


@dataclass(frozen=True)
class Leak:
    """A process instance whose memory shows sustained growth."""

    pid: int
    first_seen: datetime  # UTC, the instance's first and last snapshot
    last_seen: datetime
    since: datetime  # where the growth starts
    growth_mb_per_day: float
    growth_mb: float  # fitted growth from `since` to `last_seen`
    confidence: float  # 0..1, how clean the trend is
    cmd: str  # of the instance's first row
    instance: int  # for the plots: the instance's number in the records...
    first_rank: int  # ... and its first and last snapshot read
    last_rank: int
    start_mb: float  # the fitted line's level at `since`
    bucket_s: float  # the length of the floors it was judged on: its time scale
    basis: str = BASIS_RSS  # what was judged: BASIS_FOOTPRINT or BASIS_RSS
    user: str | None = None  # of its first row; None: USER not read (not in leaks.csv)


@dataclass(frozen=True)
class LeakSurvey:
    """The leaking instances, and how many of all instances were watched long enough to be
    judged at all (for at least min_span_s)."""

    leaks: list[Leak]
    judged: int
    instances: int
    min_span_s: float


def planned_floor_level(files: Sequence[Source], params: GrowthParams) -> int:
    """The finest floors the leak finder may judge on, from the names of the files alone
    (read before any file is): the collection's span, and the interval of its loose files
    (a bundle's members are not listed before it is read: its whole day counts)."""
    stamps: list[int] = []
    loose: list[int] = []
    for source in files:
        if isinstance(source, Bundle):
            start = to_epoch_s(source.timestamp)
            stamps += [start, start + DAY_S - 1]
        else:
            stamps.append(source.epoch_s)
            loose.append(source.epoch_s)
    if not stamps:
        return 0
    steps = np.diff(np.array(sorted(loose), dtype=np.int64))
    steps = steps[steps > 0]
    interval = float(np.median(steps)) if steps.size else None
    min_span = min_span_for(params, float(max(stamps) - min(stamps)), interval or 1.0)
    return floor_level(min_span, interval)


def footprint_judged(table: InstanceTable) -> npt.NDArray[np.bool_]:
    """Per instance: is its anon + swap judged (every kept row has it), not its RSS?

    Leaked pages are never touched again, so under memory pressure they are the first the
    kernel swaps out: RSS then stops rising while the leak goes on (atop(1) on RGROW: it
    "can also be negative ... when part of the process is paged out"). RssAnon + VmSwap is
    the anonymous memory the process owns, in RAM or in swap; file-backed pages, which the
    kernel drops and reads again at will, are left out."""
    judged: npt.NDArray[np.bool_] = (table.foot_samples == table.samples) & (table.samples > 0)
    return judged


def judged_floors(
    records: ProcessRecords,
    table: InstanceTable,
    footed: npt.NDArray[np.bool_],
    judged: npt.NDArray[np.bool_] | None = None,
) -> Floors:
    """The floors the leak finder fits: anon + swap for the instances footprint_judged
    picks (`footed`, in table order), RSS for the rest; by instance, then bucket. With
    `judged` (in table order), only those instances' floors: a year's short-lived processes
    hold most of its floors, and the finder never reads them (growth.short_instances)."""
    foot = np.zeros(records.instance_count, bool)
    foot[table.number[footed]] = True
    rss = ~foot
    if judged is not None:
        wanted = np.zeros(records.instance_count, bool)
        wanted[table.number[judged]] = True
        rss &= wanted
        foot &= wanted
    # Taking each kind lets go of the floors of the instances not wanted, a part per batch:
    # the heap is trimmed after each, before the next arrays are made.
    kinds = [records.floors(rss)]
    allocator.trim()
    kinds.append(records.foot_floors(foot))
    allocator.trim()
    if not len(kinds[1].instance) or not len(kinds[0].instance):
        return kinds[0] if len(kinds[0].instance) else kinds[1]
    # The two kinds hold different instances, each sorted by instance, then bucket: a row's
    # place in the merged table is its place in its own kind plus the other kind's rows of
    # lower instances (what a stable sort by instance gives). Column by column, each let go
    # once placed, so that a year's judged floors are not held twice over.
    parts = [list(kind) for kind in kinds]
    del kinds
    places = [
        np.arange(len(own[0])) + np.searchsorted(other[0], own[0])
        for own, other in ((parts[0], parts[1]), (parts[1], parts[0]))
    ]
    merged = [_placed(places, parts[0].pop(0), parts[1].pop(0)) for _ in Floors._fields]
    return Floors(*merged)


def _placed(
    places: list[npt.NDArray[np.intp]], first: npt.NDArray[np.int64], second: npt.NDArray[np.int64]
) -> npt.NDArray[np.int64]:
    """A column of two kinds' rows, each row at its place."""
    column = np.empty(len(first) + len(second), np.result_type(first, second))
    column[places[0]] = first
    column[places[1]] = second
    return column


class Judged(NamedTuple):
    """What the leak finder reads of the records, computed once per run."""

    table: InstanceTable  # records.instances()
    footed: npt.NDArray[np.bool_]  # footprint_judged(table)
    floors: Floors  # judged_floors(records, table, footed)

    @classmethod
    def of(
        cls,
        records: ProcessRecords,
        table: InstanceTable,
        interval_s: float | None = None,
        params: GrowthParams | None = None,
    ) -> Judged:
        """table is records.instances(); with the usual interval and the parameters
        find_leaks is given, only the floors of the instances it judges are taken."""
        footed = footprint_judged(table)
        judged = None
        if interval_s is not None and params is not None and len(table.pid):
            judged = ~short_instances(_spans(records, table), interval_s, params)[1]
        return cls(table, footed, judged_floors(records, table, footed, judged))


def _spans(records: ProcessRecords, table: InstanceTable) -> InstanceSpans:
    """The instances' spans, in table order, with the whole collection's."""
    times_s = records.times.astype(np.int64)
    return InstanceSpans(
        first_s=times_s[table.first_rank],
        last_s=times_s[table.last_rank],
        samples=table.samples,
        collection_s=float(times_s[-1] - times_s[0]),
    )


def find_leaks(
    records: ProcessRecords, judged: Judged, interval_s: float | None, params: GrowthParams
) -> LeakSurvey:
    """The instances with sustained growth, highest rate first (equal rates, at the
    CSV's 3 decimals, by PID), and how many were judged; interval_s is the usual time
    between two snapshots (None: fewer than two)."""
    table, floors = judged.table, judged.floors
    if len(table.pid) == 0 or interval_s is None:
        return LeakSurvey([], 0, len(table.pid), min_span_for(params, 0.0, interval_s or 1.0))
    # Each floor's place in the table: its instance number itself when the table holds
    # every instance (numbers 0 to n - 1), as it does without --match.
    every = table.number[-1] == len(table.number) - 1
    survey_ = survey(
        FloorTable(
            instance=floors.instance if every else np.searchsorted(table.number, floors.instance),
            bucket=floors.bucket,
            floor_mb=floors.low_milli / MILLI,
            samples=floors.samples,
            level=records.level,
        ),
        _spans(records, table),
        interval_s,
        params,
    )
    leaks = [_leak(records, judged, growth) for growth in survey_.growths]
    leaks.sort(key=lambda leak: (-round(leak.growth_mb_per_day, DECIMALS), leak.pid))
    return LeakSurvey(leaks, survey_.judged, survey_.instances, survey_.min_span_s)


def _leak(records: ProcessRecords, judged: Judged, growth: Growth) -> Leak:
    at, table = growth.instance, judged.table
    return Leak(
        pid=int(table.pid[at]),
        first_seen=records.times[table.first_rank[at]].astype(datetime),
        last_seen=records.times[table.last_rank[at]].astype(datetime),
        since=np.datetime64(growth.since_s, "s").astype(datetime),
        growth_mb_per_day=growth.rate_mb_per_day,
        growth_mb=growth.growth_mb,
        confidence=growth.confidence,
        cmd=records.commands[int(table.cmd[at])],
        instance=int(table.number[at]),
        first_rank=int(table.first_rank[at]),
        last_rank=int(table.last_rank[at]),
        start_mb=growth.start_mb,
        bucket_s=growth.bucket_s,
        basis=BASIS_FOOTPRINT if judged.footed[at] else BASIS_RSS,
        user=records.user_of(int(table.number[at])),
    )


class LeakPlot(NamedTuple):
    """What one leak plot shows (picklable: it may be drawn in the plot worker)."""

    pid: int
    cmd: str
    series: Series  # the instance's RSS
    footprint_mb: npt.NDArray[np.float64] | None  # its anon + swap at those times, if judged
    floor_start: npt.NDArray[np.datetime64]  # the buckets it was judged on...
    floor_mb: npt.NDArray[np.float64]  # ... and the lowest RSS (or anon + swap) in each
    bucket_s: float
    since: np.datetime64
    start_mb: float  # the fitted line's level at `since`
    rate_mb_per_day: float
    growth_mb: float
    confidence: float
    kills: npt.NDArray[np.datetime64] | None = None  # when the OOM killer ended it


def leak_plots(
    records: ProcessRecords,
    floors: Floors,
    leaks: Sequence[Leak],
    killed: Mapping[int, npt.NDArray[np.datetime64]],
) -> tuple[LeakPlot, ...]:
    """One per leak: its rows, and its floors (the judged ones) at its own time scale;
    `killed`: the kill moments of each victim instance."""
    return tuple(_leak_plot(records, floors, leak, killed.get(leak.instance)) for leak in leaks)


def _leak_plot(
    records: ProcessRecords,
    floors: Floors,
    leak: Leak,
    kills: npt.NDArray[np.datetime64] | None,
) -> LeakPlot:
    times, rss, foot, _ = records.pid_memory(leak.pid, leak.first_rank, leak.last_rank)
    low, high = np.searchsorted(floors.instance, [leak.instance, leak.instance + 1])
    own = coarsened(
        FloorTable(
            instance=np.zeros(int(high - low), np.int64),
            bucket=floors.bucket[low:high],
            floor_mb=floors.low_milli[low:high] / MILLI,
            samples=floors.samples[low:high],
            level=records.level,
        ),
        np.array([leak.bucket_s]),
    )
    starts_ms = np.rint(own.bucket * leak.bucket_s * 1000).astype(np.int64)
    return LeakPlot(
        pid=leak.pid,
        cmd=leak.cmd,
        series=(times, rss),
        footprint_mb=foot if leak.basis == BASIS_FOOTPRINT else None,
        floor_start=starts_ms.astype("datetime64[ms]"),
        floor_mb=own.floor_mb,
        bucket_s=leak.bucket_s,
        since=np.datetime64(leak.since, "s"),
        start_mb=leak.start_mb,
        rate_mb_per_day=leak.growth_mb_per_day,
        growth_mb=leak.growth_mb,
        confidence=leak.confidence,
        kills=kills,
    )
