"""One parsed batch of process rows reduced to runs, in the parser threads.

A run is a PID in consecutive snapshots of the batch, cut where the kernel reused the PID
(another STARTED). Per run: its first and last snapshot, the aggregates of the rows --match
keeps, the lowest RSS (and anon + swap) per UTC bucket, and the kept rows themselves as
narrow arrays (a Chunk: the snapshot as a 16-bit offset, RSS as integer thousandths of a MiB,
and anon + swap where the dumps carry it: 6 bytes a row, 10 with the footprint, and 4 more
for each row of a PID that used swap). utils.reduce.process_records stitches the runs of
batch after batch into process instances.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Protocol

import numpy as np
import numpy.typing as npt
import pandas as pd

from utils.read.threaded_reader import Batch
from utils.reduce.buckets import bucket_index
from utils.reduce.group_totals import GroupPart, group_part
from utils.reduce.pss_totals import PssPart, pss_part

# RSS is kept as integer thousandths of a MiB: the dumps carry 3 decimals, so
# round(MiB * 1000) is exact, and comparisons at the dumps' precision are exact too.
MILLI = 1000

IntArray = npt.NDArray[np.int64]


class Rows(Protocol):
    """A batch's kept rows, by PID: a Chunk, or one left in a day summary until asked for
    (utils.reduce.summary_kinds.StoredChunk)."""

    @property
    def base(self) -> int: ...  # rank of the batch's first snapshot

    def rows_of(self, pid: int) -> tuple[IntArray, IntArray, IntArray, IntArray]: ...

    def read_rows_of(self, pids: npt.NDArray[np.int64]) -> None: ...

    def _replace(self, *, base: int) -> Rows: ...


class Chunk(NamedTuple):
    """The rows of one batch, grouped by PID (ascending) and in time order within a PID."""

    pids: npt.NDArray[np.int32]  # the distinct PIDs
    starts: npt.NDArray[np.int64]  # rows of pids[i] are starts[i]:starts[i + 1]
    base: int  # rank of the batch's first snapshot
    offset: npt.NDArray[np.unsignedinteger]  # rank - base, 16 bits when it fits
    rss_milli: npt.NDArray[np.signedinteger]  # int32 unless an RSS passes 2 TiB
    # Anon + swap (-1: not in the dump); None when no row of the batch has it.
    foot_milli: npt.NDArray[np.signedinteger] | None = None
    # Swap, kept only for the PIDs that used some (most never do): their rows, grouped as
    # above. Another PID's swap is 0 where its anon + swap is known, else unknown.
    swap_pids: npt.NDArray[np.int32] | None = None
    swap_starts: npt.NDArray[np.int64] | None = None
    swap_milli: npt.NDArray[np.signedinteger] | None = None

    def rows_of(self, pid: int) -> tuple[IntArray, IntArray, IntArray, IntArray]:
        """Ranks, RSS, anon + swap and swap (thousandths of a MiB, -1 unknown) of one PID in
        this chunk."""
        at = int(np.searchsorted(self.pids, pid))
        if at == len(self.pids) or self.pids[at] != pid:
            empty = np.empty(0, np.int64)
            return empty, empty, empty, empty
        rows = slice(int(self.starts[at]), int(self.starts[at + 1]))
        count = rows.stop - rows.start
        foot = (
            np.full(count, -1, np.int64)
            if self.foot_milli is None
            else self.foot_milli[rows].astype(np.int64)
        )
        return (
            self.offset[rows].astype(np.int64) + self.base,
            self.rss_milli[rows].astype(np.int64),
            foot,
            self._swap_of(pid, foot),
        )

    def read_rows_of(self, pids: npt.NDArray[np.int64]) -> None:
        """Nothing to read (pids sorted, distinct): the rows are in memory (see
        StoredChunk.read_rows_of)."""

    def _swap_of(self, pid: int, foot: IntArray) -> IntArray:
        if self.swap_pids is not None and self.swap_starts is not None:
            at = int(np.searchsorted(self.swap_pids, pid))
            if at < len(self.swap_pids) and self.swap_pids[at] == pid:
                rows = slice(int(self.swap_starts[at]), int(self.swap_starts[at + 1]))
                return np.asarray(self.swap_milli)[rows].astype(np.int64)
        return np.where(foot >= 0, 0, -1)


class BatchRuns(NamedTuple):
    """One batch reduced to runs: a run is a PID in consecutive snapshots of the batch
    (its rows grouped by PID, in time order). Ranks here count from the batch's first
    snapshot (0); the aggregates are over the rows --match keeps."""

    read: IntArray  # the UTC times (seconds since 1970) of the batch's snapshots, in order
    pid: npt.NDArray[np.int32]  # per run, ascending
    first: IntArray  # rank of the run's first row (all rows: identity)
    last: IntArray  # rank of its last row
    samples: IntArray  # rows kept; 0: none matched
    kept_first: IntArray  # rank of the first kept row (when samples > 0)
    kept_last: IntArray
    min_milli: IntArray
    max_milli: IntArray
    cmd: npt.NDArray[np.object_]  # CMD of the first kept row
    user: npt.NDArray[np.object_] | None  # USER of the first kept row; None: not read
    floors: tuple[IntArray, IntArray, IntArray, IntArray]  # run, bucket, lowest RSS, rows
    chunk: Chunk | None  # the kept rows (base 0)
    started: IntArray  # per run: its STARTED, centiseconds since 1970 (-1: not in the dump)
    foot_samples: IntArray  # per run: kept rows with anon + swap
    swap_max_milli: IntArray  # per run: the most swap of a kept row (-1: none)
    foot_floors: tuple[IntArray, IntArray, IntArray, IntArray]  # as floors, of anon + swap
    groups: GroupPart  # memory per (snapshot, program or user)
    pss: PssPart | None = None  # the shares per (snapshot, group); None: no row has one


class _Rows(NamedTuple):
    """A batch's rows grouped by PID, in time order within each, cut into runs."""

    rows: IntArray  # where each row is in the batch's frame
    pid: npt.NDArray[np.int32]
    rank: IntArray  # counted from the batch's first snapshot
    rss_milli: IntArray
    kept: npt.NDArray[np.bool_]  # the rows --match keeps
    starts: IntArray  # the first row of each run
    ends: IntArray  # one after its last
    started: IntArray  # centiseconds since 1970, -1 unknown
    foot_milli: IntArray  # anon + swap, -1 unknown
    swap_milli: IntArray  # -1 unknown


def reduce_batch(
    batch: Batch, match: str | None, level: int = 0, group_by: str = "program"
) -> BatchRuns:
    """A parsed batch as runs (thread-safe: this runs in the parser threads)."""
    snapshot = batch.snapshot
    # Rows come in time order: each new snapshot time is the next rank.
    step = np.r_[0, (snapshot[1:] != snapshot[:-1]).astype(np.int64)]
    read = snapshot[np.r_[True, step[1:] > 0]]
    grouped = _grouped(batch.frame, np.cumsum(step), match)
    kept = grouped.kept
    run = np.repeat(np.arange(len(grouped.starts)), grouped.ends - grouped.starts)
    bucket = bucket_index(read[grouped.rank[kept]], level)
    aggregates = _kept_aggregates(grouped, batch.frame["CMD"])
    user = batch.frame.get("USER")
    footed = kept & (grouped.foot_milli >= 0)
    foot_bucket = bucket_index(read[grouped.rank[footed]], level)
    starts = grouped.starts
    return BatchRuns(
        read=read,
        pid=grouped.pid[grouped.starts],
        first=grouped.rank[grouped.starts],
        last=grouped.rank[grouped.ends - 1],
        samples=aggregates.samples,
        kept_first=aggregates.first,
        kept_last=aggregates.last,
        min_milli=aggregates.min_milli,
        max_milli=aggregates.max_milli,
        cmd=aggregates.cmd,
        user=None if user is None else _texts_at(user, grouped.rows[aggregates.text_row]),
        floors=_floors(run[kept], bucket, grouped.rss_milli[kept]),
        chunk=_chunk(grouped, kept) if kept.any() else None,
        started=np.maximum.reduceat(grouped.started, starts),  # one known value, or -1
        foot_samples=np.add.reduceat(footed.astype(np.int64), starts),
        swap_max_milli=np.maximum.reduceat(np.where(kept, grouped.swap_milli, -1), starts),
        foot_floors=_floors(run[footed], foot_bucket, grouped.foot_milli[footed]),
        groups=group_part(batch.frame, grouped, group_by),
        pss=pss_part(batch.frame, grouped, group_by),
    )


def _grouped(frame: pd.DataFrame, rank: IntArray, match: str | None) -> _Rows:
    # Grouped by PID, in time order within each (a stable sort keeps the time order).
    all_pids = frame["PID"].to_numpy(np.int32)
    rows = np.argsort(all_pids, kind="stable")
    pid, rank = all_pids[rows], rank[rows]
    started = _started_cs(frame["STARTED"])[rows]
    # A run ends where the PID changes, skips a snapshot of the batch, or is another
    # process (another start time: a PID the kernel reused). A row without STARTED (an
    # older collector's, or a process gone before its stat was read) does not cut a run.
    reused = (started[1:] != started[:-1]) & (started[1:] >= 0) & (started[:-1] >= 0)
    cut = (pid[1:] != pid[:-1]) | (rank[1:] - rank[:-1] > 1) | reused
    starts = np.flatnonzero(np.r_[True, cut])
    kept = np.ones(len(pid), bool) if match is None else _match_mask(frame["CMD"], match)[rows]
    rss = _milli(frame["RSS_MB"].to_numpy(np.float64)[rows])
    anon = _milli(frame["ANON_MB"].to_numpy(np.float64)[rows])
    swap = _milli(frame["SWAP_MB"].to_numpy(np.float64)[rows])
    foot = np.where((anon >= 0) & (swap >= 0), anon + swap, -1)
    ends = np.r_[starts[1:], len(pid)]
    return _Rows(rows, pid, rank, rss, kept, starts, ends, started, foot, swap)


def _milli(mib: npt.NDArray[np.float64]) -> IntArray:
    """MiB with 3 decimals as exact integer thousandths; -1 for a missing value."""
    with np.errstate(invalid="ignore"):
        return np.where(np.isnan(mib), -1, np.rint(mib * MILLI)).astype(np.int64)


def _started_cs(started: pd.Series) -> IntArray:
    """STARTED (categorical text, as the reader gives it) as centiseconds since 1970, -1
    where empty: parsed once per distinct value (a batch holds one per process)."""
    categories = started.cat.categories.to_numpy(dtype=object)
    present = categories != ""
    values = np.full(len(categories), -1, np.int64)
    if present.any():
        parsed = np.array(categories[present], dtype="datetime64[ms]").astype(np.int64)
        values[present] = parsed // 10
    codes = started.cat.codes.to_numpy()
    return np.where(codes >= 0, values[codes], -1)


class _Kept(NamedTuple):
    """Per run, over its kept rows."""

    samples: IntArray
    first: IntArray  # rank of the first kept row (-1: none)
    last: IntArray
    min_milli: IntArray
    max_milli: IntArray
    cmd: npt.NDArray[np.object_]  # of the first kept row
    text_row: IntArray  # per run, where that row is in the grouped rows


def _kept_aggregates(grouped: _Rows, cmd: pd.Series) -> _Kept:
    """Per run, over its kept rows: samples, first and last rank, least and most RSS, and
    the command line of the first."""
    kept, starts, rank, rss = grouped.kept, grouped.starts, grouped.rank, grouped.rss_milli
    big, small = np.iinfo(np.int64).max, np.iinfo(np.int64).min
    positions = np.arange(len(kept))
    first_kept = np.minimum.reduceat(np.where(kept, positions, big), starts)
    last_kept = np.maximum.reduceat(np.where(kept, positions, -1), starts)
    samples = np.add.reduceat(kept.astype(np.int64), starts)
    has = samples > 0
    text_row = np.where(has, first_kept, starts)
    return _Kept(
        samples,
        np.where(has, rank[np.minimum(first_kept, len(kept) - 1)], -1),
        np.where(has, rank[np.maximum(last_kept, 0)], -1),
        np.minimum.reduceat(np.where(kept, rss, big), starts),
        np.maximum.reduceat(np.where(kept, rss, small), starts),
        _texts_at(cmd, grouped.rows[text_row]),
        text_row,
    )


def _texts_at(column: pd.Series, rows: IntArray) -> npt.NDArray[np.object_]:
    """A categorical text column's values at the frame's rows."""
    return column.cat.categories.to_numpy(dtype=object)[column.cat.codes.to_numpy()[rows]]


def _floors(
    run: IntArray, bucket: IntArray, rss_milli: IntArray
) -> tuple[IntArray, IntArray, IntArray, IntArray]:
    """The lowest RSS of each run in each bucket (rows of a run are in time order,
    so its buckets come in runs too): run, bucket, lowest, rows."""
    if not len(run):
        return (np.empty(0, np.int64),) * 4
    cuts = np.flatnonzero(np.r_[True, (run[1:] != run[:-1]) | (bucket[1:] != bucket[:-1])])
    lowest = np.minimum.reduceat(rss_milli, cuts)
    return run[cuts], bucket[cuts], lowest, np.diff(np.r_[cuts, len(run)])


def _chunk(grouped: _Rows, kept: npt.NDArray[np.bool_]) -> Chunk:
    """The kept rows as narrow arrays (base 0), grouped by PID."""
    pid, rank = grouped.pid[kept], grouped.rank[kept]
    starts = np.flatnonzero(np.r_[True, pid[1:] != pid[:-1]])
    offset_type = np.uint16 if rank.max() <= np.iinfo(np.uint16).max else np.uint32
    foot, swap = grouped.foot_milli[kept], grouped.swap_milli[kept]
    counts = np.diff(np.r_[starts, len(pid)])
    swapped = np.maximum.reduceat(swap, starts) > 0  # per PID
    swap_counts = counts[swapped]
    return Chunk(
        pids=pid[starts],
        starts=np.r_[starts, len(pid)].astype(np.int64),
        base=0,
        offset=rank.astype(offset_type),
        rss_milli=narrow(grouped.rss_milli[kept]),
        foot_milli=narrow(foot) if bool((foot >= 0).any()) else None,
        swap_pids=pid[starts][swapped] if swapped.any() else None,
        swap_starts=np.r_[0, np.cumsum(swap_counts)].astype(np.int64) if swapped.any() else None,
        swap_milli=narrow(swap[np.repeat(swapped, counts)]) if swapped.any() else None,
    )


def narrow(values: IntArray) -> npt.NDArray[np.signedinteger[Any]]:
    """int32 where every value fits, else int64 as it is."""
    return values.astype(np.int32) if not len(values) or values.max() < 2**31 else values


def _match_mask(cmd: pd.Series, text: str) -> npt.NDArray[np.bool_]:
    """Rows whose CMD (categorical, as the reader gives it) contains text: a plain,
    case-sensitive substring, tested once per distinct command line."""
    per_category = cmd.cat.categories.astype(str).str.contains(text, regex=False)
    return np.asarray(per_category, dtype=bool)[cmd.cat.codes.to_numpy()]
